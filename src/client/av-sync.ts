/**
 * Lip sync on the viewer: audio is never delayed for video (the ear notices gaps first), but a
 * video frame that would appear before its sound is held back by the difference. Both paths are
 * measured on the server clock (capture → arrival, from PING/PONG) plus what each output adds:
 * the audio sink reports its buffer; the ffplay window's push-to-pixels time was measured
 * (p50 34 ms under Xvfb, window-sink.ts). Only the newest held frame waits; a newer one replaces it.
 */
export interface AvSyncOptions {
  enabled: boolean;
  /** Push-to-pixels of the video sink, ms. */
  displayDelayMs: number;
  /** Never hold longer than this (a broken audio clock must not freeze the picture). */
  maxHoldMs: number;
}

export const DEFAULT_AV_SYNC: Readonly<AvSyncOptions> = Object.freeze({ enabled: true, displayDelayMs: 34, maxHoldMs: 150 });

/** Below this a timer would cost more jitter than it removes. */
const MIN_HOLD_MS = 4;

export class AvSync {
  readonly #o: AvSyncOptions;
  #audioArrivalMs: number[] = [];
  #held: { timer: NodeJS.Timeout; show: () => void } | null = null;
  heldFrames = 0;

  constructor(o: AvSyncOptions) {
    this.#o = o;
  }

  onAudioArrival(latencyMs: number): void {
    this.#audioArrivalMs.push(latencyMs);
    if (this.#audioArrivalMs.length > 50) this.#audioArrivalMs.shift();
  }

  /** How long to hold a frame that arrived `videoLatencyMs` after capture. Pure given the state. */
  holdMs(videoLatencyMs: number, audioBufferedMs: number | null): number {
    if (!this.#o.enabled || audioBufferedMs === null || this.#audioArrivalMs.length < 10) return 0;
    const sorted = [...this.#audioArrivalMs].sort((a, b) => a - b);
    const audioPathMs = sorted[Math.floor(sorted.length / 2)]! + audioBufferedMs;
    const videoPathMs = videoLatencyMs + this.#o.displayDelayMs;
    const hold = audioPathMs - videoPathMs;
    return hold < MIN_HOLD_MS ? 0 : Math.min(hold, this.#o.maxHoldMs);
  }

  /** Show now, or after holdMs; a frame already waiting is replaced (dropped). */
  schedule(holdMs: number, show: () => void): void {
    if (this.#held) {
      clearTimeout(this.#held.timer);
      this.#held = null;
    }
    if (holdMs <= 0) {
      show();
      return;
    }
    this.heldFrames++;
    const timer = setTimeout(() => {
      this.#held = null;
      show();
    }, holdMs);
    this.#held = { timer, show };
  }

  close(): void {
    if (this.#held) clearTimeout(this.#held.timer);
    this.#held = null;
  }
}
