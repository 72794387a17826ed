/**
 * Counts an event that a flood can repeat (a failed TLS handshake, a dropped stalled handshake) and
 * reports it at most once per interval, as a count: the first one at once, what the interval held
 * back when it ends (the timer is unref'd, so it never keeps a process alive).
 */
export class LogThrottle {
  #count = 0;
  #lastMs = -Infinity;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (count: number) => void,
  ) {}

  note(): void {
    this.#count++;
    const waitMs = this.#lastMs + this.intervalMs - Date.now();
    if (waitMs <= 0) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), waitMs).unref();
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#count === 0) return;
    this.emit(this.#count);
    this.#count = 0;
    this.#lastMs = Date.now();
  }
}
