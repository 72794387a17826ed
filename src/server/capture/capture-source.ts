/**
 * One live capture (camera or microphone): an ffmpeg child whose stdout goes through the MJPEG
 * splitter, the FLV H.264 splitter or the PCM packetiser (then, for Opus, the in-process encoder) and
 * comes out as stamped chunks for the hub. Owned by serve.ts,
 * which starts it when the first viewer arrives and closes it when the last one leaves.
 *
 * start() resolves only when the first chunk arrives, so "ffmpeg runs" is never mistaken for "the
 * camera works"; if ffmpeg exits first, the rejection carries its stderr classified into an error that
 * says what to do. Once live, an unexpected exit (USB hiccup, PulseAudio restart) restarts ffmpeg with
 * a capped backoff; a run of restarts that never get back to live is reported as 'failed'.
 *
 * With a standby (FfmpegStandby), start() opens the gate of an ffmpeg spawned while capture was idle
 * instead of spawning one: x11grab 720p, first JPEG 113–137 ms after a spawn, ~62 ms after the gate.
 * A standby child that dies before its first chunk is retried once cold (it may have been killed while
 * it waited); restarts after a crash always spawn cold.
 */
import { MediaFlag, DEFAULT_LIMITS } from '../../protocol/constants.js';
import { nowUs } from '../../shared/clock.js';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CapturedChunk } from './capture-types.js';
import { FfmpegProcess, classifyCaptureFailure, type FfmpegExit } from './ffmpeg-process.js';
import type { FfmpegStandby } from './ffmpeg-standby.js';
import { FlvH264Splitter } from './flv-h264-splitter.js';
import { MjpegSplitter } from './mjpeg-splitter.js';
import { PcmPacketiser } from './pcm-packetiser.js';

export type CaptureState = 'starting' | 'live' | 'restarting' | 'failed';

export interface CaptureSourceOptions {
  kind: 'video' | 'audio';
  ffmpegPath: string;
  args: string[];
  logger: Logger;
  /** Named in error messages ("the camera "/dev/video0" is used by another program"). */
  device?: string;
  /** Default: the protocol's maxVideoBytes. */
  maxFrameBytes?: number;
  /** Required for audio. */
  audio?: { sampleRateHz: number; channels: number; packetMs: number };
  /** What ffmpeg writes: default MJPEG / s16le; 'h264' = FLV (FlvH264Splitter). */
  codec?: 'h264';
  /**
   * Audio only: encodes each PCM packet (e.g. OpusPacketEncoder) before it goes to onChunk. Owned
   * from here on: reset() when ffmpeg restarts, destroy() on close().
   */
  audioEncoder?: AudioPacketEncoder;
  onChunk: (c: CapturedChunk) => void;
  onStatus?: (state: CaptureState, detail?: string) => void;
  restart?: {
    /** Consecutive restarts that fail to get back to live before giving up; default 5. */
    maxAttempts?: number;
    /** Delay before restart n (the last entry repeats); default 250, 500, 1000, 2000, 4000 ms. */
    backoffMs?: number[];
  };
  /** Bound on start(): no chunk within this time is a failure; default 10 s. */
  startTimeoutMs?: number;
  /**
   * After start: a child that sends nothing for this long is stopped and goes through the restart
   * path (backoff, then 'failed'), as if it had crashed; default STALL_TIMEOUT_MS.
   */
  stallTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace for ffmpeg; default 2 s. */
  graceMs?: number;
  /** Extra environment for ffmpeg (e.g. PULSE_SERVER). */
  env?: Record<string, string>;
  /** A gated ffmpeg with the same args for start() to take; none = cold spawn. */
  standby?: Pick<FfmpegStandby, 'take'>;
}

export interface AudioPacketEncoder {
  /** Same ptsUs and flags out; throws on input it cannot encode (the packet is then dropped). */
  encode(pcm: CapturedChunk): CapturedChunk;
  reset(): void;
  destroy(): void;
}

const DEFAULT_BACKOFF_MS = [250, 500, 1_000, 2_000, 4_000];
/** A run that stayed live this long resets the failure count: it was a hiccup, not a broken device. */
const STABLE_RUN_US = 5_000_000;
const OVERSIZE_LOG_INTERVAL_US = 1_000_000;

