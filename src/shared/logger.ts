/**
 * Logging: pino JSON on stderr (or a file), human-readable on a TTY. stdout is reserved for data
 * (`--json` lines, the connect line). Components take child loggers: logger.child({ component }).
 */
import { Writable } from 'node:stream';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import { writeAboveStatusRow } from './status-row.js';

// pino-pretty only when logs go to a terminal: scripts and the bench never pay its ~25 ms at start-up.
const require = createRequire(import.meta.url);

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Write to this file instead of stderr. */
  file?: string;
  /** Force pretty (true) or JSON (false); default: pretty when stderr is a TTY. */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  if (options.file) {
    return pino({ level, base: undefined }, pino.destination({ dest: options.file, sync: false }));
  }
  const usePretty = options.pretty ?? Boolean(process.stderr.isTTY);
  if (usePretty) {
    // In the main thread, not a worker transport: each log line goes above the status line
    // (src/shared/status-row.ts), never onto its row.
    const toTerminal = new Writable({
      write(chunk: Buffer, _enc, done) {
        writeAboveStatusRow(chunk.toString(), done);
      },
    });
    const pretty = require('pino-pretty') as typeof PinoPretty;
    return pino(
      { level, base: undefined },
      pretty({ destination: toTerminal, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l', singleLine: true, sync: true }),
    );
  }
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (tests, library use without logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
