/**
 * PCM packetiser: cuts ffmpeg's s16le audio stdout into fixed packets (AUDIO_PACKET_MS, the unit of
 * audio latency on the wire) and stamps each with a server-clock PTS. Sits between the audio
 * FfmpegProcess and the hub.
 *
 * PTS advance by sample count, not by arrival time, because pipe reads arrive in jittery bursts while
 * the samples themselves are evenly spaced. The anchor is taken from the clock at the first packet
 * (arrival time minus the duration of everything still buffered). A sound card's clock is not the
 * server's: that slow drift is followed by small steps of the anchor, without a flag (SLEW_STEP_US
 * below). A jump of more than maxDriftUs (lost samples) re-anchors, so it cannot turn into a
 * permanent offset. The re-anchor is asymmetric because arrival lateness is one-sided noise:
 *  - data arriving *earlier* than its PTS is impossible for a correct timeline, so re-anchor at once;
 *  - data arriving *later* may be a stall (GC, scheduler) that the next burst catches up, so only
 *    re-anchor when the smallest lateness over a whole window (default 500 ms) is above the limit,
 *    and then by that smallest lateness, not by one packet's jitter.
 * A corrected packet is flagged DISCONTINUITY so the viewer's jitter buffer can resynchronise.
 * (Measured with ffmpeg -re on a loaded machine: a 130 ms stall followed by a catch-up burst made a
 * symmetric |error| > 20 ms rule re-anchor forward and then twice backward within 200 ms.)
 *
 * Packet phase: a packet leaves only when its last byte has arrived, so when packet boundaries do not
 * fall on ffmpeg's chunk boundaries every packet waits for the next chunk, and the whole stream is late
 * by the bytes left over after each chunk. ffmpeg's pulse input delivers steady fragment-sized chunks
 * but its first one is whatever the source had queued (seen: 2, 176, 1680 bytes), so the phase was
 * random per capture: on the rig, 4 of 4 captures held every packet's oldest byte 10 ms, and the
 * audio latency differed by up to 10 ms from one run to the next. When the smallest leftover over
 * ALIGN_WINDOW_CHUNKS chunks is more than 1 ms, that many of the oldest bytes are dropped once (at
 * most once per ALIGN_COOLDOWN_US; the PTS timeline skips them, so it stays continuous): packets then
 * end where chunks end. It costs at most one packet of sound at capture start.
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
  /** Drop leftover bytes once so packets end where capture chunks end (see the header); default true. */
  alignToChunks?: boolean;
  onPacket: (pcm: Buffer, ptsUs: number, flags: number) => void;
}

const BYTES_PER_SAMPLE = 2; // s16le
/** Chunks over which the leftover must stay above the threshold before it is dropped. */
export const ALIGN_WINDOW_CHUNKS = 16;
/** At most one alignment drop in this much audio, so odd chunk sizes cannot make it a habit. */
export const ALIGN_COOLDOWN_US = 10_000_000;
/**
 * Clock rate: a capture device's clock is not the server's. A virtual microphone's ran ~33 ppm fast
 * (a 30-minute soak): sample-count PTS gained 2 ms a minute on the clock until the early-side rule
 * re-anchored it 20 ms back, so every viewer's audio latency and A/V skew went round a ±10 ms saw-tooth
 * every 8 minutes, and each turn was a DISCONTINUITY. Now, when a window's smallest lateness is more
 * than SLEW_DEADBAND_US either way, the anchor moves toward it by at most SLEW_STEP_US, without a
 * flag: PTS follows the device's rate (up to 1000 ppm) within about a millisecond.
 */
export const SLEW_DEADBAND_US = 1_000;
export const SLEW_STEP_US = 500;

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
  #slewedUs = 0;
  readonly #alignToChunks: boolean;
  /** Smallest leftover (bytes) after a chunk in the current alignment window, and chunks seen. */
  #leftoverMinBytes = Infinity;
  #leftoverChunks = 0;
  #totalSamples = 0;
  #lastAlignSamples = -Infinity;
  #alignedFrames = 0;

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
    this.#alignToChunks = opts.alignToChunks ?? true;
  }

  /** How often the PTS was re-anchored to the clock because of drift (for stats/logs). */
  get reanchors(): number {
    return this.#reanchors;
  }

  /** Net µs the anchor was moved in SLEW_STEP_US steps to follow the device clock's rate (for stats/tests). */
  get slewedUs(): number {
    return this.#slewedUs;
  }

  /** Sample frames dropped to put packet ends on chunk ends (for stats/logs). */
  get alignedFrames(): number {
    return this.#alignedFrames;
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
      this.#totalSamples += this.#packetSamples;
      this.#onPacket(pcm, ptsUs, flags);
    }
    if (this.#alignToChunks && this.#anchorUs !== null) this.#alignPhase();
  }

  /** Tracks the leftover after each chunk; drops it once when it stays above 1 ms (see header). */
  #alignPhase(): void {
    this.#leftoverMinBytes = Math.min(this.#leftoverMinBytes, this.#pendingBytes);
    if (++this.#leftoverChunks < ALIGN_WINDOW_CHUNKS) return;
    const leftoverFrames = Math.floor(this.#leftoverMinBytes / this.#frameBytes);
    this.#leftoverMinBytes = Infinity;
    this.#leftoverChunks = 0;
    if (leftoverFrames * 1000 <= this.#sampleRateHz) return; // ≤ 1 ms: not worth a splice
    if (this.#samplesToUs(this.#totalSamples - this.#lastAlignSamples) < ALIGN_COOLDOWN_US) return;
    this.#take(leftoverFrames * this.#frameBytes);
    // The dropped samples keep their place on the timeline, so the next PTS is still its capture time.
    this.#samplesSinceAnchor += leftoverFrames;
    this.#totalSamples += leftoverFrames;
    this.#lastAlignSamples = this.#totalSamples;
    this.#alignedFrames += leftoverFrames;
  }

  /** Forget buffered bytes and the anchor (capture restarted); the next packet is flagged DISCONTINUITY. */
  reset(): void {
    this.#pieces = [];
    this.#headOffset = 0;
    this.#pendingBytes = 0;
    this.#anchorUs = null;
    this.#samplesSinceAnchor = 0;
    this.#discontinuityPending = true;
    this.#leftoverMinBytes = Infinity;
    this.#leftoverChunks = 0;
    // A restarted ffmpeg starts with a new phase.
    this.#lastAlignSamples = -Infinity;
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
    if (persistentLateUs > this.#maxDriftUs) {
      this.#anchor(this.#expectedUs() + persistentLateUs);
      return true;
    }
    if (Math.abs(persistentLateUs) > SLEW_DEADBAND_US) {
      const stepUs = Math.max(-SLEW_STEP_US, Math.min(SLEW_STEP_US, persistentLateUs));
      this.#anchorUs! += stepUs;
      this.#slewedUs += stepUs;
    }
    return false;
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
