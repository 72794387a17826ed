/**
 * What the CLI prints: one-line errors on stderr (with the code), and with --json one JSON object
 * per line on stdout — nothing else ever goes to stdout in that mode (logs are on stderr).
 */
import type { LanstreamError } from '../shared/errors.js';

export class Output {
  json = false;
  quiet = false;
  /** Errors already reported: a command that reports its own error before `stopped` is not repeated by main. */
  readonly #reported = new WeakSet<LanstreamError>();
  #stopped = false;

  /** A `--json` event line (no-op without --json). */
  event(event: string, data: Record<string, unknown> = {}): void {
    if (this.json) process.stdout.write(`${JSON.stringify({ event, time: new Date().toISOString(), ...data })}\n`);
  }

  /** Text for humans on stdout (suppressed in --json mode, where scripts read stdout). */
  text(line: string): void {
    if (!this.json) process.stdout.write(`${line}\n`);
  }

  /**
   * The last --json line of every run, with the code the process exits with, so a script reading
   * only stdout knows how it ended (also after a failure before anything was live). Once.
   */
  stopped(exitCode: number, data: Record<string, unknown> = {}): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.event('stopped', { exitCode, ...data });
  }

  error(err: LanstreamError): void {
    if (this.#reported.has(err)) return;
    this.#reported.add(err);
    if (this.json)
      this.event('error', { code: err.code, message: err.message, ...('stderrTail' in err.details ? { stderrTail: err.details.stderrTail } : {}) });
    // ffmpeg's own words first, then the coded line: it is always the last line on stderr, for a
    // script that reads `tail -1` (it came before the tail, which buried the code).
    const tail = err.details.stderrTail;
    if (Array.isArray(tail) && tail.length > 0 && !this.quiet) {
      process.stderr.write(`  last ffmpeg output:\n${tail.map((l) => `    ${String(l)}`).join('\n')}\n`);
    }
    process.stderr.write(`lanstream: ${err.message} [${err.code}]\n`);
  }
}
