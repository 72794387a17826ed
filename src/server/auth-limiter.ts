/**
 * Rate limit for wrong access keys, per remote address. The listener asks `isBlocked()` before it
 * spends a TLS session on the handshake and reports each AUTH result. The 128-bit key makes
 * guessing hopeless anyway; this keeps a misconfigured script or a hostile peer from filling the
 * logs and the CPU, and tells an honest user with a stale key when to retry.
 *
 * Policy: the first `maxFailures - 1` wrong keys cost nothing; the Nth and every later one block the
 * address for baseBlockMs · 2^(failures − N), capped at maxBlockMs (1 s, 2 s, 4 s … 60 s). The count
 * is forgotten after `windowMs` without failures, or at once on a success. Time is a parameter so
 * tests need no timers. Memory is bounded: past `maxEntries` the least recently failing address is
 * forgotten (an attacker needs that many distinct addresses to erase its own record).
 *
 * Deliberately per exact address, not per IPv6 /64: on a LAN every host shares the /64, so blocking
 * the prefix would let one bad machine lock out all viewers.
 */

export interface AuthLimiterOptions {
  maxFailures?: number;
  windowMs?: number;
  baseBlockMs?: number;
  maxBlockMs?: number;
  maxEntries?: number;
}

interface Entry {
  failures: number;
  lastFailureMs: number;
  blockedUntilMs: number;
  /** A refusal during the current block was already logged (one line per block, not per attempt). */
  refusalLogged: boolean;
}

export class AuthLimiter {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly baseBlockMs: number;
  readonly maxBlockMs: number;
  readonly maxEntries: number;
  // Map keeps insertion order; entries are re-inserted on every failure, so the first is the oldest.
  readonly #entries = new Map<string, Entry>();

  constructor(options: AuthLimiterOptions = {}) {
    this.maxFailures = positiveInt(options.maxFailures ?? 3, 'maxFailures');
    this.baseBlockMs = positiveInt(options.baseBlockMs ?? 1_000, 'baseBlockMs');
    this.maxBlockMs = positiveInt(options.maxBlockMs ?? 60_000, 'maxBlockMs');
    // Must outlast the longest block, or the count would reset while the address is still blocked.
    this.windowMs = positiveInt(options.windowMs ?? 10 * 60_000, 'windowMs');
    this.maxEntries = positiveInt(options.maxEntries ?? 10_000, 'maxEntries');
  }

  /** Number of addresses remembered (for tests and stats). */
  get size(): number {
    return this.#entries.size;
  }

  isBlocked(addr: string, nowMs: number): { blocked: boolean; retryAfterMs: number } {
    const entry = this.#entries.get(normalizeAddress(addr));
    if (!entry || nowMs >= entry.blockedUntilMs) return { blocked: false, retryAfterMs: 0 };
    return { blocked: true, retryAfterMs: entry.blockedUntilMs - nowMs };
  }

  recordFailure(addr: string, nowMs: number): void {
    const key = normalizeAddress(addr);
    let entry = this.#entries.get(key);
    if (entry && nowMs - entry.lastFailureMs > this.windowMs) entry = undefined;
    if (!entry) entry = { failures: 0, lastFailureMs: nowMs, blockedUntilMs: 0, refusalLogged: false };
    entry.failures += 1;
    entry.lastFailureMs = nowMs;
    if (entry.failures >= this.maxFailures) {
      const doublings = Math.min(entry.failures - this.maxFailures, 30);
      const blockMs = Math.min(this.maxBlockMs, this.baseBlockMs * 2 ** doublings);
      entry.blockedUntilMs = Math.max(entry.blockedUntilMs, nowMs + blockMs);
      entry.refusalLogged = false;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  /**
   * True for the first refusal of a blocked address in each block, false after: a peer that keeps
   * reconnecting while blocked must not be able to fill the log at line rate.
   */
  shouldLogRefusal(addr: string, nowMs: number): boolean {
    const entry = this.#entries.get(normalizeAddress(addr));
    if (!entry || nowMs >= entry.blockedUntilMs || entry.refusalLogged) return false;
    entry.refusalLogged = true;
    return true;
  }

  recordSuccess(addr: string): void {
    this.#entries.delete(normalizeAddress(addr));
  }
}

/** A dual-stack listener reports IPv4 peers as "::ffff:a.b.c.d"; count them with plain IPv4. */
function normalizeAddress(addr: string): string {
  const lower = addr.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`AuthLimiter: ${name} must be a positive integer, got ${value}`);
  return value;
}
