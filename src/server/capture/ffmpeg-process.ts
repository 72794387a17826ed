/**
 * One ffmpeg child: stdout streamed as 'data' (never buffered), the last stderr lines kept because they
 * are what the user needs when capture fails, and a bounded stop. Used by CaptureSource, one per medium.
 *
 * close() cannot ask ffmpeg to quit with 'q' (we pass -nostdin so a terminal's keys never reach it), so
 * it sends SIGTERM, on which ffmpeg finishes cleanly, and SIGKILL after graceMs in case a device read
 * hangs in the kernel.
 */
import { EventEmitter } from 'node:events';
import { execa, type ResultPromise } from 'execa';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

const STDERR_TAIL_LINES = 20;
/**
 * The first lines are kept too: ffmpeg often says what is wrong first and then lists (avfoundation's
 * "Selected framerate (24.000000) is not supported", then one line per mode of the camera, then EIO).
 */
const STDERR_HEAD_LINES = 5;
/** A line longer than this is cut: a runaway stderr line must not grow without bound. */
const STDERR_LINE_MAX_CHARS = 1_000;

export interface FfmpegExit {
  code: number | null;
  signal: string | null;
  stderrTail: string[];
  /** The first lines ffmpeg wrote that are no longer in stderrTail (at most STDERR_HEAD_LINES). */
  stderrHead: string[];
  /** True when close() or destroy() asked for this exit. */
  requested: boolean;
  /** Set when the process could not be started at all. */
  error?: LanstreamError;
}

export interface FfmpegProcessEvents {
  data: [chunk: Buffer];
  exit: [exit: FfmpegExit];
}

export interface FfmpegProcessOptions {
  ffmpegPath: string;
  args: string[];
  /** For logs: 'video' / 'audio'. */
  name: string;
  logger: Logger;
  /** SIGTERM → SIGKILL delay in close(); default 2000 ms. */
  graceMs?: number;
  /** Extra environment (e.g. PULSE_SERVER), added to this process's own. */
  env?: Record<string, string>;
}

export class FfmpegProcess extends EventEmitter<FfmpegProcessEvents> {
  readonly #opts: FfmpegProcessOptions;
  readonly #graceMs: number;
  readonly #logger: Logger;
  #child: ResultPromise | null = null;
  #exited: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #requested = false;
  #done = false;
  #tail: string[] = [];
  #head: string[] = [];
  #lines = 0;
  #partialLine = '';

  constructor(opts: FfmpegProcessOptions) {
    super();
    this.#opts = opts;
    this.#graceMs = opts.graceMs ?? 2_000;
    this.#logger = opts.logger.child({ component: 'ffmpeg', stream: opts.name });
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== null && !this.#done;
  }

  /** The last ~20 lines ffmpeg wrote to stderr. */
  get stderrTail(): string[] {
    return this.#partialLine === '' ? [...this.#tail] : [...this.#tail, this.#partialLine].slice(-STDERR_TAIL_LINES);
  }

  start(): void {
    if (this.#child !== null) throw new Error(`ffmpeg ${this.#opts.name} already started`);
    const { ffmpegPath, args } = this.#opts;
    this.#logger.debug({ ffmpegPath, args }, 'starting ffmpeg');
    const child = execa(ffmpegPath, args, {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      ...(this.#opts.env === undefined ? {} : { env: this.#opts.env }),
      forceKillAfterDelay: false,
      // Our own close() decides the order of shutdown; execa's cleanup still kills it if Node exits first.
      cleanup: true,
    });
    this.#child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.emit('data', chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => this.#onStderr(text));
    this.#exited = child.then((result) => {
      this.#done = true;
      if (this.#partialLine !== '') this.#pushLine(this.#partialLine);
      this.#partialLine = '';
      const exit: FfmpegExit = {
        code: result.exitCode ?? null,
        signal: result.signal ?? null,
        stderrTail: this.stderrTail,
        stderrHead: this.#head.slice(0, Math.max(0, Math.min(STDERR_HEAD_LINES, this.#lines - STDERR_TAIL_LINES))),
        requested: this.#requested,
      };
      if (result.failed && result.exitCode === undefined && result.signal === undefined) {
        exit.error = spawnError(ffmpegPath, result.code, result);
      }
      this.#logger.debug({ code: exit.code, signal: exit.signal, requested: exit.requested }, 'ffmpeg exited');
      this.emit('exit', exit);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the child is gone. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#requested = true;
    const child = this.#child;
    const exited = this.#exited;
    if (child === null || exited === null || this.#done) {
      this.#closing = Promise.resolve();
      return this.#closing;
    }
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (!this.#done) {
          this.#logger.warn({ graceMs: this.#graceMs }, 'ffmpeg ignored SIGTERM; killing it');
          child.kill('SIGKILL');
        }
        resolve();
      }, this.#graceMs);
      timer.unref();
    });
    this.#closing = Promise.race([exited, forced.then(() => exited)]).finally(() => clearTimeout(timer));
    return this.#closing;
  }

