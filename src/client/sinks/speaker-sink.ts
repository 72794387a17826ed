/**
 * Audio sink: the npm `speaker` package (ALSA on Linux), paced by the wall clock.
 *
 * `speaker` opens ALSA with a 0.5 s buffer and cannot report how full it is; written on arrival it
 * measured 122–127 ms mouth to ear (DESIGN.md "The speaker"), and whatever piles up there after a
 * network burst stays as latency. So we never let its buffer fill: WallClockPacer estimates what the
 * device holds (written − played, played = time since the anchor × rate) and we only write while
 * that is under the target. Audio that arrives faster than that waits here, and when it piles up
 * beyond target + margin the oldest is dropped so latency cannot creep. When no audio comes, short
 * silence keeps the device from running dry: after a real underrun ALSA→PulseAudio refills a
 * prebuffer we cannot see (measured: a 200 ms gap left 113 ms of standing latency without the
 * keep-alive, 38 ms with it). Measured into a PulseAudio null sink at target 40: ~22 ms.
 * `speaker` is optional (native addon) and loaded lazily; PacatSink is the fallback.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { nowMs } from '../../shared/clock.js';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AudioParams } from '../../protocol/messages.js';
import { DriftControl } from './drift-control.js';
import { PcmGain } from './pcm-gain.js';
import type { AudioSink, SinkEvents } from './sink.js';

export const DEFAULT_SPEAKER_TARGET_MS = 40;
/** How often the pacer looks at the clock while audio waits or the device may run low. */
const TICK_MS = 5;

/**
 * Estimate of what an audio device holds when all we know is what we wrote and the time.
 * Pure (time passed in), so it is unit-testable.
 */
export class WallClockPacer {
  private anchorMs = Number.NaN;
  private writtenMs = 0;
  /** Times the estimate said the device had run dry while we were feeding it. */
  underruns = 0;

  /** Milliseconds of audio the device still holds at `now`. */
  queuedMs(now: number): number {
    if (Number.isNaN(this.anchorMs)) return 0;
    return Math.max(0, this.writtenMs - (now - this.anchorMs));
  }

  /** Record a write of `ms` of audio at `now`; a dry device restarts the clock (re-anchor). */
  wrote(ms: number, now: number): void {
    if (Number.isNaN(this.anchorMs)) {
      this.anchorMs = now;
      this.writtenMs = 0;
    } else if (now - this.anchorMs >= this.writtenMs) {
      this.underruns++;
      this.anchorMs = now;
      this.writtenMs = 0;
    } else if (this.writtenMs > 60_000) {
      // Rebase now and then so the sums stay small and exact.
      const played = now - this.anchorMs;
      this.anchorMs = now;
      this.writtenMs -= played;
    }
    this.writtenMs += ms;
  }

  get started(): boolean {
    return !Number.isNaN(this.anchorMs);
  }
}

type SpeakerCtor = new (opts: { channels: number; bitDepth: number; sampleRate: number; signed: boolean }) => Writable & {
  close(flush: boolean): void;
  _open?: () => unknown;
};

/** How to get `speaker` built: ALSA's headers on Linux; on macOS (Core Audio) and Windows only the rebuild. */
export function speakerHint(platform: NodeJS.Platform): string {
  return platform === 'linux'
    ? 'run `sudo apt-get install libasound2-dev && npm rebuild speaker` (or install pacat: sudo apt-get install pulseaudio-utils)'
    : 'run `npm rebuild speaker` (it needs a C compiler: Xcode command line tools on macOS, Visual Studio Build Tools on Windows), or use --audio-output audio-io';
}

/** Loads `speaker` or throws LS_ERR_SINK_FAILED with the way to get sound. */
export function loadSpeaker(): SpeakerCtor {
  try {
    return createRequire(import.meta.url)('speaker') as SpeakerCtor;
  } catch (err) {
    throw new LanstreamError('LS_ERR_SINK_FAILED', `No sound: the optional "speaker" package did not load; ${speakerHint(process.platform)}`, { cause: err });
  }
}

/**
 * Opens the ALSA default device once in a child Node process. `speaker` (mpg123's ALSA module)
 * does not check its open and aborts the whole process in snd_pcm_hw_refine when there is no
 * device (seen here without a sound card); the child takes that crash instead of the viewer.
 */
