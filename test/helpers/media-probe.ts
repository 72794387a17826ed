/**
 * Test helper: what ffprobe sees in a media file (streams, container duration, every packet with its
 * time and an MD5 of its bytes), so recording tests assert on what a player would get.
 */
import { run } from './process.js';

export interface ProbedPacket {
  streamIndex: number;
  ptsTimeS: number;
  md5: string;
}

export interface ProbeResult {
  streams: { index: number; codecType: string; codecName: string }[];
  /** Container duration (null when the file does not say). */
  durationS: number | null;
  packets: ProbedPacket[];
}

export async function probeMedia(file: string): Promise<ProbeResult> {
  const res = await run('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-show_packets', '-show_data_hash', 'MD5', '-of', 'json', file], {
    timeoutMs: 20_000,
  });
  if (res.code !== 0) throw new Error(`ffprobe ${file} failed (${res.code}): ${res.stderr.slice(-500)}`);
  const json = JSON.parse(res.stdout.toString()) as {
    streams?: { index: number; codec_type: string; codec_name: string }[];
    format?: { duration?: string };
    packets?: { stream_index: number; pts_time?: string; data_hash?: string }[];
  };
  return {
    streams: (json.streams ?? []).map((s) => ({ index: s.index, codecType: s.codec_type, codecName: s.codec_name })),
    durationS: json.format?.duration ? Number(json.format.duration) : null,
    packets: (json.packets ?? []).map((p) => ({ streamIndex: p.stream_index, ptsTimeS: Number(p.pts_time), md5: (p.data_hash ?? '').replace(/^MD5:/, '') })),
  };
}

/** Time of the last packet of a stream type: what a player reaches when it plays to the end. */
export function lastPacketS(probe: ProbeResult, codecType: 'video' | 'audio'): number {
  const stream = probe.streams.find((s) => s.codecType === codecType);
  if (!stream) return 0;
  return Math.max(0, ...probe.packets.filter((p) => p.streamIndex === stream.index).map((p) => p.ptsTimeS));
}

/** Decodes the whole file; resolves with ffmpeg's error output ('' = clean). */
export async function decodeErrors(file: string): Promise<string> {
  const res = await run('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-f', 'null', '-'], { timeoutMs: 30_000 });
  return res.code === 0 ? res.stderr.trim() : `exit ${res.code}: ${res.stderr.trim()}`;
}
