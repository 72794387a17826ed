/**
 * PCM packetiser: cuts ffmpeg's s16le audio stdout into fixed packets (10 ms by default, the unit of
 * audio latency on the wire) and stamps each with a server-clock PTS. Sits between the audio
 * FfmpegProcess and the hub.
 *
 * PTS advance by sample count, not by arrival time, because pipe reads arrive in jittery bursts while
 * the samples themselves are evenly spaced. The anchor is taken from the clock at the first packet
 * (arrival time minus the duration of everything still buffered), and taken again whenever the
 * sample-count PTS and the arrival-based one differ by more than maxDriftUs: sound-card clocks are
 * not exact, and a stall in ffmpeg must not turn into a permanent offset. Such a packet is flagged
 * DISCONTINUITY so the viewer's jitter buffer can resynchronise instead of stretching.
 */
import { MediaFlag } from '../../protocol/constants.js';

export interface PcmPacketiserOptions {
  sampleRateHz: number;
  channels: number;
  packetMs: number;
  /** Monotonic clock in microseconds (nowUs in production, a fake in tests). */
  clock: () => number;
  /** Re-anchor when sample-count PTS and arrival PTS differ by more than this; default 20 ms. */
  maxDriftUs?: number;
  onPacket: (pcm: Buffer, ptsUs: number, flags: number) => void;
}

const BYTES_PER_SAMPLE = 2; // s16le

export class PcmPacketiser {
  readonly packetBytes: number;
  readonly #sampleRateHz: number;
  readonly #frameBytes: number;
  readonly #packetSamples: number;
  readonly #clock: () => number;
  readonly #maxDriftUs: number;
  readonly #onPacket: (pcm: Buffer, ptsUs: number, flags: number) => void;

  #pieces: Buffer[] = [];
  /** Offset into #pieces[0] of the first byte not yet packetised. */
  #headOffset = 0;
  #pendingBytes = 0;
  #anchorUs: number | null = null;
  #samplesSinceAnchor = 0;
  #discontinuityPending = false;
  #reanchors = 0;

  constructor(opts: PcmPacketiserOptions) {
    const { sampleRateHz, channels, packetMs } = opts;
    if (!Number.isInteger(sampleRateHz) || sampleRateHz <= 0) throw new RangeError(`sampleRateHz must be a positive integer, got ${sampleRateHz}`);
    if (!Number.isInteger(channels) || channels <= 0) throw new RangeError(`channels must be a positive integer, got ${channels}`);
    const packetSamples = (sampleRateHz * packetMs) / 1000;
    if (!Number.isInteger(packetSamples) || packetSamples <= 0) {
      throw new RangeError(`packetMs ${packetMs} is not a whole number of samples at ${sampleRateHz} Hz`);
    }
    this.#sampleRateHz = sampleRateHz;
    this.#frameBytes = BYTES_PER_SAMPLE * channels;
    this.#packetSamples = packetSamples;
    this.packetBytes = packetSamples * this.#frameBytes;
    this.#clock = opts.clock;
    this.#maxDriftUs = opts.maxDriftUs ?? 20_000;
    this.#onPacket = opts.onPacket;
  }

  /** How often the PTS was re-anchored to the clock because of drift (for stats/logs). */
  get reanchors(): number {
    return this.#reanchors;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const arrivalUs = this.#clock();
    this.#pieces.push(chunk);
    this.#pendingBytes += chunk.length;

    while (this.#pendingBytes >= this.packetBytes) {
      // The newest byte was captured about now; everything buffered before it is older by its duration.
      const bufferedSamples = Math.floor(this.#pendingBytes / this.#frameBytes);
      const measuredUs = arrivalUs - this.#samplesToUs(bufferedSamples);
      const pcm = this.#take(this.packetBytes);
      let flags = 0;
      if (this.#anchorUs === null) {
        this.#anchor(measuredUs);
        if (this.#discontinuityPending) flags |= MediaFlag.DISCONTINUITY;
        this.#discontinuityPending = false;
      } else if (Math.abs(this.#expectedUs() - measuredUs) > this.#maxDriftUs) {
        this.#anchor(measuredUs);
        this.#reanchors++;
        flags |= MediaFlag.DISCONTINUITY;
      }
      const ptsUs = Math.round(this.#expectedUs());
      this.#samplesSinceAnchor += this.#packetSamples;
      this.#onPacket(pcm, ptsUs, flags);
    }
  }

  /** Forget buffered bytes and the anchor (capture restarted); the next packet is flagged DISCONTINUITY. */
  reset(): void {
    this.#pieces = [];
    this.#headOffset = 0;
    this.#pendingBytes = 0;
    this.#anchorUs = null;
    this.#samplesSinceAnchor = 0;
    this.#discontinuityPending = true;
  }

  #anchor(ptsUs: number): void {
    this.#anchorUs = ptsUs;
    this.#samplesSinceAnchor = 0;
  }

  #expectedUs(): number {
    return (this.#anchorUs ?? 0) + this.#samplesToUs(this.#samplesSinceAnchor);
  }

  #samplesToUs(samples: number): number {
    return (samples * 1_000_000) / this.#sampleRateHz;
  }

  /** Removes exactly `bytes` from the front of the buffered pieces (a sample may span two pieces). */
  #take(bytes: number): Buffer {
    const parts: Buffer[] = [];
    let need = bytes;
    while (need > 0) {
      const head = this.#pieces[0]!;
      const available = head.length - this.#headOffset;
      if (available <= need) {
        parts.push(head.subarray(this.#headOffset));
        this.#pieces.shift();
        this.#headOffset = 0;
        need -= available;
      } else {
        parts.push(head.subarray(this.#headOffset, this.#headOffset + need));
        this.#headOffset += need;
        need = 0;
      }
    }
    this.#pendingBytes -= bytes;
    return Buffer.concat(parts, bytes);
  }
}
