/**
 * The viewer's audio jitter buffer for outputs that pull (a device callback asks for exactly the
 * samples it needs), so the buffer knows its true fill level — which `speaker` cannot report.
 * It starts playing once the target plus one device block is buffered, plays silence on underflow
 * and waits for that again (so one late packet costs one gap, not a stutter), corrects drift with
 * DriftControl (≤ 0.5 % of the samples: a frame left out while the level is above the target, played
 * twice while it is under) so the level stays at the target for hours whichever clock is faster, and after a burst
 * (a link that stalled and caught up) drops the oldest audio down to the target at once. Pure: no
 * timers; time is the device's own sample clock (what it has pulled).
 *
 * What is held at the target is the *least* audio the device found when it asked for a block over the
 * last LEVEL_WINDOW_MS, because that is what decides an underrun (fewer ms than the block) and what
 * sound waits on top of the block. It used to be the smoothed level when a packet arrived, before
 * adding it: with 10 ms packets against 10 ms device blocks that reads a packet low, so the device
 * found a packet more than asked (rig, pacat capture: target 20 ms, the device found 32 ms, mouth to
 * ear 43 ms; 20 ms and 34 ms when measured at the pull). When packets and device blocks come at the
 * same moment (one clock on both ends, as on the rig, or two close clocks for minutes) which comes
 * first is a coin toss, so the level at the pull jumps by a packet from one block to the next, and a
 * late packet takes another one off: a target on the mean then underran dozens of times a minute.
 *
 * A packet that comes after the device asked for it is late, and late audio is dropped, as in any
 * real-time playout: the device plays silence for what was missing (one gap, counted as one underrun),
 * keeps playing, and when the late audio lands that much of its head is thrown away, so the sound goes
 * on where it would have been and the delay stays what it was. It used to stop, wait for the target
 * and a block again and then play the late audio: every late packet then added its lateness to the
 * delay for good (on the rig a capture chunk 10–22 ms late every few seconds, each adding 8–16 ms
 * glass to glass until drift control trimmed it). It primes again only when audio stops for longer
 * than MAX_LATE_MS (a stall, a capture restart; the burst rule then cuts what the stall left) and in
 * the start-up grace below.
 *
 * The target adapts: `targetMs` is the floor; each underrun (after STARTUP_GRACE_MS) raises it by RAISE_MS (up to
 * `maxTargetMs`), paid for by dropping that much less of the late audio, and every DECAY_EVERY_MS
 * without one lowers it by 1 ms towards the floor, trimmed
 * off at ≤ 0.5 %. So a quiet link settles near the floor and a jittery one pays for its jitter with a
 * few gaps at first, then with delay instead of gaps.
 */
import { DriftControl } from './drift-control.js';

export interface JitterBufferOptions {
  sampleRateHz: number;
  channels: number;
  /** Least audio (ms) the device should find when it asks for a block; the floor of the adaptive target. */
  targetMs: number;
  /** Highest the target may rise after underruns; default targetMs + 60. */
  maxTargetMs?: number;
  /** Above target + this, the excess is dropped at once (a burst is not drift). */
  burstMarginMs?: number;
}

/** The least level at the pulls over this much device time is the controlled value. */
export const LEVEL_WINDOW_MS = 2_000;
/** Raise of the target per underrun. */
export const RAISE_MS = 5;
/** Lower the target by 1 ms after this long without an underrun. */
export const DECAY_EVERY_MS = 10_000;
/**
 * Underruns this soon after playback first starts do not raise the target: the device fills its own
 * buffer at start (audio-io pulls two blocks back to back), which is no sign of jitter; on the rig
 * that one start-up underrun otherwise cost RAISE_MS for the first ~50 s.
 */
export const STARTUP_GRACE_MS = 1_000;
/**
 * Audio missing for longer than this is not a late packet but a stop (stall, capture restart, mute):
 * playback then waits for the target again instead of dropping what comes next.
 */
