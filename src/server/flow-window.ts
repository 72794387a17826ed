/**
 * How many unacknowledged bytes a session may have in flight before it holds video back.
 * window = delivery rate × (smoothed RTT + slack), but never below ~2.5 average frames, so a link
 * that carries the stream never waits, and a link that cannot gets at most about one RTT of
 * queued video instead of the seconds TCP's buffers would hide.
 */
const MIN_WINDOW_BYTES = 64 * 1024;
const INITIAL_WINDOW_BYTES = 512 * 1024;
/** ACK pacing + scheduling jitter on the viewer: the window must cover it or we stall ourselves. */
const SLACK_US = 40_000;
const RATE_SAMPLE_US = 100_000;

export class FlowWindow {
  #rateBytesPerS: number | null = null;
  #srttUs: number | null = null;
  #avgFrameBytes = 0;
  #sampleStartUs: number | null = null;
  #sampleBytes = 0;

  /** Audio may exceed the video window by this much: it is small and must keep flowing. */
  readonly audioAllowanceBytes = 32 * 1024;

  get bytes(): number {
    const frameFloor = Math.max(MIN_WINDOW_BYTES, 2.5 * this.#avgFrameBytes);
    if (this.#rateBytesPerS === null) return Math.max(INITIAL_WINDOW_BYTES, frameFloor);
    const rttUs = this.#srttUs ?? 20_000;
    return Math.max(frameFloor, (this.#rateBytesPerS * (rttUs + SLACK_US)) / 1e6);
  }

  get rateBytesPerS(): number | null {
    return this.#rateBytesPerS;
  }

  onVideoFrame(bytes: number): void {
    this.#avgFrameBytes = this.#avgFrameBytes === 0 ? bytes : this.#avgFrameBytes * 0.9 + bytes * 0.1;
  }

  onRtt(rttUs: number): void {
    this.#srttUs = this.#srttUs === null ? rttUs : this.#srttUs * 0.875 + rttUs * 0.125;
  }

  onAck(newlyAckedBytes: number, nowUs: number): void {
    if (this.#sampleStartUs === null) {
      this.#sampleStartUs = nowUs;
      this.#sampleBytes = 0;
      return;
    }
    this.#sampleBytes += newlyAckedBytes;
    const elapsedUs = nowUs - this.#sampleStartUs;
    if (elapsedUs < RATE_SAMPLE_US) return;
    const rate = (this.#sampleBytes * 1e6) / elapsedUs;
    this.#rateBytesPerS = this.#rateBytesPerS === null ? rate : this.#rateBytesPerS * 0.7 + rate * 0.3;
    this.#sampleStartUs = nowUs;
    this.#sampleBytes = 0;
  }
}
