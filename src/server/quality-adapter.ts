/**
 * Per-viewer adaptive quality. When a viewer's link cannot carry the stream, the flow window
 * already drops frames (lower frame rate); past a point, smaller frames are better than fewer
 * frames: the audio queued behind each big frame shrinks too. So a viewer whose link holds back
 * (replaces while waiting for the window) over 40 % of the frames steps down (half size, then quarter size, lower JPEG quality) — its
 * frames are re-encoded with sharp, only the ones actually sent — and steps back up when its
 * measured delivery rate would carry the level above with room to spare. Other viewers keep
 * the full stream: one encoder, one slow link, no effect on the rest.
 */

export interface QualityLevel {
  /** Fraction of the source width/height. */
  scale: number;
  /** sharp JPEG quality 1–100. */
  jpegQuality: number;
}

export const QUALITY_LEVELS: readonly QualityLevel[] = [
  { scale: 1, jpegQuality: 0 }, // 0 = the captured frame, untouched
  { scale: 0.5, jpegQuality: 60 },
  { scale: 0.25, jpegQuality: 50 },
];

/** Bytes per frame relative to level 0, measured on the bench's scene (720p, q5): a starting guess. */
const SIZE_RATIO = [1, 0.22, 0.07];

const EVAL_EVERY_US = 2_000_000;
/** Share of frames replaced while waiting for the flow window (link-bound, not CPU-bound). */
const DOWN_ABOVE_BLOCKED = 0.4;
const STABLE_BELOW_BLOCKED = 0.05;
const UP_HEADROOM = 1.5;
const PROBE_AFTER_STABLE_WINDOWS = 3;

export class QualityAdapter {
  #level = 0;
  #offered = 0;
  #blocked = 0;
  #windowStartUs: number | null = null;
  #fullFrameBytes = 0;
  #stableWindows = 0;

  get level(): number {
    return this.#level;
  }

  onOffered(fullFrameBytes: number): void {
    this.#offered++;
    this.#fullFrameBytes = this.#fullFrameBytes === 0 ? fullFrameBytes : this.#fullFrameBytes * 0.9 + fullFrameBytes * 0.1;
  }

  /** A frame was replaced because the one before it still waited for the flow window. */
  onBlocked(): void {
    this.#blocked++;
  }

  /**
   * Called a few times a second with the delivery rate the flow window measured; returns the new
   * level when it changes, else null.
   */
  evaluate(nowUs: number, rateBytesPerS: number | null, fps: number): number | null {
    if (this.#windowStartUs === null) this.#windowStartUs = nowUs;
    if (nowUs - this.#windowStartUs < EVAL_EVERY_US || this.#offered < fps) return null;
    const blocked = this.#blocked / this.#offered;
    this.#offered = 0;
    this.#blocked = 0;
    this.#windowStartUs = nowUs;
    if (blocked > DOWN_ABOVE_BLOCKED && this.#level < QUALITY_LEVELS.length - 1) {
      this.#stableWindows = 0;
      return ++this.#level;
    }
    if (blocked < STABLE_BELOW_BLOCKED) this.#stableWindows++;
    else this.#stableWindows = 0;
    if (this.#level > 0 && this.#stableWindows >= 1) {
      const needAbove = this.#fullFrameBytes * SIZE_RATIO[this.#level - 1]! * fps + 96_000;
      // The rate measured at a lower level is app-limited, so a clear surplus proves room at once;
      // otherwise probe upwards after a few calm windows (a wrong probe steps back down in 2 s).
      const surplus = rateBytesPerS !== null && rateBytesPerS > needAbove * UP_HEADROOM;
      if (surplus || this.#stableWindows >= PROBE_AFTER_STABLE_WINDOWS) {
        this.#stableWindows = 0;
        return --this.#level;
      }
    }
    return null;
  }
}

/** Re-encodes one JPEG at a quality level (level > 0). */
export async function reduceJpeg(jpeg: Buffer, level: number, width: number, height: number): Promise<Buffer> {
  const q = QUALITY_LEVELS[level]!;
  const w = Math.max(16, Math.round((width * q.scale) / 2) * 2);
  const h = Math.max(16, Math.round((height * q.scale) / 2) * 2);
  // Loaded on first use: most sessions never need it, and it costs ~60 ms at start-up.
  const { default: sharp } = await import('sharp');
  return sharp(jpeg, { sequentialRead: true }).resize(w, h, { fit: 'fill', kernel: 'linear' }).jpeg({ quality: q.jpegQuality, mozjpeg: false }).toBuffer();
}
