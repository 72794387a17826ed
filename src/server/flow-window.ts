/**
 * How many unacknowledged bytes a session may have in flight before it holds video back.
 * window = delivery rate × (minimum RTT + slack), but never below 1.1 average frames (one frame must
 * always fit), so a link that cannot carry the stream gets at most about one RTT of queued video
 * instead of the seconds TCP's buffers would hide (a 1 Mbit/s link: p90 ~140 ms with this floor,
 * ~310 ms with a larger one). The price: on a fast link the window is about one frame, so a viewer
 * whose ACK is late by a frame interval (a busy machine) has a frame replaced; the quality adapter
 * does not take that for a slow link (quality-adapter.ts).
 */
const MIN_WINDOW_BYTES = 16 * 1024;
const INITIAL_WINDOW_BYTES = 256 * 1024;
/** ACK pacing + scheduling jitter on the viewer: the window must cover it or we stall ourselves. */
const SLACK_US = 30_000;
const RATE_SAMPLE_US = 100_000;
/** RTT samples are kept this long; the minimum is the path's RTT without our own queue in it. */
const MIN_RTT_WINDOW_US = 10_000_000;

export class FlowWindow {
  #rateBytesPerS: number | null = null;
  #rttSamples: { atUs: number; rttUs: number }[] = [];
  #avgFrameBytes = 0;
  #sampleStartUs: number | null = null;
  #sampleBytes = 0;

  /**
   * Audio may exceed the video window by this much (~80 ms of 48 kHz mono PCM): it is small and
   * must keep flowing, but more would only queue sound behind itself.
   */
  readonly audioAllowanceBytes = 8 * 1024;

  get bytes(): number {
    // One frame must always fit, or a link slower than one frame per RTT would never get any.
    const frameFloor = Math.max(MIN_WINDOW_BYTES, 1.1 * this.#avgFrameBytes);
    if (this.#rateBytesPerS === null) return Math.max(INITIAL_WINDOW_BYTES, frameFloor);
    // The minimum RTT, not the smoothed one: pings queue behind our own video on a slow link, and
    // a window sized from that inflated RTT would keep the queue that inflated it (bufferbloat).
    const rttUs = this.minRttUs ?? 20_000;
    return Math.max(frameFloor, (this.#rateBytesPerS * (rttUs + SLACK_US)) / 1e6);
  }

  get minRttUs(): number | null {
    if (this.#rttSamples.length === 0) return null;
    return Math.min(...this.#rttSamples.map((s) => s.rttUs));
  }

  get rateBytesPerS(): number | null {
    return this.#rateBytesPerS;
  }

  onVideoFrame(bytes: number): void {
    this.#avgFrameBytes = this.#avgFrameBytes === 0 ? bytes : this.#avgFrameBytes * 0.9 + bytes * 0.1;
  }

  onRtt(rttUs: number, nowUs: number): void {
    this.#rttSamples.push({ atUs: nowUs, rttUs });
    while (this.#rttSamples.length > 0 && this.#rttSamples[0]!.atUs < nowUs - MIN_RTT_WINDOW_US) this.#rttSamples.shift();
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
