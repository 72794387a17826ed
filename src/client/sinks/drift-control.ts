/**
 * Keeps an audio output's fill level at its target for hours without audible jumps. The sender's
 * sound card and this machine's clock never run at exactly the same rate (tens to hundreds of ppm),
 * so a buffer that is only trimmed when it overflows creeps up to its ceiling and then loses whole
 * chunks (a click). Instead the level is smoothed and, while it sits above the target, one sample
 * frame in every `strideFrames` is left out — at most 0.5 % faster playback, inaudible on speech
 * and tones, and enough to absorb 5000 ppm of drift. Below the target nothing is removed; with
 * setStretch() one frame in every N is played twice instead (the jitter buffer), otherwise the sink's
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
  #addedFrames = 0;
  #sinceDropFrames = 0;
  #stretch = false;

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

  /**
   * Whether a level under the target is also corrected, by playing one frame in every N twice (the
   * same ≤ 0.5 %), aiming at the middle of the band. Off by default. Only for a level measured where
   * it matters (the jitter buffer's least level at the device's pulls, which turns it on for a drain):
   * a sender whose clock is slower than this sound card drains the buffer as surely as a faster one fills it.
   */
  setStretch(on: boolean): void {
    this.#stretch = on;
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

  /** Frames played twice (setStretch). */
  get addedFrames(): number {
    return this.#addedFrames;
  }

  /** 0 = play as is; otherwise drop one frame in every N. */
  strideFrames(): number {
    if (this.#levelMs === null) return 0;
    const excess = this.#levelMs - this.#targetMs - this.#deadBandMs;
    if (excess <= 0) return 0;
    return Math.max(FASTEST_STRIDE, Math.round(1 / (excess * RATE_PER_MS)));
  }

  /** 0 = play as is; otherwise play one frame in every N twice (only with setStretch, under the target). */
  stretchFrames(): number {
    if (!this.#stretch || this.#levelMs === null || this.#levelMs >= this.#targetMs) return 0;
    const deficit = this.#targetMs + this.#deadBandMs / 2 - this.#levelMs;
    return Math.max(FASTEST_STRIDE, Math.round(1 / (deficit * RATE_PER_MS)));
  }

  /**
   * Returns pcm with one frame in every `stride` removed (or, under the target with setStretch, played
   * twice), counting across calls so 10 ms packets (480 frames) still change one frame per 1000. A new
   * buffer only when something changes.
   */
  apply(pcm: Buffer, frameBytes: number): Buffer {
    const drop = this.strideFrames();
    const stride = drop || this.stretchFrames();
    const frames = Math.floor(pcm.length / frameBytes);
    if (stride === 0) {
      this.#sinceDropFrames = 0;
      return pcm;
    }
    // Frame indexes (in this packet) to skip or repeat.
    const at: number[] = [];
    // Overdue (the stride just got shorter): change the first frame now, then every `stride`.
    let next = Math.max(0, stride - 1 - this.#sinceDropFrames);
    while (next < frames) {
      at.push(next);
      next += stride;
    }
    this.#sinceDropFrames = at.length ? frames - 1 - at[at.length - 1]! : this.#sinceDropFrames + frames;
    if (at.length === 0) return pcm;
    // A skipped frame sits between two neighbours close in value, and a repeated one next to its own
    // copy, so the splice does not click.
    const sign = drop ? -1 : 1;
    const out = Buffer.allocUnsafe(pcm.length + sign * at.length * frameBytes);
    let src = 0;
    let dst = 0;
    for (const i of at) {
      const end = i * frameBytes;
      pcm.copy(out, dst, src, end);
      dst += end - src;
      if (drop) {
        src = end + frameBytes;
      } else {
        pcm.copy(out, dst, end, end + frameBytes); // the frame once here, and again below
        dst += frameBytes;
        src = end;
      }
    }
    pcm.copy(out, dst, src);
    if (drop) this.#removedFrames += at.length;
    else this.#addedFrames += at.length;
    return out;
  }
}