export async function probeDevice(params: AudioParams, timeoutMs = 5000): Promise<void> {
  const speakerPath = createRequire(import.meta.url).resolve('speaker');
  const script =
    `const S=require(${JSON.stringify(speakerPath)});` +
    `const s=new S({channels:${params.channels},bitDepth:16,sampleRate:${params.sampleRateHz},signed:true});` +
    `s._open();s.close(false);`;
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => resolve({ code: -1, signal: null, stderr: err.message }));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
  if (result.code === 0) return;
  const why =
    result.stderr
      .trim()
      .split(/\r?\n/)
      .filter((l) => /error|cannot|unknown/i.test(l))
      .slice(-1)[0] ?? `exit ${result.code ?? result.signal}`;
  throw new LanstreamError(
    'LS_ERR_SINK_FAILED',
    `No sound: the ALSA default device cannot be opened (${why.trim()}); check that a sound card or PulseAudio/PipeWire is available`,
    { details: { code: result.code, signal: result.signal } },
  );
}

export interface SpeakerSinkOptions {
  /** Most audio the device may hold (ms); also the silence cushion after an underrun is half of it. */
  targetMs?: number;
  logger: Logger;
  volume?: number;
  events?: SinkEvents;
}

export class SpeakerSink implements AudioSink {
  readonly name = 'speaker';
  private readonly log: Logger;
  private readonly targetMs: number;
  private readonly events: SinkEvents;
  private readonly pacer = new WallClockPacer();
  private speaker: Writable | null = null;
  private gain: PcmGain | null = null;
  /** Sender and device clocks differ: trims the waiting audio back to the target sample by sample. */
  private drift: DriftControl | null = null;
  private volume: number;
  private bytesPerMs = 0;
  private frameBytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private droppedMs = 0;
  private silenceEpisodes = 0;
  private fillingSilence = false;
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private failed = false;

  constructor(opts: SpeakerSinkOptions) {
    this.log = opts.logger.child({ component: 'speaker-sink' });
    this.targetMs = Math.max(10, opts.targetMs ?? DEFAULT_SPEAKER_TARGET_MS);
    this.volume = opts.volume ?? 100;
    this.events = opts.events ?? {};
  }

  async start(params: AudioParams): Promise<void> {
    const Speaker = loadSpeaker();
    await probeDevice(params);
    this.frameBytes = 2 * params.channels;
    this.bytesPerMs = (params.sampleRateHz * this.frameBytes) / 1000;
    this.gain = new PcmGain({ sampleRateHz: params.sampleRateHz, channels: params.channels, volume: this.volume });
    this.drift = new DriftControl({ targetMs: this.targetMs });
    try {
      const speaker = new Speaker({ channels: params.channels, bitDepth: 16, sampleRate: params.sampleRateHz, signed: true });
      // Open the device now (speaker would do it on the first write) so a missing device fails start().
      speaker._open?.();
      speaker.on('error', (err: Error) => this.fail(err));
      this.speaker = speaker;
    } catch (err) {
      throw new LanstreamError('LS_ERR_SINK_FAILED', `Cannot open the sound device: ${(err as Error).message}`, { cause: err });
    }
    this.timer = setInterval(() => this.pump(), TICK_MS);
    this.log.debug({ params, targetMs: this.targetMs }, 'speaker open');
  }

  pushPcm(pcm: Buffer, _ptsUs: number, _discontinuity: boolean): void {
    if (!this.speaker || this.closing || this.failed || pcm.length === 0) return;
    this.pending.push(pcm);
    this.pendingBytes += pcm.length;
    this.pump();
  }

  setVolume(volume: number): void {
    if (!Number.isFinite(volume)) return;
    this.volume = volume;
    this.gain?.setVolume(volume);
  }

  stats(): { bufferedMs: number; underruns: number; droppedMs: number } {
    const bufferedMs = this.pacer.queuedMs(nowMs()) + (this.bytesPerMs ? this.pendingBytes / this.bytesPerMs : 0);
    // Drift trimming (a few frames a second at most) is not counted as dropped audio.
    return { bufferedMs, underruns: this.pacer.underruns + this.silenceEpisodes, droppedMs: this.droppedMs };
  }

  close(): Promise<void> {
    this.closing ??= this.release(false);
    return this.closing;
  }

