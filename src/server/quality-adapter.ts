/**
 * Per-viewer adaptive quality, between the hub's fan-out and one session's flow window. When a
 * viewer's link cannot carry the stream, the flow window already drops frames (lower frame rate);
 * past a point, smaller frames are better than fewer frames: the audio queued behind each big
 * frame shrinks too. The signal is the share of frames replaced while waiting for the window
 * (link-bound, not CPU-bound), counted over 2 s windows, and only while the frames that did go out
 * were slow to be acknowledged: a link too slow takes its time over every frame, a busy machine
 * delays an ACK now and then. Steps, each re-encoded with sharp (only
 * the frames actually sent): full size at a lower JPEG quality (about half the bytes), half size,
 * quarter size. Other viewers keep the full stream: one encoder, one slow link, no effect on the rest.
 * The first step down (the one that starts re-encoding) also needs the server's leave
 * (reencode-admission.ts): a busy CPU can look like a slow link, and re-encoding would make it busier.
 *
 * CPU (this 2-core machine, one frame at a time on libuv's thread pool, off the event loop): full
 * size q30 costs 8–12 ms per 720p frame (decode + encode), half size 7–9 ms, quarter 4–5 ms:
 * about a third of a core per viewer at the first level, and ~10 ms more latency per frame.
 *
 * Why these numbers:
 * - A link only a little too slow (12.6 Mbit/s through 10 Mbit/s) lost ~25 % of the frames
 *   (~22 fps) and never reached the old 40 % trigger. Half the bytes at full size keeps 30 fps and
 *   the picture size; a link that carries the stream replaces none (0 of 266 frames unshaped in
 *   the same bench). So 15 % in two consecutive windows (4 s) steps down one level — one window
 *   alone is a burst (a Wi-Fi hiccup, a GC pause), not a link. Over 40 % in a single window is a
 *   link far too slow: it steps at once, as far down as the delivered share says will fit.
 * - Probing up: after 3 calm windows (< 5 % replaced). A probe that fails (over 15 % in one of the
 *   first 2 windows at the new level) steps straight back and doubles the calm windows the next
 *   probe needs (3 → 6 → 12 → 24, i.e. at most one failed 2 s probe every ~50 s on a link that
 *   stays slow); 30 windows (60 s) without a step down reset it. A probe that holds means the link
 *   recovered: the next level up is tried after 1 calm window, so quarter → full takes ~10 s.
 */

export interface QualityLevel {
  /** Fraction of the source width/height. */
  scale: number;
  /** sharp JPEG quality 1–100; 0 = the captured frame, untouched. */
  jpegQuality: number;
  /**
   * Bytes per frame relative to the captured frame, measured with sharp on 720p frames captured
   * at ffmpeg -q:v 5 (60 testsrc2 frames; a detailed photo with and without sensor noise).
   */
  sizeRatio: number;
}

export const QUALITY_LEVELS: readonly QualityLevel[] = [
  { scale: 1, jpegQuality: 0, sizeRatio: 1 },
  // q30: 0.43 of the bytes on testsrc2, 0.53–0.59 on a detailed photo (ffmpeg's q5 is finer than
  // libjpeg's scale suggests); q40 would leave the photo at 0.67–0.74, too little for a 25 % short link.
  { scale: 1, jpegQuality: 30, sizeRatio: 0.5 },
  { scale: 0.5, jpegQuality: 60, sizeRatio: 0.25 }, // measured 0.23–0.31
  { scale: 0.25, jpegQuality: 50, sizeRatio: 0.08 }, // measured 0.07–0.08
];

const EVAL_EVERY_US = 2_000_000;
/**
 * A window of replaced frames is the link's only if the frames that did go out took this share of a
 * frame interval or more to be acknowledged, beyond the path's minimum RTT (median over the window).
 * A link too slow for the stream needs longer than that for every frame (52 kB through 10 Mbit/s:
 * 42 ms); a fast viewer whose ACKs were late for a moment on a busy machine acknowledges most frames
 * within a millisecond or two (rig, 8 viewers on 2 loaded cores: 3 fast viewers stepped down in one
 * run, reencode-admission.ts, and the re-encoding made the machine busier still).
 */
