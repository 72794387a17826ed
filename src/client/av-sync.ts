/**
 * Lip sync on the viewer: audio is never delayed for video (the ear notices gaps first), but a
 * video frame that would appear before its sound is held back by the difference. Both paths are
 * measured on the server clock (capture → arrival, from PING/PONG) plus what each output adds:
 * the audio sink reports its buffer; for the video, displayDelayMs stands for all the viewer cannot
 * see of the picture's path beyond the sound's: the capture and encoding before serve stamps a frame
 * (frames arrive 0.2 ms after their stamp on 127.0.0.1), the window's decoding and display, less the
 * sound's capture fragment and what the audio output holds outside its stats.
 *
 * Each held frame keeps its own due time (a hold longer than one frame interval must not make
 * every frame replace the one before it: measured on the rig, that cut 30 fps to 20). When the
 * timer fires, the newest frame that is due is shown and older due ones are skipped.
 */
export interface AvSyncOptions {
  enabled: boolean;
  /** What the viewer cannot see of the picture's path beyond what it cannot see of the sound's, ms. */
  displayDelayMs: number;
  /** Never hold longer than this (a broken audio clock must not freeze the picture). */
  maxHoldMs: number;
}

/**
 * Off unless asked for (`watch --av-sync`): what it removes costs the picture as much delay, and the
 * issue's goals for both are within a few ms of each other (sound ~41 ms, picture 20–31 ms, GStreamer's
 * picture ~26 on the rig). displayDelayMs from the rig (2026-11-28, bench/results/diag-20261128-0535-av-sync.md):
 * without a hold, the viewer's own skew estimate exceeded the skew the rig measured by a median 24.75 ms
 * (10 runs, 15.1–31.1); with 23 the skew was −4.6 to +2.8 ms in 8 runs, ffplay or GStreamer window,
 * joining at once or 5 s late. It was 34 ms (the ffplay window's push-to-pixels time alone, measured
 * 2026-11-25) and held ~10 ms too little. Calibrated with the default sound output: with
 * `--audio-output pulse`, whose reported buffer counts differently, the hold was 7–16 ms too long.
 */
export const DEFAULT_AV_SYNC: Readonly<AvSyncOptions> = Object.freeze({ enabled: false, displayDelayMs: 23, maxHoldMs: 150 });

/** Below this a timer would cost more jitter than it removes. */
const MIN_HOLD_MS = 4;
/** Frames waiting at most (150 ms at 30 fps is 5): beyond that the oldest is skipped. */
const MAX_HELD = 8;

export class AvSync {
  readonly #o: AvSyncOptions;
  #audioArrivalMs: number[] = [];
  #held: { dueMs: number; show: () => void }[] = [];
  #timer: NodeJS.Timeout | null = null;
  heldFrames = 0;
  skippedFrames = 0;

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

  /** Show now, or once holdMs have passed. Frames are shown in order; a due frame skips older due ones. */
  schedule(holdMs: number, show: () => void, nowMs = performance.now()): void {
    if (holdMs <= 0 && this.#held.length === 0) {
      show();
      return;
    }
    this.heldFrames++;
    // Never before a frame that came earlier: due times stay in arrival order.
    const lastDue = this.#held.at(-1)?.dueMs ?? 0;
    this.#held.push({ dueMs: Math.max(nowMs + holdMs, lastDue), show });
    while (this.#held.length > MAX_HELD) {
      this.#held.shift();
      this.skippedFrames++;
    }
    this.#arm(nowMs);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#held = [];
  }

  #arm(nowMs: number): void {
    if (this.#timer || this.#held.length === 0) return;
    const wait = Math.max(0, this.#held[0]!.dueMs - nowMs);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#release(performance.now());
    }, wait);
  }

  #release(nowMs: number): void {
    let due: { show: () => void } | null = null;
    while (this.#held.length > 0 && this.#held[0]!.dueMs <= nowMs + 1) {
      if (due) this.skippedFrames++;
      due = this.#held.shift()!;
    }
    due?.show();
    this.#arm(nowMs);
  }
}
