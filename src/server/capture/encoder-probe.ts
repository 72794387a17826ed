/**
 * H.264 encoder choice for `serve --video-codec h264`: which encoder this ffmpeg and this machine can
 * really run. Listed is not enough (a Debian ffmpeg lists h264_nvenc without an NVIDIA card), so each
 * candidate is tried with a one-frame test encode under a short timeout; libx264 is the fallback.
 * Results are cached per ffmpeg binary and encoder for the life of the process. Called once by
 * serve.ts before listening; the run function is injectable so the choice logic is unit-tested.
 */
import { execa } from 'execa';
import type { Platform } from './capture-types.js';
import { H264Encoder, HARDWARE_H264_ENCODERS, h264EncoderArgs, isH264Encoder } from './h264-args.js';

export interface RunResult {
  ok: boolean;
  output: string;
}
export type RunFfmpeg = (ffmpegPath: string, args: string[], timeoutMs: number) => Promise<RunResult>;

export interface EncoderChoice {
  encoder: H264Encoder;
  /** One line for the log when a requested or listed hardware encoder did not work. */
  fallbackMessage: string | null;
  /** Candidates that failed, with the last line ffmpeg printed. */
  failed: Array<{ encoder: H264Encoder; reason: string }>;
}

export interface ChooseEncoderOptions {
  ffmpegPath: string;
  platform: Platform;
  /** 'auto' (hardware if one works, else libx264) or an encoder name (--encoder). */
  requested: string;
  timeoutMs?: number;
  run?: RunFfmpeg;
}

const cache = new Map<string, Promise<RunResult>>();

export const runFfmpeg: RunFfmpeg = async (ffmpegPath, args, timeoutMs) => {
  const r = await execa(ffmpegPath, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, killSignal: 'SIGKILL', reject: false, stdin: 'ignore' });
  return { ok: !r.failed, output: `${r.stdout}${r.stderr}` };
};

/** Encoder names from `ffmpeg -hide_banner -encoders` (lines like " V....D libx264   libx264 H.264 …"). */
export function parseEncoderList(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^\s*[VAS][F.][S.][X.][B.][D.]\s+(\S+)/.exec(line);
    // The legend (" V..... = Video") has the same shape; real names are identifiers.
    if (m && /^[\w-]+$/.test(m[1]!)) names.add(m[1]!);
  }
  return names;
}

/** Arguments of the one-frame test encode (a small colour source, output discarded). */
export function probeArgs(encoder: H264Encoder): string[] {
  const enc = h264EncoderArgs({ encoder, bitrateKbps: 500, gopFrames: 30 });
  // prettier-ignore
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    ...enc.global,
    '-f', 'lavfi', '-i', 'color=c=gray:size=320x240:rate=30', '-frames:v', '1',
    ...enc.output,
    '-f', 'null', '-',
  ];
}

export async function chooseH264Encoder(o: ChooseEncoderOptions): Promise<EncoderChoice> {
  const run = o.run ?? runFfmpeg;
  const timeoutMs = o.timeoutMs ?? 5_000;
  const cached = (key: string, args: string[]) => {
    const k = `${o.ffmpegPath}\0${key}`;
    let p = cache.get(k);
    if (p === undefined || o.run !== undefined) {
      p = run(o.ffmpegPath, args, timeoutMs);
      if (o.run === undefined) cache.set(k, p);
    }
    return p;
  };
  const listed = parseEncoderList((await cached('-encoders', ['-hide_banner', '-encoders'])).output);
  const explicit = o.requested !== 'auto';
  if (explicit && !isH264Encoder(o.requested)) {
    throw new RangeError(`Unknown H.264 encoder "${o.requested}" (expected auto, copy or one of ${Object.values(H264Encoder).join(', ')})`);
  }
  const candidates = explicit ? [o.requested as H264Encoder] : HARDWARE_H264_ENCODERS[o.platform].filter((e) => listed.has(e));
  const failed: EncoderChoice['failed'] = [];
  // In parallel (each test encode is ~0.3–1.2 s of ffmpeg start-up), then the first that works wins.
  const results = await Promise.all(candidates.map((e) => (listed.has(e) ? cached(e, probeArgs(e)) : null)));
  for (const [i, encoder] of candidates.entries()) {
    const result = results[i];
    if (result === null || result === undefined) {
      failed.push({ encoder, reason: 'not in this ffmpeg build (ffmpeg -encoders)' });
      continue;
    }
    if (result.ok) return { encoder, fallbackMessage: null, failed };
    failed.push({ encoder, reason: firstLine(result.output) || 'test encode failed or timed out' });
  }
  if (!listed.has(H264Encoder.LIBX264)) {
    throw new Error(
      `No usable H.264 encoder: this ffmpeg has no libx264${failed.length ? ` and ${failed.map((f) => f.encoder).join(', ')} failed` : ''}; use --video-codec mjpeg or an ffmpeg built with libx264`,
    );
  }
  const fallbackMessage = explicit
    ? `--encoder ${o.requested} does not work here (${failed[0]?.reason}): using libx264 instead`
    : failed.length > 0
      ? `no hardware H.264 encoder works here (${failed.map((f) => `${f.encoder}: ${f.reason}`).join('; ')}): using libx264`
      : null;
  return { encoder: H264Encoder.LIBX264, fallbackMessage, failed };
}

/** ffmpeg's first error line names the cause ("Cannot load libcuda.so.1"); the last is generic. */
function firstLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines[0] ?? '').slice(0, 200);
}