const LINK_BOUND_MIN_DELIVERY_FRACTION = 0.25;
/** Share of frames replaced while waiting for the flow window, per 2 s window. */
const DOWN_ABOVE_BLOCKED = 0.15;
const DOWN_SUSTAINED_WINDOWS = 2;
const DOWN_AT_ONCE_ABOVE_BLOCKED = 0.4;
/** The level chosen after a severe window should carry its frames with this much room left. */
const FIT_MARGIN = 0.9;
const STABLE_BELOW_BLOCKED = 0.05;
const UP_HEADROOM = 1.5;
const PROBE_AFTER_STABLE_WINDOWS = 3;
const PROBE_AFTER_MAX_WINDOWS = 24;
/** Windows at the new level during which going over the threshold counts as a failed probe. */
const PROBE_WINDOWS = 2;
const BACKOFF_RESET_WINDOWS = 30;

export class QualityAdapter {
  #level = 0;
  #offered = 0;
  #blocked = 0;
  #windowStartUs: number | null = null;
  #fullFrameBytes = 0;
  #stableWindows = 0;
  #overWindows = 0;
  /** Windows since the last step up; null when the last change was a step down (or none). */
  #sinceUpWindows: number | null = null;
  #failedProbes = 0;
  #climbing = false;
  #sinceDownWindows = 0;
  /** Send → ACK times (µs, beyond the minimum RTT) of the frames delivered in this window. */
  #deliveriesUs: number[] = [];

  get level(): number {
    return this.#level;
  }

