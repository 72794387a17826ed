/**
 * The viewer's audio jitter buffer for outputs that pull (a device callback asks for exactly the
 * samples it needs), so the buffer knows its true fill level — which `speaker` cannot report.
 * It starts playing once `targetMs` is buffered, plays silence on underflow and waits for the
 * target again (so one late packet costs one gap, not a stutter, and the delay returns to the
 * target instead of drifting lower), trims drift with DriftControl
 * (≤ 0.5 % of the samples) so the level stays at the target for hours, and after a burst (a link
 * that stalled and caught up) drops the oldest audio down to the target at once. Pure: no timers.
 */
import { DriftControl } from './drift-control.js';

export interface JitterBufferOptions {
  sampleRateHz: number;
  channels: number;
  targetMs: number;
  /** Above target + this, the excess is dropped at once (a burst is not drift). */
  burstMarginMs?: number;
}

export class JitterBuffer {
  readonly #frameBytes: number;
  readonly #bytesPerMs: number;
  readonly #targetMs: number;
  readonly #burstMarginMs: number;
  readonly #drift: DriftControl;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #playing = false;
  underruns = 0;
  droppedMs = 0;

  constructor(o: JitterBufferOptions) {
    this.#frameBytes = 2 * o.channels;
    this.#bytesPerMs = (o.sampleRateHz * this.#frameBytes) / 1000;
    this.#targetMs = o.targetMs;
    this.#burstMarginMs = o.burstMarginMs ?? Math.max(40, o.targetMs);
    this.#drift = new DriftControl({ targetMs: o.targetMs, deadBandMs: 2 });
  }

  get bufferedMs(): number {
    return this.#bytes / this.#bytesPerMs;
  }

  get trimmedFrames(): number {
    return this.#drift.removedFrames;
  }

  push(pcm: Buffer, nowMs: number): void {
    this.#drift.observe(this.bufferedMs, nowMs);
    const trimmed = this.#playing ? this.#drift.apply(pcm, this.#frameBytes) : pcm;
    this.#chunks.push(trimmed);
    this.#bytes += trimmed.length;
    const excessMs = this.bufferedMs - this.#targetMs - this.#burstMarginMs;
    if (excessMs > 0) this.#dropOldest(this.bufferedMs - this.#targetMs);
  }

  /** Fill `out` (interleaved s16) completely: audio when primed, silence otherwise. */
  pull(out: Int16Array): void {
    const wantBytes = out.length * 2;
    if (!this.#playing) {
      if (this.bufferedMs < this.#targetMs) {
        out.fill(0);
        return;
      }
      this.#playing = true;
    }
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
    if (filled < wantBytes) {
      dst.fill(0, filled);
      this.underruns++;
      // Wait for the target before playing again: one gap, then steady sound at the same delay.
      this.#playing = false;
    }
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