/**
 * A v4l2 camera that stops streaming without an error (a USB stall, a device that came back after a
 * restart but never streams) or a wedged sound server leaves ffmpeg blocked in a read that never
 * returns: it neither sends nor exits. Without a timer the source then stayed 'live' or 'restarting'
 * for good, a frozen picture that serve's retry of failed capture never saw.
 */
export const STALL_TIMEOUT_MS = 5_000;

export class CaptureSource {
  readonly #o: CaptureSourceOptions;
  readonly #log: Logger;
  readonly #what: 'camera' | 'microphone';
  readonly #maxAttempts: number;
  readonly #backoffMs: number[];
  readonly #splitter: MjpegSplitter | null = null;
  readonly #packetiser: PcmPacketiser | null = null;
  /** Framing of H.264; the MJPEG/PCM fields above stay null then. */
  readonly #framer: FlvH264Splitter | null = null;
  readonly #encoder: AudioPacketEncoder | null;

  #process: FfmpegProcess | null = null;
  /** Children abandoned after a failed start, still within their grace period. */
  readonly #dying = new Set<FfmpegProcess>();
  #state: CaptureState | null = null;
  #starting: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #settleStart: ((err?: Error) => void) | null = null;
  #spawnedAtUs = 0;
  /** The current child came from the standby and has not been live yet. */
  #fromStandby = false;
  #startTimer: NodeJS.Timeout | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  /** Armed for the current child once past start(), refreshed at every chunk (see STALL_TIMEOUT_MS). */
  #stallTimer: NodeJS.Timeout | null = null;
  #failedAttempts = 0;
  #liveSinceUs: number | null = null;
  #flagNextVideoDiscontinuity = false;
  #flagNextAudioDiscontinuity = false;
  #failedEncodes = 0;
  #oversizeFrames = 0;
  #lastOversizeLogUs = -Infinity;
  #lastError: LanstreamError | null = null;

