/**
 * PCM packetiser: cuts ffmpeg's s16le audio stdout into fixed packets (10 ms by default, the unit of
 * audio latency on the wire) and stamps each with a server-clock PTS. Sits between the audio
 * FfmpegProcess and the hub.
 *
 * PTS advance by sample count, not by arrival time, because pipe reads arrive in jittery bursts while
 * the samples themselves are evenly spaced. The anchor is taken from the clock at the first packet
 * (arrival time minus the duration of everything still buffered) and corrected when the two disagree
 * by more than maxDriftUs: sound-card clocks are not exact, and lost samples must not turn into a
 * permanent offset. The correction is asymmetric because arrival lateness is one-sided noise:
 *  - data arriving *earlier* than its PTS is impossible for a correct timeline, so re-anchor at once;
 *  - data arriving *later* may be a stall (GC, scheduler) that the next burst catches up, so only
 *    re-anchor when the smallest lateness over a whole window (default 500 ms) is above the limit,
 *    and then by that smallest lateness, not by one packet's jitter.
 * A corrected packet is flagged DISCONTINUITY so the viewer's jitter buffer can resynchronise.
 * (Measured with ffmpeg -re on a loaded machine: a 130 ms stall followed by a catch-up burst made a
 * symmetric |error| > 20 ms rule re-anchor forward and then twice backward within 200 ms.)
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
  /** Lateness must persist this long (its minimum over the window above maxDriftUs); default 500 ms. */
  lateWindowUs?: number;
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
  readonly #lateWindowUs: number;
  readonly #onPacket: (pcm: Buffer, ptsUs: number, flags: number) => void;

  #pieces: Buffer[] = [];
  /** Offset into #pieces[0] of the first byte not yet packetised. */
  #headOffset = 0;
  #pendingBytes = 0;
  #anchorUs: number | null = null;
  #samplesSinceAnchor = 0;
  #discontinuityPending = false;
  /** Smallest (measured − expected) seen in the current lateness window, and where it started. */
  #windowMinLateUs = Infinity;
  #windowStartSamples = 0;
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
    this.#lateWindowUs = opts.lateWindowUs ?? 500_000;
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
      } else if (this.#correct(measuredUs - this.#expectedUs())) {
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
    this.#windowMinLateUs = Infinity;
    this.#windowStartSamples = 0;
  }

  /** Applies the asymmetric drift rule to one packet's lateness; true when the anchor moved. */
  #correct(lateUs: number): boolean {
    if (lateUs < -this.#maxDriftUs) {
      this.#anchor(this.#expectedUs() + lateUs);
      return true;
    }
    this.#windowMinLateUs = Math.min(this.#windowMinLateUs, lateUs);
    if (this.#samplesToUs(this.#samplesSinceAnchor - this.#windowStartSamples) < this.#lateWindowUs) return false;
    const persistentLateUs = this.#windowMinLateUs;
    this.#windowMinLateUs = Infinity;
    this.#windowStartSamples = this.#samplesSinceAnchor;
    if (persistentLateUs <= this.#maxDriftUs) return false;
    this.#anchor(this.#expectedUs() + persistentLateUs);
    return true;
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