export const MAX_LATE_MS = 100;
/** Two buckets per window: the minimum covers between one and two windows of pulls. */
const BUCKET_MS = LEVEL_WINDOW_MS / 2;
/**
 * A level under the target is stretched only when the least level of each of this many whole buckets
 * was under it: a sender slower than the sound card drains every bucket, while one late packet (on the
 * rig a capture chunk 10–22 ms late every few seconds) lowers one. Stretching on the least of the last
 * two buckets chased those dips: rig audio p90 41 → 45 ms and its SNR 217 → 16–22 dB in 4 of 6 runs.
 */
export const STRETCH_BUCKETS = 3;
/**
 * Once a drain has shown, the clocks stay as they are: for this long after it was last seen, a level
 * under the target is stretched at once (waiting for three buckets each time let a 0.3 % slow sender
 * sink 9 ms under the target before every correction, and gap).
 */
export const DRAIN_MEMORY_MS = 30_000;

export class JitterBuffer {
  readonly #frameBytes: number;
  readonly #bytesPerMs: number;
  readonly #floorMs: number;
  readonly #maxTargetMs: number;
  readonly #burstMarginMs: number;
  readonly #drift: DriftControl;
  #targetMs: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #playing = false;
  /** Device clock: ms the device has pulled so far. */
  #pulledMs = 0;
  #lastTargetChangeMs = 0;
  #firstPlayMs: number | null = null;
  /** Silence played in place of audio not yet here: dropped from that audio when it lands. */
  #lateMs = 0;
  /** In a gap: the device found less than a block and has not been served a full block since. */
  #inGap = false;
  /** Device time when the current gap began. */
  #gapStartMs = 0;
  /** Least level at a pull in the current bucket. */
  #bucketMinMs = Infinity;
  /** Least level of each of the last STRETCH_BUCKETS whole buckets, oldest first (the previous bucket last). */
  #bucketMins: number[] = [];
  /** Device time until which a level under the target is stretched at once (a drain was seen). */
  #drainUntilMs = -Infinity;
  #bucketStartMs = 0;
  underruns = 0;
  droppedMs = 0;

  constructor(o: JitterBufferOptions) {
    this.#frameBytes = 2 * o.channels;
    this.#bytesPerMs = (o.sampleRateHz * this.#frameBytes) / 1000;
    this.#floorMs = o.targetMs;
    this.#targetMs = o.targetMs;
    this.#maxTargetMs = Math.max(o.targetMs, o.maxTargetMs ?? o.targetMs + 60);
    this.#burstMarginMs = o.burstMarginMs ?? Math.max(40, o.targetMs);
    this.#drift = new DriftControl({ targetMs: o.targetMs, deadBandMs: 2 });
  }

  get bufferedMs(): number {
    return this.#bytes / this.#bytesPerMs;
  }

  /** The current (adaptive) target: the floor plus what underruns added and time has not yet taken off. */
  get targetMs(): number {
    return this.#targetMs;
  }

