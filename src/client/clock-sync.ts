/**
 * Server-clock estimate on the viewer from PING/PONG (NTP's four timestamps minus one: the server
 * stamps once). Keeping the sample with the smallest RTT among the recent ones gives the offset
 * least disturbed by queueing, so per-frame end-to-end latency = arrival + offset − ptsUs.
 */
const WINDOW = 16;

export class ClockSync {
  #samples: { rttUs: number; offsetUs: number }[] = [];
  #offsetUs = 0;
  #rttUs: number | null = null;

  /** First estimate from WELCOME (RTT unknown: assume the one-way trip was ~0). */
  reset(serverTimeUs: number, arrivalUs: number): void {
    this.#samples = [];
    this.#offsetUs = serverTimeUs - arrivalUs;
    this.#rttUs = null;
  }

  onPong(echoTimeUs: number, serverTimeUs: number, arrivalUs: number): void {
    const rttUs = arrivalUs - echoTimeUs;
    if (rttUs < 0) return;
    const offsetUs = serverTimeUs - (echoTimeUs + arrivalUs) / 2;
    this.#samples.push({ rttUs, offsetUs });
    if (this.#samples.length > WINDOW) this.#samples.shift();
    const best = this.#samples.reduce((a, b) => (b.rttUs < a.rttUs ? b : a));
    this.#offsetUs = best.offsetUs;
    this.#rttUs = this.#rttUs === null ? rttUs : this.#rttUs * 0.875 + rttUs * 0.125;
  }

  /** server clock − viewer clock, µs */
  get offsetUs(): number {
    return this.#offsetUs;
  }

  get rttMs(): number | null {
    return this.#rttUs === null ? null : this.#rttUs / 1000;
  }

  /** End-to-end latency of a chunk stamped ptsUs on the server and seen here at arrivalUs. */
  latencyUs(ptsUs: number, arrivalUs: number): number {
    return arrivalUs + this.#offsetUs - ptsUs;
  }
}
