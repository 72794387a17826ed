/**
 * `--record <file.mkv>`: a sink beside the window and the speaker that writes the received video
 * and audio into Matroska through one ffmpeg child (JPEG frames on stdin, PCM on fd 3, both copied,
 * no re-encoding).
 *
 * Why a timeline here: ffmpeg's raw `mjpeg` and `s16le` inputs carry no timestamps, and stamping
 * packets on arrival (-use_wallclock_as_timestamps) would put the network's jitter into the file.
 * So the file's time is built from the SERVER's ptsUs: video is laid on a constant grid of the
 * stream's fps (frame k of the input = server time base + k/fps; a missing slot repeats the previous
 * frame, a second frame in one slot moves to the next free one or is dropped), and audio is placed
 * by sample position (a gap is filled with silence, an overlap trimmed). A frame lands at most one
 * frame interval from its server PTS whatever the network did; audio is exact to the sample. A pause longer than
 * MAX_GAP_US (reconnect, server restart) is cut out of the file instead of filled.
 *
 * Why Matroska written as it goes: clusters of ≤ 1 s are written with -flush_packets 1, so a file
 * stays playable if anything dies. If lanstream is killed (even -9), ffmpeg sees EOF on its pipes and
 * finishes the file itself (duration and index included); if ffmpeg itself is killed, the last
 * cluster (≤ 1 s) is lost and players estimate the duration. The child runs in its own process
 * group so a terminal's Ctrl-C reaches only lanstream, which then ends the file in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, type Stats } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { AudioParams, VideoParams } from '../../protocol/messages.js';
import { LanstreamError, usageError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { RecorderHook } from '../watch.js';

/** A pause in server time longer than this (reconnect, server restart) is skipped, not filled. */
export const MAX_GAP_US = 3_000_000;
/** Wait this much server time for the other medium before starting the file without it. */
const START_WAIT_US = 1_000_000;
/**
 * One medium this far behind the other in the file (a microphone that stopped, a server restarted
 * without its camera) is filled up to it (silence, or the last frame repeated). ffmpeg reads its
 * inputs in timestamp order, so a silent input held the other back: nothing more reached the disk,
 * and 70 s after the microphone stopped (1280x720) the recording failed as "cannot keep up", its
 * file ending where the sound had. Same bound as a file cut off: ≤ 1 s.
 */
const STALL_US = 1_000_000;
/** Audio within ±30 ms of its slot is appended as is: no click for a few samples of drift. */
const AUDIO_TOLERANCE_US = 30_000;
/** ffmpeg (disk) this far behind = it cannot keep up; fail instead of growing memory forever. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const STDERR_TAIL_LINES = 20;
const CLOSE_GRACE_MS = 5_000;
/** After ffmpeg exits, wait at most this long for the rest of its stderr (the error's cause). */
const STDERR_DRAIN_MS = 500;

export interface RecordingMedia {
  video: VideoParams | null;
  audio: AudioParams | null;
}

/** What the timeline asks the writer to do, in order. */
export type TimelineWrite = { kind: 'video'; jpeg: Buffer; repeats: number } | { kind: 'audio'; pcm: Buffer };

export interface TimelineStats {
  framesWritten: number;
  framesRepeated: number;
  framesDropped: number;
  audioWrittenMs: number;
  silenceMs: number;
  gapsSkipped: number;
}

type Pending = { kind: 'video' | 'audio'; data: Buffer; ptsUs: number };

/** Frames whose mean phase sets the video grid for good (a third of a second at 30 fps). */
export const PHASE_FRAMES = 10;

/** The grid shift (−¼ to +¾ of a frame) that puts frames of this phase (an angle, 2π per frame) on slot centres. */
function shiftForPhase(angle: number, frameUs: number): number {
  const phaseUs = ((((angle / (2 * Math.PI)) * frameUs) % frameUs) + frameUs) % frameUs;
  return phaseUs <= frameUs / 4 ? -phaseUs : frameUs - phaseUs;
}

/**
 * Pure: server-timestamped packets in, an ordered list of writes out, such that the n-th frame and
 * the n-th sample of ffmpeg's constant-rate inputs sit at their server time. No I/O (unit-testable).
 */