  /** Least level the device found at its pulls over the last one to two windows (null before any). */
  get recentMinMs(): number | null {
    const min = Math.min(this.#prevBucketMinMs(), this.#bucketMinMs);
    return Number.isFinite(min) ? min : null;
  }

  get trimmedFrames(): number {
    return this.#drift.removedFrames;
  }

  /** Frames played twice to bring a level under the target back up (a sender slower than the device). */
  get stretchedFrames(): number {
    return this.#drift.addedFrames;
  }

  /**
   * Levels are observed at pull(), on the device's sample clock, so no wall-clock time is needed here.
   * `discontinuity`: audio before this packet was dropped upstream (the server's flow control), so the
   * audio a gap was waiting for will not come, and none of this packet is late.
   */
  push(pcm: Buffer, discontinuity = false): void {
    if (discontinuity) this.#lateMs = 0;
    const trimmed = this.#playing ? this.#drift.apply(pcm, this.#frameBytes) : pcm;
    this.#chunks.push(trimmed);
    this.#bytes += trimmed.length;
    if (this.#lateMs > 0) {
      const lateMs = Math.min(this.#lateMs, this.bufferedMs);
      this.#lateMs -= lateMs;
      this.#dropOldest(lateMs);
    }
    const excessMs = this.bufferedMs - this.#targetMs - this.#burstMarginMs;
    if (excessMs > 0) this.#dropOldest(this.bufferedMs - this.#targetMs);
  }

  /**
   * Fill `out` (interleaved s16) completely: audio when primed, silence otherwise. `early`: this pull
   * came less than half a block after the one before (the device catching up; only the caller has a
   * wall clock).
   */
  pull(out: Int16Array, early = false): void {
    const wantBytes = out.length * 2;
    const deviceMs = this.#pulledMs;
    this.#pulledMs += wantBytes / this.#bytesPerMs;
    this.#decay(deviceMs);
    if (!this.#playing) {
      // Target + one block: primed in the moment a packet has just landed, the next pull may find a
      // packet less, and that must still be the target (rig: priming at the target alone underran
      // within the first second in 4 of 4 runs).
      if (this.bufferedMs < this.#targetMs + wantBytes / this.#bytesPerMs) {
        out.fill(0);
        return;
      }
      this.#playing = true;
      this.#firstPlayMs ??= deviceMs;
    } else if (early && this.bufferedMs < this.#targetMs && this.#inStartup(deviceMs)) {
      // Primed on a pull that began a catch-up (a stalled process: the device then takes two or three
      // blocks back to back): the buffer would play on a block or more under the target, at one block
      // at the pull with no gap, and the next packet landing just after a pull would be one. Start-up
      // only: the missing part of the target is played as silence now, counted as a start-up gap (a
      // stall at start seen in 1 of 150 runs under load: primed at 30 ms, then pulls 1.7 and 0.3 ms apart).
      this.underruns++;
      this.#queueSilence(this.#targetMs - this.bufferedMs);
    }
    this.#observe(this.bufferedMs, deviceMs);
    const dst = Buffer.from(out.buffer, out.byteOffset, wantBytes);
    let filled = 0;
    while (filled < wantBytes && this.#chunks.length > 0) {
      const head = this.#chunks[0]!;
      const n = Math.min(head.length, wantBytes - filled);
      head.copy(dst, filled, 0, n);
      filled += n;
      if (n === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
      this.#bytes -= n;
    }
    if (filled === wantBytes) {
      this.#inGap = false;
      return;
    }
    dst.fill(0, filled);
    if (this.#inStartup(deviceMs)) {
      // Start-up (the device filling its own buffer): prime again, nothing dropped, the target kept.
      this.underruns++;
      this.#playing = false;
      return;
    }
    this.#lateMs += (wantBytes - filled) / this.#bytesPerMs;
    if (!this.#inGap) {
      this.#inGap = true;
      this.#gapStartMs = deviceMs;
      this.underruns++;
      const raisedMs = Math.min(this.#maxTargetMs, this.#targetMs + RAISE_MS);
      // The raise is delay added here, in the gap: that much less of the late audio is dropped, and
      // what the gap so far is short of it is played as more silence (queued: the buffer is empty).
      const moreSilenceMs = raisedMs - this.#targetMs - this.#lateMs;
      this.#lateMs = Math.max(0, -moreSilenceMs);
      if (moreSilenceMs > 0) this.#queueSilence(moreSilenceMs);
      this.#setTarget(raisedMs, deviceMs);
    }
    if (this.#lateMs > MAX_LATE_MS || deviceMs - this.#gapStartMs > MAX_LATE_MS) {
      // Not a late packet but a stop: prime again, and keep whatever comes next. Also a gap that audio
      // arriving at its pace never closes (each packet dropped as late, each pull short by what was
      // dropped): a sender 100 ppm slow once left the device a constant 3.4 ms short of every block,
      // then nothing but silence, with packets on time and one underrun counted.
      this.#playing = false;
      this.#inGap = false;
      this.#lateMs = 0;
    }
  }

  #observe(levelMs: number, deviceMs: number): void {
    if (this.#bucketMinMs === Infinity) {
      this.#bucketStartMs = deviceMs; // the first playing pull starts the first bucket
    } else if (deviceMs - this.#bucketStartMs >= BUCKET_MS) {
      this.#bucketMins.push(this.#bucketMinMs);
      if (this.#bucketMins.length > STRETCH_BUCKETS) this.#bucketMins.shift();
      this.#bucketMinMs = Infinity;
      this.#bucketStartMs = deviceMs;
    }
    this.#bucketMinMs = Math.min(this.#bucketMinMs, levelMs);
    // Nothing is trimmed before a whole bucket of pulls is in: until then the least level is not known
    // (the device may be a block behind, as at a start under load), and the block priming adds on
    // purpose is not drift. Drift is slow; an excess that is not is the burst rule's.
    const prevMinMs = this.#prevBucketMinMs();
    if (prevMinMs === Infinity) return;
    const leastMs = Math.min(prevMinMs, this.#bucketMinMs);
    // Under the target: stretched when every one of the last buckets was (a drain, not a dip), and from
    // then on at once for DRAIN_MEMORY_MS after that drain was seen; otherwise left as it is. Only a
    // drain arms the memory, not each stretch: re-armed by its own stretches, it never ran out where
    // late capture chunks dip the level under the target every few seconds, and stretching and trimming
    // then took turns for good (rig, audio only: 40.7 ms and SNR p10 13–17 dB; 36.8 ms with no stretch).
    let stretch = false;
    if (leastMs < this.#targetMs) {
      const drained = this.#bucketMins.length === STRETCH_BUCKETS && Math.max(...this.#bucketMins) < this.#targetMs;
      if (drained) this.#drainUntilMs = deviceMs + DRAIN_MEMORY_MS;
      stretch = drained || deviceMs < this.#drainUntilMs;
    }
    this.#drift.setStretch(stretch);
    this.#drift.observe(leastMs, deviceMs);
  }

  /** Within STARTUP_GRACE_MS of the first playing pull (or before it). */
  #inStartup(deviceMs: number): boolean {
    return deviceMs - (this.#firstPlayMs ?? deviceMs) < STARTUP_GRACE_MS;
  }

  /** Least level of the previous whole bucket (Infinity before the first). */
  #prevBucketMinMs(): number {
    return this.#bucketMins.at(-1) ?? Infinity;
  }

  #decay(deviceMs: number): void {
    if (this.#targetMs <= this.#floorMs || deviceMs - this.#lastTargetChangeMs < DECAY_EVERY_MS) return;
    this.#setTarget(Math.max(this.#floorMs, this.#targetMs - 1), deviceMs);
  }

  #setTarget(targetMs: number, deviceMs: number): void {
    // The least levels so far were held at the old target: under a raised one they would all read
    // as a drain, and stretching (then trimming, turn about, for DRAIN_MEMORY_MS) would follow every
    // underrun with one clock on both ends (offline, the rig's pattern of late chunks: 300–1000 frames
    // stretched after each raise; diag-20261128-0251-raise-drain.md).
    if (targetMs > this.#targetMs) this.#bucketMins = [];
    this.#targetMs = targetMs;
    this.#lastTargetChangeMs = deviceMs;
    this.#drift.setTargetMs(targetMs);
  }

  #queueSilence(ms: number): void {
    const bytes = Math.round((ms * this.#bytesPerMs) / this.#frameBytes) * this.#frameBytes;
    this.#chunks.unshift(Buffer.alloc(bytes));
    this.#bytes += bytes;
  }

  #dropOldest(ms: number): void {
    let bytes = Math.floor((ms * this.#bytesPerMs) / this.#frameBytes) * this.#frameBytes;
    this.droppedMs += bytes / this.#bytesPerMs;
    while (bytes > 0 && this.#chunks.length > 0) {
      const head = this.#chunks[0]!;
      if (head.length <= bytes) {
        this.#chunks.shift();
        this.#bytes -= head.length;
        bytes -= head.length;
      } else {
        this.#chunks[0] = head.subarray(bytes);
        this.#bytes -= bytes;
        bytes = 0;
      }
    }
  }
}
