/**
 * The one monotonic clock of a process, in microseconds. Server PTS, viewer arrival times and
 * ping/pong all use it, so differences are never disturbed by wall-clock steps (NTP, DST).
 */
const origin = process.hrtime.bigint();

/** Microseconds since this process started (monotonic, fits a double exactly for 285 years). */
export function nowUs(): number {
  return Number((process.hrtime.bigint() - origin) / 1000n);
}

export function nowMs(): number {
  return nowUs() / 1000;
}
