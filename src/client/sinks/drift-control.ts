/**
 * Keeps an audio output's fill level at its target for hours without audible jumps. The sender's
 * sound card and this machine's clock never run at exactly the same rate (tens to hundreds of ppm),
 * so a buffer that is only trimmed when it overflows creeps up to its ceiling and then loses whole
 * chunks (a click). Instead the level is smoothed and, while it sits above the target, one sample
 * frame in every `strideFrames` is left out — at most 0.5 % faster playback, inaudible on speech
 * and tones, and enough to absorb 5000 ppm of drift. Below the target nothing is removed; the sink's
 * silence keep-alive covers underflow. Pure: levels and time are passed in.
 */
export interface DriftControlOptions {
  targetMs: number;
  /** Band around the target where nothing is corrected (jitter is not drift). */
  deadBandMs?: number;
  /** Smoothing time constant of the level, ms. */
  smoothingMs?: number;
}

/** At 0.5 % the pitch moves by ~9 cents: below what listeners notice on speech. */
const FASTEST_STRIDE = 200;
/**
 * Proportional: 0.1 % of the frames per ms above the band, so a 0.3 % clock difference settles
 * ~3 ms above it instead of riding up to where a fixed gentle rate finally matches.
 */
const RATE_PER_MS = 0.001;

export class DriftControl {
  #targetMs: number;
  readonly #deadBandMs: number;
  readonly #smoothingMs: number;
  #levelMs: number | null = null;
  #lastMs = 0;
  #removedFrames = 0;
  #sinceDropFrames = 0;

  constructor(o: DriftControlOptions) {
    this.#targetMs = o.targetMs;
    this.#deadBandMs = o.deadBandMs ?? 5;
    this.#smoothingMs = o.smoothingMs ?? 500;
  }

  /** Feed the current fill level (device + waiting audio); returns the smoothed level. */
  observe(levelMs: number, nowMs: number): number {
    if (this.#levelMs === null) {
      this.#levelMs = levelMs;
    } else {
      const alpha = Math.min(1, Math.max(0, nowMs - this.#lastMs) / this.#smoothingMs);
      this.#levelMs += (levelMs - this.#levelMs) * alpha;
    }
    this.#lastMs = nowMs;
    return this.#levelMs;
  }

  /** Move the target (an adaptive jitter buffer raises it after an underrun and lowers it slowly). */
  setTargetMs(targetMs: number): void {
    this.#targetMs = targetMs;
  }

  get targetMs(): number {
    return this.#targetMs;
  }

  get levelMs(): number | null {
    return this.#levelMs;
  }

  get removedFrames(): number {
    return this.#removedFrames;
  }

  /** 0 = play as is; otherwise drop one frame in every N. */
  strideFrames(): number {
    if (this.#levelMs === null) return 0;
    const excess = this.#levelMs - this.#targetMs - this.#deadBandMs;
    if (excess <= 0) return 0;
    return Math.max(FASTEST_STRIDE, Math.round(1 / (excess * RATE_PER_MS)));
  }

  /**
   * Returns pcm with one frame in every `stride` removed, counting across calls so 10 ms packets
   * (480 frames) still lose one frame per 1000. A new buffer only when something is removed.
   */
  apply(pcm: Buffer, frameBytes: number): Buffer {
    const stride = this.strideFrames();
    const frames = Math.floor(pcm.length / frameBytes);
    if (stride === 0) {
      this.#sinceDropFrames = 0;
      return pcm;
    }
    // Frame indexes (in this packet) to skip.
    const skips: number[] = [];
    // Overdue (the stride just got shorter): drop the first frame now, then every `stride`.
    let next = Math.max(0, stride - 1 - this.#sinceDropFrames);
    while (next < frames) {
      skips.push(next);
      next += stride;
    }
    this.#sinceDropFrames = skips.length ? frames - 1 - skips[skips.length - 1]! : this.#sinceDropFrames + frames;
    if (skips.length === 0) return pcm;
    // The skipped frame sits between two neighbours close in value, so the splice does not click.
    const out = Buffer.allocUnsafe(pcm.length - skips.length * frameBytes);
    let src = 0;
    let dst = 0;
    for (const skip of skips) {
      const end = skip * frameBytes;
      pcm.copy(out, dst, src, end);
      dst += end - src;
      src = end + frameBytes;
    }
    pcm.copy(out, dst, src);
    this.#removedFrames += skips.length;
    return out;
  }
}
