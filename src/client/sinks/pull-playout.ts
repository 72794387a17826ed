/**
 * What the pull outputs (audio-io, PulseAudio) share: PCM in through the volume into a jitter buffer,
 * the device's pulls out of it. The volume can be set before the device is open.
 *
 * Each gap (an underrun: the device found less than a block) is reported with what was happening on
 * both sides of the buffer, on the wall clock: how long since the device's previous pull and since
 * the last packet arrived, and the two gaps before those. A late packet shows as a long wait since the
 * last push; a device that pulls in bursts (its own buffer ran low) as pulls close together while
 * packets came on time.
 */
import type { AudioParams } from '../../protocol/messages.js';
import { JitterBuffer } from './jitter-buffer.js';
import { PcmGain } from './pcm-gain.js';
import type { Logger } from '../../shared/logger.js';

/** What a gap looked like (PullPlayout's onGap; wall-clock ms). */
export interface PlayoutGap {
  /** Audio in the jitter buffer when the device asked. */
  levelMs: number;
  /** What it asked for. */
  blockMs: number;
  /** The jitter buffer's target at that moment. */
  targetMs: number;
  /** Since the device's previous pull, and the pull gap before that one. */
  pullGapMs: number;
  prevPullGapMs: number;
  /** Since the last packet arrived, and the gap between the two packets before it. */
  sinceLastPushMs: number;
  prevPushGapMs: number;
}

export class PullPlayout {
  #buffer: JitterBuffer | null = null;
  #gain: PcmGain | null = null;
  #volume: number;
  readonly #onGap: ((gap: PlayoutGap) => void) | undefined;
  #samplesPerMs = 48;
  #lastPullMs = 0;
  #prevPullGapMs = 0;
  #lastPushMs = 0;
  #prevPushGapMs = 0;

  constructor(volume = 100, onGap?: (gap: PlayoutGap) => void) {
    this.#volume = volume;
    this.#onGap = onGap;
  }

  /** Creates the jitter buffer (and the gain) for this stream. */
  open(params: AudioParams, targetMs: number): void {
    this.#buffer = new JitterBuffer({ sampleRateHz: params.sampleRateHz, channels: params.channels, targetMs });
    this.#samplesPerMs = (params.sampleRateHz * params.channels) / 1000;
    this.#gain = new PcmGain({ sampleRateHz: params.sampleRateHz, channels: params.channels, volume: this.#volume });
  }

  /** The device's pull: fills `out` from the jitter buffer (silence before open()). */
  pull(out: Int16Array): void {
    const b = this.#buffer;
    if (!b) {
      out.fill(0);
      return;
    }
    const now = performance.now();
    const pullGapMs = now - this.#lastPullMs;
    const levelMs = b.bufferedMs;
    const targetMs = b.targetMs;
    const underruns = b.underruns;
    const blockMs = out.length / this.#samplesPerMs;
    b.pull(out, this.#lastPullMs > 0 && pullGapMs < blockMs / 2);
    if (b.underruns > underruns && this.#onGap) {
      this.#onGap({
        levelMs,
        blockMs,
        targetMs,
        pullGapMs,
        prevPullGapMs: this.#prevPullGapMs,
        sinceLastPushMs: now - this.#lastPushMs,
        prevPushGapMs: this.#prevPushGapMs,
      });
    }
    this.#prevPullGapMs = pullGapMs;
    this.#lastPullMs = now;
  }

  push(pcm: Buffer, discontinuity: boolean): void {
    if (!this.#buffer || pcm.length === 0) return;
    const now = performance.now();
    this.#prevPushGapMs = now - this.#lastPushMs;
    this.#lastPushMs = now;
    // Copy: the gain may return the same buffer, and the socket's chunk must not be kept alive.
    const data = this.#gain ? this.#gain.apply(Buffer.from(pcm)) : Buffer.from(pcm);
    this.#buffer.push(data, discontinuity);
  }

  setVolume(volume: number): void {
    if (!Number.isFinite(volume)) return;
    this.#volume = volume;
    this.#gain?.setVolume(volume);
  }

  /** `deviceMs`: what the device side holds on top of the jitter buffer. */
  stats(deviceMs: number, deviceUnderruns = 0): { bufferedMs: number; underruns: number; droppedMs: number } {
    const b = this.#buffer;
    return { bufferedMs: (b?.bufferedMs ?? 0) + deviceMs, underruns: (b?.underruns ?? 0) + deviceUnderruns, droppedMs: b?.droppedMs ?? 0 };
  }
}

/** One debug line per gap, in ms to 0.1 (`--log-level debug` explains each click). */
export function logGap(log: Logger, gap: PlayoutGap): void {
  const rounded = Object.fromEntries(Object.entries(gap).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  log.debug(rounded, 'audio gap: the device found less than a block');
}
