/**
 * `--snapshot <file.jpg|png>`: one picture of the stream for cron jobs ("a picture every 5
 * minutes"). It listens to the viewer's frames, skips the first few (a camera opened on demand for
 * this viewer is still adjusting its exposure), and writes one with sharp: the camera's own JPEG bytes
 * when no resize is asked (no quality loss, no CPU), a re-encode for PNG or --snapshot-size. The file
 * is written beside the target and renamed, so a web page serving it never shows half a picture.
 * An H.264 stream has no picture in a single unit past its IDR: the units from the first IDR up to
 * the settled one are decoded by an ffmpeg child and its last picture is taken.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { replaceFile } from '../shared/replace-file.js';
import os from 'node:os';
import path from 'node:path';
import { LanstreamError, usageError } from '../shared/errors.js';
import { isIdrAccessUnit } from './decoders/h264-annexb.js';

export type SnapshotFormat = 'jpeg' | 'png';

/** Frames skipped before the picture is taken: the 3rd frame, past the camera's first exposure. */
export const SNAPSHOT_SKIP_FRAMES = 2;
export const SNAPSHOT_FRAME_TIMEOUT_MS = 15_000;
const JPEG_QUALITY = 90;

/**
 * What a snapshot needs from a Viewer: its 'frame' event, the codec its WELCOME announced, and its
 * 'state' events (a viewer whose `welcome` is still null is not live yet: the wait starts at 'live').
 */
export interface FrameSource {
  on(event: 'frame', listener: (jpeg: Buffer, ptsUs: number) => void): unknown;
  on(event: 'state', listener: (state: string) => void): unknown;
  off(event: 'frame', listener: (jpeg: Buffer, ptsUs: number) => void): unknown;
  off(event: 'state', listener: (state: string) => void): unknown;
  readonly welcome?: { video: { codec: string } | null } | null;
}

export interface SnapshotSize {
  width: number;
  height: number;
}

export interface SnapshotResult {
  file: string;
  format: SnapshotFormat;
  width: number;
  height: number;
  bytes: number;
  /** Server time of the frame (µs, server monotonic clock). */
  ptsUs: number;
}

/** The format from the extension: .jpg/.jpeg or .png; anything else is a usage error. */
export function snapshotFormat(file: string, flag = '--snapshot'): SnapshotFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.png') return 'png';
  throw usageError(flag, file, 'a file name ending in .jpg, .jpeg or .png');
}

/**
 * Resolves with the (skipFrames+1)-th frame; the newest one if fewer arrive before the timeout, which
 * counts from the first live connection: `watch --wait --snapshot` started long before its server
 * failed the moment the server came up when it counted from the start. For H.264 (the viewer's
 * WELCOME says so) `jpeg` is every unit from the first IDR to that frame, concatenated.
 */
export function waitForSnapshotFrame(
  viewer: FrameSource,
  opts: { skipFrames?: number; timeoutMs?: number } = {},
): Promise<{ jpeg: Buffer; ptsUs: number; codec: string }> {
  const skip = opts.skipFrames ?? SNAPSHOT_SKIP_FRAMES;
  const timeoutMs = opts.timeoutMs ?? SNAPSHOT_FRAME_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let seen = 0;
    let newest: { jpeg: Buffer; ptsUs: number; codec: string } | null = null;
    const units: Buffer[] = [];
    const onFrame = (data: Buffer, ptsUs: number): void => {
      const codec = viewer.welcome?.video?.codec ?? 'mjpeg';
      if (codec === 'h264') {
        if (units.length === 0 && !isIdrAccessUnit(data)) return; // nothing decodes before an IDR
        units.push(data);
      }
      newest = { jpeg: data, ptsUs, codec };
      if (seen++ >= skip) finish();
    };
    let timer: NodeJS.Timeout | undefined;
    const finish = (why?: string): void => {
      clearTimeout(timer);
      viewer.off('frame', onFrame);
      viewer.off('state', onState);
      if (newest) resolve(newest.codec === 'h264' ? { ...newest, jpeg: Buffer.concat(units) } : newest);
      else
        reject(
          new LanstreamError(
            'LS_ERR_SNAPSHOT_FAILED',
            why ?? `No video frame arrived within ${timeoutMs / 1000} s: is the server's camera working (see its log) and is video not disabled (--no-video)?`,
          ),
        );
    };
    // A server without video says so in its WELCOME: no reason to wait the whole timeout for a frame.
    const noVideo = (): boolean => viewer.welcome?.video === null;
    const noVideoReason = 'The server sends no video (it runs with --no-video): there is no picture to take';
    // Unref'd: if the connection fails first, this wait must not keep the process alive.
    const startTimer = (): void => void (timer ??= setTimeout(() => finish(), timeoutMs).unref());
    // 'closed' too: a viewer that ended before it was live still gets its bounded answer (the
    // viewer's own error, reported by its 'closed' event, comes first in watch).
    const onState = (state: string): void => {
      if (state === 'live' && noVideo()) return finish(noVideoReason);
      if (state === 'live' || state === 'closed') startTimer();
    };
    viewer.on('frame', onFrame);
    viewer.on('state', onState);
    if (noVideo()) return finish(noVideoReason);
    if (viewer.welcome !== null) startTimer(); // live already (or a source without a WELCOME)
  });
}