  /** Calm windows the next probe up needs (grows after failed probes). */
  get probeAfterWindows(): number {
    if (this.#climbing) return 1;
    return Math.min(PROBE_AFTER_MAX_WINDOWS, PROBE_AFTER_STABLE_WINDOWS * 2 ** this.#failedProbes);
  }

  onOffered(fullFrameBytes: number): void {
    this.#offered++;
    this.#fullFrameBytes = this.#fullFrameBytes === 0 ? fullFrameBytes : this.#fullFrameBytes * 0.9 + fullFrameBytes * 0.1;
  }

  /** A frame was replaced because the one before it still waited for the flow window. */
  onBlocked(): void {
    this.#blocked++;
  }

  /** A frame sent was acknowledged this long after it went out, beyond the path's minimum RTT. */
  onDelivered(deliveryUs: number): void {
    if (this.#deliveriesUs.length < 1000) this.#deliveriesUs.push(deliveryUs);
  }

  /**
   * Called a few times a second with the delivery rate the flow window measured; returns the new
   * level when it changes, else null. `mayReencode` is asked before a step down from the captured
   * stream (level 0), the one step that costs CPU (ReencodeAdmission); refused, the viewer stays at
   * full quality and the step is tried again at the next window that still calls for it.
   */
  evaluate(nowUs: number, rateBytesPerS: number | null, fps: number, mayReencode?: () => boolean): number | null {
    if (this.#windowStartUs === null) this.#windowStartUs = nowUs;
    if (nowUs - this.#windowStartUs < EVAL_EVERY_US || this.#offered < fps) return null;
    const blocked = Math.min(1, this.#blocked / this.#offered);
    // No frame delivered in the whole window: nothing says the link is fast.
    const deliveries = this.#deliveriesUs.sort((a, b) => a - b);
    const medianDeliveryUs = deliveries.length ? deliveries[Math.floor(deliveries.length / 2)]! : Infinity;
    const linkBound = medianDeliveryUs >= (LINK_BOUND_MIN_DELIVERY_FRACTION * 1e6) / fps;
    this.#offered = 0;
    this.#blocked = 0;
    this.#deliveriesUs = [];
    this.#windowStartUs = nowUs;

    const probing = this.#sinceUpWindows !== null && this.#sinceUpWindows < PROBE_WINDOWS;
    if (this.#sinceUpWindows !== null) this.#sinceUpWindows++;
    this.#sinceDownWindows++;
    if (this.#sinceDownWindows >= BACKOFF_RESET_WINDOWS) this.#failedProbes = 0;
    this.#overWindows = blocked > DOWN_ABOVE_BLOCKED && linkBound ? this.#overWindows + 1 : 0;

    const last = QUALITY_LEVELS.length - 1;
    const severe = blocked > DOWN_AT_ONCE_ABOVE_BLOCKED && linkBound;
    const stepDown = severe || probing ? this.#overWindows >= 1 : this.#overWindows >= DOWN_SUSTAINED_WINDOWS;
    if (this.#level < last && stepDown && (this.#level > 0 || !mayReencode || mayReencode())) {
      if (probing) this.#failedProbes++;
      this.#climbing = false;
      this.#sinceUpWindows = null;
      this.#sinceDownWindows = 0;
      this.#stableWindows = 0;
      this.#overWindows = 0;
      this.#level = severe ? this.#fittingLevel(blocked) : this.#level + 1;
      return this.#level;
    }
    if (blocked < STABLE_BELOW_BLOCKED) {
      this.#stableWindows++;
      if (probing && this.#level > 0) this.#climbing = true;
    } else {
      this.#stableWindows = 0;
      this.#climbing = false;
    }
    if (this.#level > 0 && this.#stableWindows >= 1) {
      const needAbove = this.#fullFrameBytes * QUALITY_LEVELS[this.#level - 1]!.sizeRatio * fps + 96_000;
      // The rate measured at a lower level is app-limited, so a clear surplus proves room at once;
      // otherwise probe upwards after some calm windows (a wrong probe steps back down in 2 s).
      const surplus = rateBytesPerS !== null && rateBytesPerS > needAbove * UP_HEADROOM;
      if (surplus || this.#stableWindows >= this.probeAfterWindows) {
        this.#stableWindows = 0;
        this.#overWindows = 0;
        this.#sinceUpWindows = 0;
        if (--this.#level === 0) this.#climbing = false;
        return this.#level;
      }
    }
    return null;
  }

  /** The highest level below the current one whose frames fit in the share that got through. */
  #fittingLevel(blocked: number): number {
    const room = QUALITY_LEVELS[this.#level]!.sizeRatio * (1 - blocked) * FIT_MARGIN;
    let level = this.#level + 1;
    while (level < QUALITY_LEVELS.length - 1 && QUALITY_LEVELS[level]!.sizeRatio > room) level++;
    return level;
  }
}

/** Output width and height of a level for a source of width × height (even, at least 16). */
export function levelSize(level: number, width: number, height: number): { width: number; height: number } {
  const scale = QUALITY_LEVELS[level]!.scale;
  if (scale === 1) return { width, height };
  return { width: Math.max(16, Math.round((width * scale) / 2) * 2), height: Math.max(16, Math.round((height * scale) / 2) * 2) };
}

/**
 * Re-encodes one JPEG at a quality level (level > 0). sharp decodes and encodes on libuv's
 * thread pool, so the event loop (audio, ACKs, other viewers) keeps running meanwhile.
 */
export async function reduceJpeg(jpeg: Buffer, level: number, width: number, height: number): Promise<Buffer> {
  const q = QUALITY_LEVELS[level]!;
  // Loaded on first use: most sessions never need it, and it costs ~60 ms at start-up.
  const { default: sharp } = await import('sharp');
  const image = sharp(jpeg, { sequentialRead: true });
  if (q.scale !== 1) {
    const size = levelSize(level, width, height);
    image.resize(size.width, size.height, { fit: 'fill', kernel: 'linear' });
  }
  return image.jpeg({ quality: q.jpegQuality, mozjpeg: false }).toBuffer();
}