export class RecordingTimeline {
  readonly #media: RecordingMedia;
  readonly #frameUs: number;
  readonly #bytesPerSample: number;
  #pending: Pending[] = [];
  #baseUs: number | null = null;
  /** Server time cut out of the file (skipped pauses). */
  #skippedUs = 0;
  #lastPtsUs: number | null = null;
  #nextSlot = 0;
  /**
   * Added to a frame's file time before it is rounded to a slot, so that the stream's frames sit on
   * slot centres: from −¼ to +¾ of a frame, so a frame is shown at most a quarter frame early or ¾
   * late (plus its own jitter), inside the bounds the old rounding kept. Taken from the first frame,
   * then from the circular mean of the first PHASE_FRAMES, and so again after a skipped pause. Without it, second 0 is where both media have
   * data, which for video is any phase: frames stamped half a frame off the grid flipped between
   * slots on a few ms of jitter (test source, 3 s: 16–17 frames dropped and as many repeated out of
   * 90, in 1 of 6 runs and once in a clean-clone CI run).
   */
  #videoShiftUs = 0;
  /** Sum of the first frames' phases as unit vectors, and how many (see #placeVideo). */
  #phaseSum: [number, number] = [0, 0];
  #phaseCount = 0;
  #lastMoved = false;
  #lastFrame: Buffer | null = null;
  /** Fills the video while no frame has come at all (see setPlaceholderFrame). */
  #placeholder: Buffer | null = null;
  #samplesWritten = 0;
  readonly stats: TimelineStats = { framesWritten: 0, framesRepeated: 0, framesDropped: 0, audioWrittenMs: 0, silenceMs: 0, gapsSkipped: 0 };

  constructor(media: RecordingMedia) {
    this.#media = media;
    this.#frameUs = media.video ? 1e6 / media.video.fps : 10_000;
    this.#bytesPerSample = media.audio ? 2 * media.audio.channels : 2;
  }

  /** Server time (µs) that is second 0 of the file, once known. */
  get baseUs(): number | null {
    return this.#baseUs;
  }

  /**
   * A picture (black, at the announced size) for the video while not one frame has come: a camera
   * that never delivers. ffmpeg writes nothing until every input has given it a packet, so the file
   * stayed empty (0 bytes after 8 s of sound, then "Error initializing output stream").
   */
  setPlaceholderFrame(jpeg: Buffer): void {
    this.#placeholder = jpeg;
  }

