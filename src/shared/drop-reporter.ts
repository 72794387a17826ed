/**
 * Counts drops and reports them at most once per interval (MediaMTX style): a slow viewer can lose
 * hundreds of frames a minute, and one log line per frame would become the next bottleneck.
 */
export class DropReporter {
  readonly #report: (counts: Record<string, number>) => void;
  readonly #intervalMs: number;
  #pending: Record<string, number> = {};
  #total: Record<string, number> = {};
  #timer: NodeJS.Timeout | null = null;

  constructor(report: (counts: Record<string, number>) => void, intervalMs = 1000) {
    this.#report = report;
    this.#intervalMs = intervalMs;
  }

  add(what: string, n = 1): void {
    this.#pending[what] = (this.#pending[what] ?? 0) + n;
    this.#total[what] = (this.#total[what] ?? 0) + n;
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  get totals(): Readonly<Record<string, number>> {
    return this.#total;
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (Object.keys(this.#pending).length === 0) return;
    const counts = this.#pending;
    this.#pending = {};
    this.#report(counts);
  }

  close(): void {
    this.flush();
  }
}
