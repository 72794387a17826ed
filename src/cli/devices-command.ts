/** `lanstream devices`: cameras and microphones, with the exact value for --video-device/--audio-device. */
import shellQuote from 'shell-quote';
import { listDevices } from '../server/capture/devices.js';
import { locateFfmpeg } from '../server/capture/ffmpeg-locate.js';
import type { Platform } from '../server/capture/capture-types.js';
import type { Output } from './output.js';

export async function runDevices(flags: { ffmpeg?: string; json?: boolean }, output: Output): Promise<void> {
  output.json = Boolean(flags.json);
  const ffmpegPath = await locateFfmpeg({ override: flags.ffmpeg });
  const devices = await listDevices({ platform: process.platform as Platform, ffmpegPath });
  if (output.json) {
    process.stdout.write(`${JSON.stringify(devices)}\n`);
    return;
  }
  const section = (title: string, flag: string, list: { name: string; value: string; details?: string }[]) => {
    output.text(`${title}:`);
    if (list.length === 0) output.text('  (none found)');
    for (const d of list) output.text(`  ${flag} ${shellArg(d.value)}   ${d.name}${d.details ? ` — ${d.details}` : ''}`);
  };
  section('Cameras', '--video-device', devices.cameras);
  section('Microphones', '--audio-device', devices.microphones);
  if (devices.cameras.length === 0) output.text('No camera? `lanstream serve --source test` streams a built-in test picture and tone.');
}

/**
 * The value as the user's shell takes it, to paste after the flag: double quotes for cmd.exe and
 * PowerShell (single quotes are not quotes in cmd.exe, and dshow's alternative names hold '&'), POSIX
 * quoting elsewhere ("Bob's MacBook Microphone").
 */
export function shellArg(value: string, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return `"${value}"`;
  return /^[\w./:@%+=,-]+$/.test(value) ? `'${value}'` : shellQuote.quote([value]);
}