  video(jpeg: Buffer, ptsUs: number): TimelineWrite[] {
    if (!this.#media.video) return [];
    return this.#push({ kind: 'video', data: jpeg, ptsUs });
  }

  audio(pcm: Buffer, ptsUs: number): TimelineWrite[] {
    if (!this.#media.audio) return [];
    return this.#push({ kind: 'audio', data: pcm, ptsUs });
  }

  #push(p: Pending): TimelineWrite[] {
    if (this.#baseUs === null) {
      this.#pending.push(p);
      if (!this.#readyToStart()) return [];
      const firsts = (['video', 'audio'] as const).flatMap((k) => this.#pending.find((q) => q.kind === k)?.ptsUs ?? []);
      // Start where every medium that arrived has data: nothing needs inventing at second 0.
      this.#baseUs = Math.max(...firsts);
      this.#lastPtsUs = this.#baseUs;
      const queued = this.#pending;
      this.#pending = [];
      return queued.flatMap((q) => this.#place(q));
    }
    return this.#place(p);
  }

  #readyToStart(): boolean {
    const kinds = new Set(this.#pending.map((q) => q.kind));
    if ((!this.#media.video || kinds.has('video')) && (!this.#media.audio || kinds.has('audio'))) return true;
    const spanUs = this.#pending[this.#pending.length - 1]!.ptsUs - this.#pending[0]!.ptsUs;
    return spanUs >= START_WAIT_US;
  }

  #place(p: Pending): TimelineWrite[] {
    const last = this.#lastPtsUs!;
    if (Math.abs(p.ptsUs - last) > MAX_GAP_US) {
      // Reconnect or server restart: continue the file one frame after the last thing written.
      this.#skippedUs += p.ptsUs - last - this.#frameUs;
      this.stats.gapsSkipped++;
      this.#phaseSum = [0, 0];
      this.#phaseCount = 0;
    }
    this.#lastPtsUs = Math.max(last, p.ptsUs);
    if (p.ptsUs - last < -MAX_GAP_US) this.#lastPtsUs = p.ptsUs;
    const fileUs = p.ptsUs - this.#baseUs! - this.#skippedUs;
    const writes = p.kind === 'video' ? this.#placeVideo(p.data, fileUs) : this.#placeAudio(p.data, fileUs);
    const fill = this.#fillStalled();
    return fill === null ? writes : [...writes, fill];
  }

  /** Brings a medium more than STALL_US behind the other to half that distance (see STALL_US). */
  #fillStalled(): TimelineWrite | null {
    const audio = this.#media.audio;
    if (!this.#media.video || !audio) return null;
    const videoUs = this.#nextSlot * this.#frameUs;
    const audioUs = (this.#samplesWritten / audio.sampleRateHz) * 1e6;
    if (videoUs - audioUs > STALL_US) {
      const silence = Math.round(((videoUs - STALL_US / 2) * audio.sampleRateHz) / 1e6) - this.#samplesWritten;
      this.#samplesWritten += silence;
      this.stats.silenceMs += (silence / audio.sampleRateHz) * 1000;
      this.stats.audioWrittenMs = (this.#samplesWritten / audio.sampleRateHz) * 1000;
      return { kind: 'audio', pcm: Buffer.alloc(silence * this.#bytesPerSample) };
    }
    const frame = this.#lastFrame ?? this.#placeholder;
    if (audioUs - videoUs > STALL_US && frame) {
      const repeats = Math.floor((audioUs - STALL_US / 2) / this.#frameUs) - this.#nextSlot;
      this.#nextSlot += repeats;
      this.stats.framesRepeated += repeats;
      return { kind: 'video', jpeg: frame, repeats };
    }
    return null;
  }

  #placeVideo(jpeg: Buffer, atUs: number): TimelineWrite[] {
    const F = this.#frameUs;
    // The phase of the frames on the file's grid: from the first frame at once, then once more from
    // the circular mean of the first PHASE_FRAMES (one frame's own jitter, several ms under load, put
    // the grid a frame late in a CI run); the one change costs at most one drop or repeat.
    if (this.#phaseCount < PHASE_FRAMES) {
      const angle = (2 * Math.PI * atUs) / F;
      this.#phaseSum[0] += Math.cos(angle);
      this.#phaseSum[1] += Math.sin(angle);
      const n = ++this.#phaseCount;
      if (n === 1 || n === PHASE_FRAMES) this.#videoShiftUs = shiftForPhase(Math.atan2(this.#phaseSum[1], this.#phaseSum[0]), F);
    }
    const fileUs = atUs + this.#videoShiftUs;
    let slot = Math.round(fileUs / F);
    // The server stamps frames when ffmpeg hands them over, so two can come close together and the
    // next one late (measured at 1280x720: 20 % of frames dropped + repeated with strict rounding).
    // A frame whose slot was just taken but which is not early takes the next slot: ≤ 1 frame late,
    // and no judder from a drop followed by a repeat. Never twice in a row: a chain of moved frames
    // would stay a frame late for good (seen under CPU load); dropping one puts it back in phase.
    const moved = slot === this.#nextSlot - 1 && fileUs >= slot * this.#frameUs && !this.#lastMoved;
    if (moved) slot = this.#nextSlot;
    if (slot < this.#nextSlot) {
      // Before second 0, or a second frame in a slot already written: it only becomes the frame
      // repeated into the next empty slots.
      if (this.#nextSlot > 0 || slot >= 0) this.stats.framesDropped++;
      this.#lastFrame = jpeg;
      return [];
    }
    const writes: TimelineWrite[] = [];
    const missing = slot - this.#nextSlot;
    if (missing > 0) {
      writes.push({ kind: 'video', jpeg: this.#lastFrame ?? jpeg, repeats: missing });
      this.stats.framesRepeated += missing;
    }
    writes.push({ kind: 'video', jpeg, repeats: 1 });
    this.stats.framesWritten++;
    this.#lastMoved = moved;
    this.#nextSlot = slot + 1;
    this.#lastFrame = jpeg;
    return writes;
  }

  #placeAudio(pcm: Buffer, fileUs: number): TimelineWrite[] {
    const rateHz = this.#media.audio!.sampleRateHz;
    const pos = Math.round((fileUs * rateHz) / 1e6);
    const toleranceSamples = Math.round((AUDIO_TOLERANCE_US * rateHz) / 1e6);
    const samples = Math.floor(pcm.length / this.#bytesPerSample);
    const writes: TimelineWrite[] = [];
    let data = pcm.subarray(0, samples * this.#bytesPerSample);
    if (pos > this.#samplesWritten + toleranceSamples) {
      const silence = pos - this.#samplesWritten;
      writes.push({ kind: 'audio', pcm: Buffer.alloc(silence * this.#bytesPerSample) });
      this.#samplesWritten += silence;
      this.stats.silenceMs += (silence / rateHz) * 1000;
    } else if (pos < this.#samplesWritten - toleranceSamples) {
      const skip = this.#samplesWritten - pos;
      if (skip >= samples) return writes;
      data = data.subarray(skip * this.#bytesPerSample);
    }
    if (data.length > 0) {
      writes.push({ kind: 'audio', pcm: data });
      this.#samplesWritten += data.length / this.#bytesPerSample;
      this.stats.audioWrittenMs = (this.#samplesWritten / rateHz) * 1000;
    }
    return writes;
  }
}

/** A black JPEG of this size (sharp, loaded only when a recording with video starts). */
async function blackJpeg(width: number, height: number): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .jpeg({ quality: 50 })
    .toBuffer();
}

/** Refuses a --record / --snapshot path that cannot be written, before anything connects; the file's stat, or null if there is none yet. */
export async function assertWritableFile(flag: string, file: string): Promise<Stats | null> {
  const dir = path.dirname(path.resolve(file));
  try {
    const st = await stat(file).catch(() => null);
    if (st?.isDirectory()) throw new Error('is a directory');
    await access(dir, fsConstants.W_OK);
    if (st) await access(file, fsConstants.W_OK);
    return st;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${dir} does not exist` : code === 'EACCES' || code === 'EPERM' ? 'no permission to write there' : (err as Error).message;
    throw usageError(flag, file, `a file in an existing, writable directory: ${why}`);
  }
}

/**
 * What the check decided about a record target: `replace` when a file was there and may be replaced
 * (an empty one, or any with `--overwrite`); otherwise the recorder's ffmpeg must not replace
 * anything (RecorderSinkOptions.replace). `release` gives up the claim on the file (claimRecordFile);
 * idempotent, and done at process exit anyway.
 */
export interface RecordTarget {
  replace: boolean;
  release(): Promise<void>;
}

/**
 * A lock on a target older than this is taken for one left by a recorder that was killed (-9, a
 * power cut) and is taken over; a live one refreshes it every RECORD_LOCK_STALE_MS / 2. 10 s is
 * proper-lockfile's default (its least allowed is 5 s).
 */
export const RECORD_LOCK_STALE_MS = 10_000;

/**
 * Claims `file` for this process's recorder until release() or exit: `<file>.lock` (a directory,
 * created atomically; proper-lockfile refreshes its mtime so a crashed recorder's claim goes stale).
 * Two recorders given one name used to pass the check together when the file was empty or absent and
 * then write into it both at once (or the second failed only when its stream arrived, seconds later);
 * now the second is refused before anything starts. The name is resolved through symlinks first, so
 * two spellings of one path are one claim. `staleMs` is for tests.
 */
export async function claimRecordFile(flag: string, file: string, staleMs = RECORD_LOCK_STALE_MS): Promise<() => Promise<void>> {
  let canonical = path.resolve(file);
  let unlock: () => Promise<void>;
  try {
    canonical = await realpath(file).catch(async () => path.join(await realpath(path.dirname(canonical)), path.basename(canonical)));
    // Loaded only here: it brings graceful-fs, which patches fs.close for the whole process.
    const { lock } = await import('proper-lockfile');
    unlock = await lock(canonical, {
      realpath: false,
      stale: staleMs,
      // Lost (a clock jump or a machine asleep for longer than staleMs): the recording goes on; only
      // the guard against a second recorder is gone. The default would throw and end the process.
      onCompromised: () => undefined,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw code === 'ELOCKED'
      ? usageError(
          flag,
          file,
          `a file no other recorder is writing: another lanstream records to it (it holds ${canonical}.lock, or one killed less than ${Math.round(staleMs / 1000)} s ago did); record to another name`,
        )
      : usageError(flag, file, `a file in an existing, writable directory: cannot create ${canonical}.lock (${(err as Error).message})`);
  }
  let released: Promise<void> | null = null;
  return () => (released ??= unlock().catch(() => undefined));
}

/**
 * Everything a record target must be before anything starts: a `.mkv` name (checkRecordFile) in an
 * existing, writable directory (assertWritableFile), claimed by no other recorder (claimRecordFile),
 * and, unless `overwrite`, no recording already there: a second run of the same command would
 * otherwise lose the first recording without a word. An empty file (created by hand, or by a run that
 * recorded nothing) is not a recording and is reused. The file is looked at again once claimed.
 */
export async function checkRecordTarget(flag: string, file: string, overwrite: boolean, overwriteFlag = '--overwrite'): Promise<RecordTarget> {
  checkRecordFile(file, flag);
  await assertWritableFile(flag, file);
  const release = await claimRecordFile(flag, file);
  try {
    const st = await assertWritableFile(flag, file);
    if (!overwrite && st && st.size > 0) {
      throw usageError(
        flag,
        file,
        `a file that does not exist yet: it holds ${st.size} bytes, maybe an earlier recording; pass ${overwriteFlag} to replace it, or another name`,
      );
    }
    return { replace: st !== null, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** serve's and watch's `--record` / `--overwrite`, checked before anything starts (exit 2); null without --record. */
export async function checkRecordFlags(flags: { record?: string; overwrite?: boolean }): Promise<RecordTarget | null> {
  if (flags.overwrite && !flags.record) throw usageError('--overwrite', true, 'to be used with --record');
  return flags.record ? checkRecordTarget('--record', flags.record, flags.overwrite === true) : null;
}

/** `.mkv` only: Matroska is what stays playable when the recording is cut off. */
export function checkRecordFile(file: string, flag = '--record'): void {
  if (path.extname(file).toLowerCase() !== '.mkv') {
    throw usageError(flag, file, 'a .mkv file name (Matroska stays playable if the recording is cut off)');
  }
}

export interface RecorderSinkOptions {
  file: string;
  ffmpegPath: string;
  logger: Logger;
  /**
   * What checkRecordTarget decided and claimed. `replace`: the file may be replaced; without it (or
   * without a target) ffmpeg is told never to replace one (`-n`): the check runs when the command
   * starts and the recording only when the stream arrives, seconds later, and a file another program
   * wrote in between was truncated by `-y`. The claim is released once the file is finished (or given up).
   */
  target?: RecordTarget | null;
}

export class RecorderSink implements RecorderHook {
  readonly name = 'recorder';
  readonly #o: RecorderSinkOptions;
  readonly #log: Logger;
  #timeline: RecordingTimeline | null = null;
  #child: ChildProcess | null = null;
  #videoIn: Writable | null = null;
  #audioIn: Writable | null = null;
  #tail: string[] = [];
  #exited: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #failed = false;
  #closeError: LanstreamError | null = null;
  #bytesWritten = 0;
  #onError: ((err: LanstreamError) => void) | null = null;

  constructor(options: RecorderSinkOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'recorder' });
  }

  /** Spawns ffmpeg for the media the server announced (WELCOME). Failures go to onError (LS_ERR_RECORD_FAILED), once. */
  start(media: RecordingMedia, onError: (err: LanstreamError) => void): void {
    if (this.#child || this.#failed) return;
    this.#onError = onError;
    if (!media.video && !media.audio) {
      this.#fail('Nothing to record: the server sends neither the video nor the audio this viewer asked for');
      return;
    }
    // The constant-rate inputs below are raw MJPEG and raw PCM. Opus arrives here already decoded to
    // PCM by the viewer; H.264 would need another input (its units cannot be repeated or dropped to
    // fit the frame grid without breaking the decoding).
    const unsupported = media.video && media.video.codec !== 'mjpeg' ? media.video.codec : null;
    if (unsupported) {
      this.#fail(`--record supports MJPEG video; this server sends ${unsupported}: record with --no-video (sound only), or serve --video-codec mjpeg`);
      return;
    }
    this.#timeline = new RecordingTimeline(media);
    if (media.video) {
      const timeline = this.#timeline;
      blackJpeg(media.video.width, media.video.height).then(
        (jpeg) => timeline.setPlaceholderFrame(jpeg),
        (err: unknown) => this.#log.debug({ err: String(err) }, 'no placeholder picture for the recording'),
      );
    }
    const args = buildRecorderArgs(media, this.#o.file, this.#o.target?.replace === true);
    this.#log.debug({ args }, 'starting the recorder');
    const audioFd = media.video ? 3 : 0;
    const stdio: ('pipe' | 'ignore')[] = media.video && media.audio ? ['pipe', 'ignore', 'pipe', 'pipe'] : ['pipe', 'ignore', 'pipe'];
    const child = spawn(this.#o.ffmpegPath, args, { stdio, detached: true });
    this.#child = child;
    this.#videoIn = media.video ? (child.stdio[0] as Writable) : null;
    this.#audioIn = media.audio ? (child.stdio[audioFd] as Writable) : null;
    for (const input of [this.#videoIn, this.#audioIn]) input?.on('error', () => undefined); // exit handler reports
    let partial = '';
    const stderrClosed = new Promise<void>((done) => child.stderr!.once('close', () => done()));
    child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split(/\r?\n/);
      partial = lines.pop()!.slice(-1000);
      this.#tail.push(...lines.filter((l) => l.trim() !== '').map((l) => l.slice(0, 1000)));
      this.#tail = this.#tail.slice(-STDERR_TAIL_LINES);
    });
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        this.#fail(`cannot run ${this.#o.ffmpegPath}: ${err.message}`, err);
        resolve();
      });
      child.once('exit', (code, signal) => {
        // At 'exit' ffmpeg's last lines can still be in the pipe, and they name the cause.
        const drained = new Promise<void>((done) => setTimeout(done, STDERR_DRAIN_MS).unref());
        void Promise.race([stderrClosed, drained]).then(() => {
          const how = this.#exitText(code, signal);
          // The one line the user reads (also with --quiet) says why: "…: No space left on device".
          if (this.#closing === null) {
            this.#fail(
              this.#tail.some((l) => FFMPEG_FILE_EXISTS.test(l))
                ? `${this.#o.file} appeared after lanstream had checked it (another recorder given the same name?) and was left as it is: record to another name, or pass --overwrite`
                : `ffmpeg stopped writing ${this.#o.file} (${how})`,
            );
          } else if (code !== 0 && !this.#failed) {
            // Closing, but ffmpeg did not finish the file: out of time on a slow disk (stopped after
            // CLOSE_GRACE_MS), or it failed writing the end (a full disk). The run must not say "done".
            this.#log.warn({ code, signal, stderrTail: this.#tail }, `ffmpeg ended ${this.#o.file} with ${signal ?? `exit ${code}`}`);
            this.#closeError = new LanstreamError('LS_ERR_RECORD_FAILED', `ffmpeg did not finish ${this.#o.file} (${how}): its end may be missing`);
          }
          resolve();
        });
      });
    });
    this.#log.info({ file: this.#o.file, video: media.video !== null, audio: media.audio !== null }, 'recording');
  }

  pushFrame(jpeg: Buffer, ptsUs: number): void {
    if (this.#timeline && !this.#failed && !this.#closing) this.#apply(this.#timeline.video(jpeg, ptsUs));
  }

  pushPcm(pcm: Buffer, ptsUs: number): void {
    if (this.#timeline && !this.#failed && !this.#closing) this.#apply(this.#timeline.audio(pcm, ptsUs));
  }

  stats(): TimelineStats & { bytesWritten: number } {
    return {
      ...(this.#timeline?.stats ?? { framesWritten: 0, framesRepeated: 0, framesDropped: 0, audioWrittenMs: 0, silenceMs: 0, gapsSkipped: 0 }),
      bytesWritten: this.#bytesWritten,
    };
  }

  /** Set when close() ended with ffmpeg failing to finish the file (the caller exits 1 with it). */
  get closeError(): LanstreamError | null {
    return this.#closeError;
  }

  /** Server time (µs) that is second 0 of the file, once the first packets arrived. */
  get baseUs(): number | null {
    return this.#timeline?.baseUs ?? null;
  }

  /** The ffmpeg child's PID (tests kill it to prove the file survives). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Graceful, idempotent: end both inputs so ffmpeg writes the index and duration, then wait. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const child = this.#child;
      if (!child || !this.#exited) return;
      this.#videoIn?.end();
      this.#audioIn?.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), CLOSE_GRACE_MS);
      const killer = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS + 2_000);
      await this.#exited;
      clearTimeout(timer);
      clearTimeout(killer);
      // ffmpeg writes on through its open descriptor into a file (or directory) deleted meanwhile,
      // and ends with exit 0: without this check the run said "done" with no file left.
      if (!this.#failed && !this.#closeError && (await stat(this.#o.file).catch(() => null)) === null) {
        this.#closeError = new LanstreamError(
          'LS_ERR_RECORD_FAILED',
          `${this.#o.file} is no longer there: it (or its directory) was deleted or moved while recording`,
        );
      }
      this.#log.info({ file: this.#o.file, ...this.stats() }, 'recording closed');
    })().finally(() => this.#o.target?.release());
    return this.#closing;
  }

  destroy(err?: Error): void {
    if (err) this.#log.error({ err: err.message }, 'recorder destroyed');
    this.#closing ??= Promise.resolve().then(() => this.#o.target?.release());
    this.#child?.kill('SIGKILL');
  }

  #apply(writes: TimelineWrite[]): void {
    for (const w of writes) {
      const input = w.kind === 'video' ? this.#videoIn : this.#audioIn;
      if (!input) continue;
      const n = w.kind === 'video' ? w.repeats : 1;
      const data = w.kind === 'video' ? w.jpeg : w.pcm;
      for (let i = 0; i < n; i++) input.write(data);
      this.#bytesWritten += data.length * n;
    }
    const queued = (this.#videoIn?.writableLength ?? 0) + (this.#audioIn?.writableLength ?? 0);
    if (queued > MAX_QUEUED_BYTES) {
      this.#fail(`ffmpeg cannot keep up writing ${this.#o.file} (${Math.round(queued / 1e6)} MB queued): is the disk full or too slow?`);
      this.#child?.kill('SIGKILL');
    }
  }

  /** "exit 1: <ffmpeg's last line>" (or the signal): how ffmpeg ended and, from its stderr, why. */
  #exitText(code: number | null, signal: NodeJS.Signals | null): string {
    const last = this.#tail[this.#tail.length - 1];
    return `${signal ?? `exit ${code}`}${last ? `: ${last}` : ''}`;
  }

  #fail(message: string, cause?: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#onError?.(new LanstreamError('LS_ERR_RECORD_FAILED', message, { cause, details: { file: this.#o.file, stderrTail: this.#tail } }));
  }
}

/** What ffmpeg prints when `-n` finds the output there (and exits 1 without touching it). */
const FFMPEG_FILE_EXISTS = /already exists\. Exiting\.$/;

/**
 * ffmpeg argv: constant-rate raw inputs (the timeline made them so), stream copy into Matroska.
 * `replace`: `-y`, else `-n` (RecorderSinkOptions.replace).
 */
export function buildRecorderArgs(media: RecordingMedia, file: string, replace: boolean): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', replace ? '-y' : '-n'];
  const maps: string[] = [];
  let index = 0;
  if (media.video) {
    args.push('-thread_queue_size', '1024', '-f', 'mjpeg', '-framerate', String(media.video.fps), '-i', 'pipe:0');
    maps.push('-map', `${index++}:v`);
  }
  if (media.audio) {
    // prettier-ignore
    args.push(
      '-thread_queue_size', '1024', '-f', 's16le', '-ar', String(media.audio.sampleRateHz), '-ac', String(media.audio.channels),
      '-i', media.video ? 'pipe:3' : 'pipe:0',
    );
    maps.push('-map', `${index}:a`);
  }
  return [...args, ...maps, '-c', 'copy', '-f', 'matroska', '-flush_packets', '1', '-cluster_time_limit', '1000', file];
}
