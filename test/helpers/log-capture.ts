/**
 * Test helper: a real pino logger whose JSON lines land in memory, so tests can assert what an
 * operator would read in the log (a refusal logged once, with the address; no key in any line).
 */
import { pino, type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg?: string;
  [key: string]: unknown;
}

export interface LogCapture {
  logger: Logger;
  /** Every line written so far, parsed. */
  lines: LogLine[];
  /** Everything written so far, as the raw text a log file would hold. */
  text(): string;
  /** Lines whose msg contains `fragment`. */
  matching(fragment: string): LogLine[];
}

export function captureLogger(level: pino.LevelWithSilent = 'debug'): LogCapture {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const logger = pino(
    { level, base: undefined },
    {
      write(s: string): void {
        raw.push(s);
        for (const part of s.split('\n')) if (part.trim()) lines.push(JSON.parse(part) as LogLine);
      },
    },
  );
  return {
    logger,
    lines,
    text: () => raw.join(''),
    matching: (fragment) => lines.filter((l) => typeof l.msg === 'string' && l.msg.includes(fragment)),
  };
}
