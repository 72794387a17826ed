/**
 * e2e: watch's keys on a real pseudo-terminal change what the speaker plays. The window goes to a
 * private Xvfb and the sound (npm speaker → ALSA → pulse) to a private PulseAudio null sink whose
 * monitor is recorded the whole time, so each key's effect is measured as a level in dBFS, not
 * taken from watch's own account of it. And no key reader at all when stdin is a pipe.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { LANSTREAM_BIN, WINDOW_AT_ORIGIN, localWatchArgs, startServe } from '../helpers/cli.js';
import { hasCommand, isRunning, killAll, sleep, spawnTracked, stopChild, waitFor, waitForExit } from '../helpers/process.js';
import { findWindowByName } from '../helpers/screen.js';
import { startPulse, RECORD_RATE_HZ, type Recording } from '../helpers/pulse.js';
import { spawnCliInPty } from '../helpers/pty.js';
import { dominantFrequencyHz, rmsDbfs } from '../helpers/signal.js';
import { startXvfb } from '../helpers/xvfb.js';
import { nowMs } from '../../src/shared/clock.js';

t.teardown(() => killAll());

const missing = ['script', 'Xvfb', 'pulseaudio', 'parec', 'ffplay'].filter((c) => !hasCommand(c));
const skip = missing.length ? `missing ${missing.join(', ')}` : false;

/** The part of a running recording between two nowMs() instants. */
function segment(pcm: Buffer, rec: Recording, fromMs: number, toMs: number): Buffer {
  const zero = rec.sampleZeroAtMs();
  const at = (ms: number) => Math.max(0, Math.round(((ms - zero) * RECORD_RATE_HZ) / 1000)) * 2;
  return pcm.subarray(at(fromMs), at(toMs));
}

t.test('keys on a TTY: - lowers the tone, m mutes and unmutes, ? shows the keys, q quits with 0', { skip }, async (t) => {
  const [xvfb, pulse, serve] = await Promise.all([startXvfb(), startPulse(), startServe()]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([xvfb.close(), pulse.close(), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const watch = spawnCliInPty(localWatchArgs(serve, ...WINDOW_AT_ORIGIN, '--audio-output', 'speaker'), { env: { ...xvfb.env, ...pulse.env } });
  t.teardown(() => watch.destroy());
  await watch.waitForOutput(/keys: \+ \/ - volume/, 10_000);
  await watch.waitForOutput(/\[live\] video/, 10_000);
  const rec = pulse.startRecording();
  // The speaker keeps ~100 ms queued at the old gain: measure from 700 ms after a key.
  const settleMs = 700;
  const spanMs = 1000;
  await sleep(settleMs + spanMs);
  const marks: Record<string, number> = { start: nowMs() - spanMs };

  await watch.press('-----');
  marks.down = nowMs();
  await sleep(settleMs + spanMs);
  await watch.press('m');
  marks.mute = nowMs();
  await sleep(settleMs + spanMs);
  await watch.press('m');
  marks.unmute = nowMs();
  await sleep(settleMs + spanMs);
  const pcm = await rec.stop();

  const level = (from: number) => rmsDbfs(segment(pcm, rec, from, from + spanMs));
  const full = level(marks.start!);
  const half = level(marks.down! + settleMs);
  const muted = level(marks.mute! + settleMs);
  const back = level(marks.unmute! + settleMs);
  const freq = dominantFrequencyHz(segment(pcm, rec, marks.start!, marks.start! + spanMs), RECORD_RATE_HZ);
  t.ok(Math.abs(freq - 440) < 5, `the speaker plays the 440 Hz tone before any key (${freq.toFixed(1)} Hz)`);
  t.ok(full > -30, `volume 100: the tone is loud (${full.toFixed(1)} dBFS)`);
  // Cubic curve: 100 → 50 is 20·log10(0.125) = −18 dB.
  t.ok(full - half > 12 && full - half < 24, `five presses of - (100 → 50) lower it by ${(full - half).toFixed(1)} dB (expected ~18)`);
  t.ok(muted < -60, `m: silence (${muted.toFixed(1)} dBFS)`);
  t.ok(Math.abs(back - half) < 3, `m again: back to the volume before muting (${back.toFixed(1)} vs ${half.toFixed(1)} dBFS)`);
  t.match(watch.screenText(), /vol 50/, 'the status line shows the new volume');

  const before = watch.output.length;
  await watch.press('?');
  await watch.waitForOutput(/keys: \+ \/ - volume · m mute/, 3000, before);
  t.pass('? prints the key help again');

  const quitAtMs = Date.now();
  watch.write('q');
  const exit = await Promise.race([watch.exited, sleep(8000).then(() => null)]);
  t.ok(exit, `q ends watch (after ${Date.now() - quitAtMs} ms)`);
  t.equal(exit?.code, 0, 'q: exit code 0', { terminal: watch.describe() });
});

t.test('no key reader when stdin is a pipe: "q" written into it does not quit', { skip }, async (t) => {
  const [xvfb, serve] = await Promise.all([startXvfb(), startServe({ args: ['--no-audio'] })]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([xvfb.close(), rm(serve.configDir, { recursive: true, force: true })]);
  });
  // A window, no --json: everything a key reader would be started for, except the terminal.
  const child = spawnTracked(process.execPath, [LANSTREAM_BIN, ...localWatchArgs(serve, '--window-position', '0,0')], {
    env: xvfb.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => stopChild(child, 2000));
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitFor(() => findWindowByName(xvfb.display, 'lanstream - 127.0.0.1'), 10_000, 100, 'the watch window');
  child.stdin?.write('q');
  child.stdin?.write('q\n');
  await sleep(2000);
  t.ok(isRunning(child), 'still watching 2 s after "q" arrived on the pipe', { stderr: stderr.slice(-1000) });
  t.notMatch(stderr, /keys: /, 'no key help printed: there is no key reader');
  child.kill('SIGTERM');
  const exit = await waitForExit(child, 5000);
  t.equal(exit.code, 143, 'SIGTERM still stops it (143)');
});