/** Writes one frame as the target format, resized (cover: exact size, centre crop) when asked. */
export async function writeSnapshot(jpeg: Buffer, o: { file: string; format?: SnapshotFormat; size?: SnapshotSize; ptsUs?: number }): Promise<SnapshotResult> {
  const format = o.format ?? snapshotFormat(o.file);
  let image: Buffer;
  let width: number;
  let height: number;
  try {
    const { default: sharp } = await import('sharp'); // lazy: ~60 ms at every start-up otherwise
    if (format === 'jpeg' && !o.size) {
      const meta = await sharp(jpeg).metadata(); // proves the bytes decode before we pass them through
      image = jpeg;
      width = meta.width ?? 0;
      height = meta.height ?? 0;
    } else {
      let pipeline = sharp(jpeg);
      if (o.size) pipeline = pipeline.resize(o.size.width, o.size.height, { fit: 'cover' });
      pipeline = format === 'png' ? pipeline.png() : pipeline.jpeg({ quality: JPEG_QUALITY, mozjpeg: false });
      const out = await pipeline.toBuffer({ resolveWithObject: true });
      image = out.data;
      width = out.info.width;
      height = out.info.height;
    }
  } catch (err) {
    throw new LanstreamError('LS_ERR_SNAPSHOT_FAILED', `The frame could not be converted for ${o.file}: ${(err as Error).message}`, { cause: err });
  }
  const tmp = path.join(path.dirname(o.file), `.${path.basename(o.file)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, image);
    await replaceFile(tmp, o.file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new LanstreamError('LS_ERR_SNAPSHOT_FAILED', `Cannot write ${o.file}: ${(err as Error).message}`, { cause: err });
  }
  return { file: o.file, format, width, height, bytes: image.length, ptsUs: o.ptsUs ?? 0 };
}

export interface TakeSnapshotOptions {
  /** .jpg, .jpeg or .png. */
  file: string;
  size?: SnapshotSize;
  skipFrames?: number;
  timeoutMs?: number;
  /** ffmpeg for H.264 streams (called only then); default "ffmpeg" on PATH. */
  ffmpegPath?: () => Promise<string>;
}

/** Waits for a settled frame of a live viewer and writes it (what `watch --snapshot` does). */
export async function takeSnapshot(viewer: FrameSource, o: TakeSnapshotOptions): Promise<SnapshotResult> {
  const format = snapshotFormat(o.file, 'file');
  const frame = await waitForSnapshotFrame(viewer, o);
  const jpeg = frame.codec === 'h264' ? await lastH264Picture(frame.jpeg, o.ffmpegPath ? await o.ffmpegPath() : 'ffmpeg') : frame.jpeg;
  return writeSnapshot(jpeg, { file: o.file, format, size: o.size, ptsUs: frame.ptsUs });
}

/** Decodes Annex-B units (from an IDR on) with ffmpeg and returns the last picture as a JPEG. */
export async function lastH264Picture(annexB: Buffer, ffmpegPath: string): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-snapshot-'));
  const out = path.join(dir, 'last.jpg');
  try {
    const { execa } = await import('execa'); // lazy: ~80 ms at every `watch` start otherwise (before its window)
    // -update 1: every decoded picture overwrites the same file, so the last one stays.
    const r = await execa(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-f', 'h264', '-i', 'pipe:0', '-update', '1', '-q:v', '2', '-y', out], {
      input: annexB,
      timeout: 10_000,
      reject: false,
    });
    if (r.failed)
      throw new Error(`${(r.shortMessage ?? 'ffmpeg failed').split(/\r?\n/)[0]}${r.stderr ? `: ${r.stderr.trim().split(/\r?\n/).slice(-1)[0]}` : ''}`);
    return await readFile(out);
  } catch (err) {
    throw new LanstreamError('LS_ERR_SNAPSHOT_FAILED', `The H.264 picture could not be decoded with ${ffmpegPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