  /** Immediate SIGKILL; the 'exit' event still follows. */
  destroy(): void {
    this.#requested = true;
    if (this.#child !== null && !this.#done) this.#child.kill('SIGKILL');
  }

  #onStderr(text: string): void {
    // ffmpeg ends progress lines with \r; treat it as a line end too.
    const parts = (this.#partialLine + text).split(/\r\n|\n|\r/);
    this.#partialLine = (parts.pop() ?? '').slice(0, STDERR_LINE_MAX_CHARS);
    for (const line of parts) if (line.trim() !== '') this.#pushLine(line);
  }

  #pushLine(line: string): void {
    this.#lines++;
    if (this.#head.length < STDERR_HEAD_LINES) this.#head.push(line.slice(0, STDERR_LINE_MAX_CHARS));
    this.#tail.push(line.slice(0, STDERR_LINE_MAX_CHARS));
    if (this.#tail.length > STDERR_TAIL_LINES) this.#tail.shift();
  }
}

function spawnError(ffmpegPath: string, errno: string | undefined, cause: unknown): LanstreamError {
  if (errno === 'ENOENT' || errno === 'EACCES') {
    return new LanstreamError('LS_ERR_FFMPEG_NOT_FOUND', `Cannot run ${ffmpegPath} (${errno}): install ffmpeg or pass --ffmpeg /path/to/ffmpeg`, {
      cause,
      details: { ffmpegPath, errno },
    });
  }
  return new LanstreamError('LS_ERR_CAPTURE_FAILED', `Cannot start ${ffmpegPath}${errno ? ` (${errno})` : ''}`, { cause, details: { ffmpegPath, errno } });
}

interface FailurePattern {
  test: RegExp;
  /** Only for this medium (the same words mean different things for a camera and a microphone). */
  only?: 'camera' | 'microphone';
  code: 'LS_ERR_DEVICE_NOT_FOUND' | 'LS_ERR_DEVICE_BUSY' | 'LS_ERR_CAPTURE_FAILED';
  /** `subject` is e.g. 'camera "/dev/video0"' or 'microphone'; `chosen`: the user named the device (not the default). */
  advice: (subject: string, what: 'camera' | 'microphone', chosen: boolean, stderrLines: readonly string[]) => string;
}

const LIST_HINT = 'list them with: lanstream devices';
/**
 * The default device is missing (a machine without a camera): say what runs without one, as
 * `lanstream devices` does when it finds none.
 */
const NO_DEVICE_HINT = {
  camera: ', or --source test for the built-in test picture and tone',
  microphone: ', or --no-audio, or --source test for the built-in test picture and tone',
};

/** The device is not there: which flag picks another, and (for the default one) what runs without it. */
function notFoundAdvice(subject: string, what: 'camera' | 'microphone', chosen: boolean): string {
  return `The ${subject} does not exist or cannot be opened: pass another --${what === 'camera' ? 'video' : 'audio'}-device (${LIST_HINT})${chosen ? '' : NO_DEVICE_HINT[what]}`;
}

/** EIO; ffmpeg on Windows words it "I/O error" (libavutil/error.c's own table). */
const EIO = /Input\/output error|: I\/O error/i;

// The first pattern that matches any line wins: "busy" comes first because a busy v4l2 device also
// prints a generic open failure.
const FAILURE_PATTERNS: FailurePattern[] = [
  {
    test: /Device or resource busy|EBUSY|already in use|being used by another/i,
    code: 'LS_ERR_DEVICE_BUSY',
    advice: (subject) => `The ${subject} is used by another program: close it (video calls, browsers) and try again`,
  },
  {
    test: /Connection refused|pa_context_connect|Connection terminated|No such process/i,
    only: 'microphone',
    code: 'LS_ERR_CAPTURE_FAILED',
    advice: (subject) => `PulseAudio is not running, so the ${subject} cannot be opened: start it (pulseaudio --start) or use ALSA (--audio-backend alsa)`,
  },
  {
    test: /Permission denied|EACCES|not authorized|not permitted/i,
    code: 'LS_ERR_CAPTURE_FAILED',
    advice: (subject) =>
      `No permission to open the ${subject}: on Linux add your user to the video/audio group; on macOS allow the terminal under System Settings → Privacy`,
  },
  {
    // dshow names a missing microphone "audio only device" (dshow.c devtypename).
    test: /No such file or directory|No such device|Cannot open video device|Could not find (video|audio)(?: only)? device|Could not enumerate|cannot open audio device|Cannot get card index|Inappropriate ioctl|Not a video capture device|device not found/i,
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    advice: notFoundAdvice,
  },
  {
    // avfoundation takes only a mode's highest rate (within 0.01) and listed sizes; dshow only what a
    // format's ranges allow. Both then end with EIO, which is not an unplugged camera.
    test: /Selected (framerate|video size) \(.*\) is not supported by the device|Could not set video options/i,
    only: 'camera',
    code: 'LS_ERR_CAPTURE_FAILED',
    advice: (subject, _what, _chosen, lines) => {
      // avfoundation lists its modes as "  1280x720@[1.000000 30.000000]fps"; the highest rate is the one it takes.
      const modes = lines.flatMap((l) => {
        const m = /(\d+x\d+)@\[[\d.]+ ([\d.]+)\]fps/.exec(l);
        return m ? [`${m[1]} at ${Number(m[2])} fps`] : [];
      });
      const listed = [...new Set(modes)].slice(0, 6);
      return `The ${subject} has no mode of that size and frame rate: pass a --size and --fps it offers${listed.length ? ` (it lists ${listed.join(', ')})` : ''}`;
    },
  },
  {
    // After the specific "not found" messages: a camera that opened and then fails with EIO was
    // unplugged or crashed, while a PulseAudio/ALSA source that does not exist reports only EIO.
    test: EIO,
    only: 'camera',
    code: 'LS_ERR_CAPTURE_FAILED',
    advice: (subject) => `The ${subject} stopped delivering frames (unplugged or driver error): reconnect it and try again`,
  },
  {
    test: EIO,
    only: 'microphone',
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    advice: notFoundAdvice,
  },
];

/** Turns the stderr of a failed capture ffmpeg into an error that says what to do. */
export function classifyCaptureFailure(
  stderrTail: string[],
  what: 'camera' | 'microphone',
  device?: string,
  stderrHead: readonly string[] = [],
): LanstreamError {
  const subject = device === undefined ? what : `${what} "${device}"`;
  const details = { stderrTail: [...stderrTail], what, ...(device === undefined ? {} : { device }) };
  const lines = [...stderrHead, ...stderrTail];
  for (const pattern of FAILURE_PATTERNS) {
    if (pattern.only !== undefined && pattern.only !== what) continue;
    const line = lines.find((l) => pattern.test.test(l));
    if (line !== undefined) {
      return new LanstreamError(pattern.code, `${pattern.advice(subject, what, device !== undefined, lines)} (ffmpeg: ${line.trim()})`, { details });
    }
  }
  const last = stderrTail.at(-1)?.trim();
  return new LanstreamError(
    'LS_ERR_CAPTURE_FAILED',
    `ffmpeg stopped capturing the ${subject} (${last ? `ffmpeg: ${last}` : 'no message from ffmpeg'}): check the device and the capture options`,
    { details },
  );
}