  constructor(opts: CaptureSourceOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.#what = opts.kind === 'video' ? 'camera' : 'microphone';
    this.#maxAttempts = opts.restart?.maxAttempts ?? 5;
    this.#backoffMs = opts.restart?.backoffMs?.length ? opts.restart.backoffMs : DEFAULT_BACKOFF_MS;
    if (opts.codec === 'h264') {
      this.#framer = new FlvH264Splitter({
        maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_LIMITS.maxVideoBytes,
        onAccessUnit: (au, keyframe) => this.#onVideoFrame(au, keyframe),
        onOversize: (bytes) => this.#onOversize(bytes),
        onCorrupt: (reason) => {
          this.#log.error({ reason }, 'unexpected H.264 stream from ffmpeg; restarting capture');
          // The splitter ignores everything from here on: only a new ffmpeg (a new FLV header) helps.
          void this.#process?.close();
        },
      });
    } else if (opts.kind === 'video') {
      this.#splitter = new MjpegSplitter({
        maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_LIMITS.maxVideoBytes,
        onFrame: (jpeg) => this.#onVideoFrame(jpeg),
        onOversize: (bytes) => this.#onOversize(bytes),
      });
    } else {
      if (opts.audio === undefined) throw new TypeError('CaptureSource: kind "audio" needs the audio format (sampleRateHz, channels, packetMs)');
      this.#packetiser = new PcmPacketiser({
        ...opts.audio,
        clock: nowUs,
        onPacket: (data, ptsUs, flags) => this.#onAudioPacket({ data, ptsUs, flags }),
      });
    }
    this.#encoder = opts.audioEncoder ?? null;
  }

  /** True from start() until close() or a final failure. */
  get running(): boolean {
    return this.#state !== null && this.#state !== 'failed' && this.#closing === null;
  }

  get state(): CaptureState | null {
    return this.#state;
  }

  /** The error that ended capture, once state is 'failed'. */
  get lastError(): LanstreamError | null {
    return this.#lastError;
  }

  /** PID of the current ffmpeg (tests and diagnostics). */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  start(): Promise<void> {
    if (this.#starting !== null) return this.#starting;
    if (this.#closing !== null) return Promise.reject(new Error('CaptureSource: start() after close()'));
    this.#starting = new Promise<void>((resolve, reject) => {
      this.#settleStart = (err) => {
        this.#settleStart = null;
        if (this.#startTimer !== null) clearTimeout(this.#startTimer);
        this.#startTimer = null;
        if (err) reject(err);
        else resolve();
      };
    });
    this.#setState('starting');
    const timeoutMs = this.#o.startTimeoutMs ?? 10_000;
    this.#startTimer = setTimeout(() => {
      const tail = this.#process?.stderrTail ?? [];
      const err = new LanstreamError(
        'LS_ERR_CAPTURE_FAILED',
        `No ${this.#o.kind} from ffmpeg within ${timeoutMs} ms: check that the ${this.#what} works (lanstream devices) and is not paused`,
        { details: { stderrTail: tail } },
      );
      this.#failStart(err);
    }, timeoutMs);
    this.#spawn(true);
    return this.#starting;
  }

  /** Graceful and idempotent: stops ffmpeg (SIGTERM, then SIGKILL after the grace period). */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#clearRestart();
    this.#clearStall();
    const children = [this.#process, ...this.#dying].map((c) => c?.close());
    // Nothing reaches the encoder after this: data events are ignored once closing.
    this.#encoder?.destroy();
    this.#closing = Promise.all(children).then(() => {
      this.#process = null;
      this.#dying.clear();
    });
    // Closing before the first chunk is not a capture failure.
    this.#settleStart?.();
    return this.#closing;
  }

  #spawn(useStandby = false): void {
    const taken = useStandby ? (this.#o.standby?.take() ?? null) : null;
    const child =
      taken ??
      new FfmpegProcess({
        ffmpegPath: this.#o.ffmpegPath,
        args: this.#o.args,
        name: this.#o.kind,
        logger: this.#log,
        ...(this.#o.graceMs === undefined ? {} : { graceMs: this.#o.graceMs }),
        ...(this.#o.env === undefined ? {} : { env: this.#o.env }),
      });
    this.#process = child;
    this.#fromStandby = taken !== null;
    this.#liveSinceUs = null;
    this.#spawnedAtUs = nowUs();
    child.on('data', (chunk) => {
      if (this.#process !== child || this.#closing !== null) return;
      this.#stallTimer?.refresh();
      if (this.#framer) this.#framer.push(chunk);
      else if (this.#splitter) this.#splitter.push(chunk);
      else this.#packetiser?.push(chunk);
    });
    child.on('exit', (exit) => this.#onExit(child, exit));
    if (taken === null) child.start();
    // start() has its own timer; after it (a restart), this child must send within the stall limit.
    if (this.#settleStart === null) this.#armStall(child);
  }

  #armStall(child: FfmpegProcess): void {
    this.#clearStall();
    const limitMs = this.#o.stallTimeoutMs ?? STALL_TIMEOUT_MS;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      if (this.#process !== child || this.#closing !== null) return;
      this.#log.warn({ limitMs }, `no ${this.#o.kind} from ffmpeg for ${limitMs} ms; restarting it`);
      void child.close(); // its exit goes through #onExit: restart with backoff, 'failed' in the end
    }, limitMs);
    this.#stallTimer.unref();
  }

  #clearStall(): void {
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
  }

  /** A new child's stream starts from nothing: what the last one left half-framed must not prefix it. */
  #resetFraming(): void {
    this.#splitter?.reset();
    this.#packetiser?.reset();
    this.#framer?.reset();
    this.#encoder?.reset();
  }

  #emit(chunk: CapturedChunk): void {
    if (this.#closing !== null) return;
    if (this.#liveSinceUs === null) {
      this.#liveSinceUs = nowUs();
      // Time to first picture is dominated by this on-demand start; keep it visible at debug level.
      this.#log.debug({ firstChunkAfterMs: Math.round((this.#liveSinceUs - this.#spawnedAtUs) / 1000), standby: this.#fromStandby }, 'first chunk from ffmpeg');
      this.#fromStandby = false;
      this.#setState('live');
      this.#settleStart?.();
      if (this.#stallTimer === null && this.#process !== null) this.#armStall(this.#process);
    }
    this.#o.onChunk(chunk);
  }

  #onAudioPacket(pcm: CapturedChunk): void {
    if (this.#encoder === null) return this.#emit(pcm);
    let encoded: CapturedChunk;
    try {
      encoded = this.#encoder.encode(pcm);
    } catch (err) {
      // Not expected (the packetiser cuts exact packets); losing a packet beats losing the server.
      this.#failedEncodes++;
      this.#flagNextAudioDiscontinuity = true;
      if (this.#failedEncodes === 1) this.#log.error({ err, bytes: pcm.data.length }, 'audio encoder failed; dropping the packet');
      return;
    }
    if (this.#flagNextAudioDiscontinuity) encoded = { ...encoded, flags: encoded.flags | MediaFlag.DISCONTINUITY };
    this.#flagNextAudioDiscontinuity = false;
    this.#emit(encoded);
  }

  #onVideoFrame(jpeg: Buffer, keyframe = true): void {
    // Stamped when the frame is complete (JPEG EOI, end of the FLV tag): it could be shown from now.
    let flags: number = keyframe ? MediaFlag.KEYFRAME : 0;
    if (this.#flagNextVideoDiscontinuity) flags |= MediaFlag.DISCONTINUITY;
    this.#flagNextVideoDiscontinuity = false;
    this.#emit({ data: jpeg, ptsUs: nowUs(), flags });
  }

  #onOversize(bytes: number): void {
    this.#oversizeFrames++;
    this.#flagNextVideoDiscontinuity = true;
    const now = nowUs();
    if (now - this.#lastOversizeLogUs >= OVERSIZE_LOG_INTERVAL_US) {
      this.#lastOversizeLogUs = now;
      this.#log.warn(
        { bytes, droppedFrames: this.#oversizeFrames, maxFrameBytes: this.#o.maxFrameBytes ?? DEFAULT_LIMITS.maxVideoBytes },
        'dropped a JPEG frame above the size limit: lower the resolution or raise the quality number',
      );
    }
  }

  #onExit(child: FfmpegProcess, exit: FfmpegExit): void {
    if (this.#process !== child || this.#closing !== null) return;
    this.#process = null;
    this.#clearStall();
    if (this.#settleStart !== null && this.#fromStandby) {
      // Killed while it waited at the gate, or a real device error: a cold spawn tells them apart.
      this.#log.debug({ code: exit.code, signal: exit.signal, stderrTail: exit.stderrTail }, 'standby ffmpeg exited before its first chunk; starting cold');
      this.#resetFraming();
      this.#spawn();
      return;
    }
    const err = exit.error ?? classifyCaptureFailure(exit.stderrTail, this.#what, this.#o.device, exit.stderrHead);
    if (this.#settleStart !== null) {
      // Never got to live: the device or the arguments are wrong, restarting would not help.
      this.#failStart(err);
      return;
    }
    // A run that stayed live for a while was a hiccup; short runs and runs that never got live count
    // toward giving up.
    if (this.#liveSinceUs !== null && nowUs() - this.#liveSinceUs >= STABLE_RUN_US) this.#failedAttempts = 0;
    this.#failedAttempts++;
    if (this.#failedAttempts > this.#maxAttempts) {
      this.#lastError = err;
      this.#setState('failed', err.message);
      return;
    }
    const delayMs = this.#backoffMs[Math.min(this.#failedAttempts - 1, this.#backoffMs.length - 1)]!;
    this.#log.debug({ code: exit.code, signal: exit.signal, attempt: this.#failedAttempts, delayMs, stderrTail: exit.stderrTail }, 'ffmpeg exited; restarting');
    this.#setState('restarting', `${err.message} — restart ${this.#failedAttempts}/${this.#maxAttempts} in ${delayMs} ms`);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#closing !== null) return;
      this.#resetFraming();
      this.#flagNextVideoDiscontinuity = true;
      this.#spawn();
    }, delayMs);
  }

  #failStart(err: LanstreamError): void {
    this.#lastError = err;
    this.#state = 'failed';
    const child = this.#process;
    this.#process = null;
    if (child !== null) {
      this.#dying.add(child);
      void child.close().then(() => this.#dying.delete(child));
    }
    this.#settleStart?.(err);
  }

  #clearRestart(): void {
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
  }

  #setState(state: CaptureState, detail?: string): void {
    this.#state = state;
    this.#o.onStatus?.(state, detail);
  }
}