  destroy(err?: Error): void {
    if (err) this.log.debug({ err }, 'speaker sink destroyed');
    this.closing ??= this.release(true);
  }

  /** Moves waiting audio to the device while it holds less than the target; drops what piled up. */
  private pump(): void {
    const speaker = this.speaker;
    if (!speaker || this.failed) return;
    const now = nowMs();
    let queued = this.pacer.queuedMs(now);
    this.dropBacklog(queued);
    while (this.pending.length > 0 && queued < this.targetMs) {
      this.drift?.observe(queued + this.pendingBytes / this.bytesPerMs, now);
      let pcm = this.pending.shift()!;
      this.pendingBytes -= pcm.length;
      this.fillingSilence = false;
      if (this.drift) pcm = this.drift.apply(pcm, this.frameBytes);
      this.write(speaker, this.gain ? this.gain.apply(pcm) : pcm, now);
      queued = this.pacer.queuedMs(now);
    }
    // Nothing to play and the device is about to run dry: keep it fed with a little silence.
    // PulseAudio reads ~10 ms ahead of what our clock calls "played"; below ~20 ms it may already
    // be dry and re-arm its prebuffer (measured: a 200 ms gap with a 10 ms threshold left 113 ms
    // of standing latency).
    const lowMs = Math.max(TICK_MS * 4, this.targetMs / 2);
    if (this.pending.length === 0 && this.pacer.started && queued < lowMs) {
      if (!this.fillingSilence) this.silenceEpisodes++;
      this.fillingSilence = true;
      const silenceMs = Math.ceil(Math.max(lowMs, (this.targetMs * 3) / 4) - queued);
      this.write(speaker, Buffer.alloc(Math.round((silenceMs * this.bytesPerMs) / this.frameBytes) * this.frameBytes), now);
    }
  }

  /** Keeps device + waiting audio within target + margin by dropping the oldest waiting audio. */
  private dropBacklog(queuedMs: number): void {
    const marginMs = Math.max(20, this.targetMs / 2);
    let totalMs = queuedMs + this.pendingBytes / this.bytesPerMs;
    if (totalMs <= this.targetMs + marginMs) return;
    let dropped = 0;
    while (this.pending.length > 0 && totalMs > this.targetMs) {
      const head = this.pending[0]!;
      const excessBytes = Math.ceil(((totalMs - this.targetMs) * this.bytesPerMs) / this.frameBytes) * this.frameBytes;
      if (head.length <= excessBytes) {
        this.pending.shift();
        this.pendingBytes -= head.length;
        dropped += head.length;
        totalMs -= head.length / this.bytesPerMs;
      } else {
        this.pending[0] = head.subarray(excessBytes);
        this.pendingBytes -= excessBytes;
        dropped += excessBytes;
        totalMs -= excessBytes / this.bytesPerMs;
      }
    }
    this.droppedMs += dropped / this.bytesPerMs;
    this.log.debug({ droppedMs: dropped / this.bytesPerMs }, 'audio backlog dropped');
  }

  private write(speaker: Writable, pcm: Buffer, now: number): void {
    this.pacer.wrote(pcm.length / this.bytesPerMs, now);
    speaker.write(pcm);
  }

  private fail(err: Error): void {
    if (this.failed || this.closing) return;
    this.failed = true;
    this.stopTimer();
    this.events.onError?.(new LanstreamError('LS_ERR_SINK_FAILED', `The sound device failed: ${err.message}`, { cause: err }));
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async release(immediate: boolean): Promise<void> {
    this.stopTimer();
    this.pending = [];
    this.pendingBytes = 0;
    const speaker = this.speaker;
    this.speaker = null;
    if (!speaker) return;
    // What the device still holds is at most the target: let it play out unless destroying.
    const rest = immediate ? 0 : Math.min(this.pacer.queuedMs(nowMs()), this.targetMs * 2);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    // end() lets an in-flight native write finish before `speaker` closes the device itself;
    // closing under a running write would free the handle the write thread still uses.
    const closed = new Promise<void>((resolve) => {
      speaker.once('close', () => resolve());
      speaker.once('error', () => resolve());
    });
    speaker.end();
    const timer = setTimeout(() => speaker.destroy(), 1000);
    await closed;
    clearTimeout(timer);
  }
}
