/** Flags and helpers shared by the commands. */
import type { LoggerOptions } from '../shared/logger.js';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { usageError } from '../shared/errors.js';
import type { LevelWithSilent } from 'pino';
import { parseChoice } from './parse.js';

const require = createRequire(import.meta.url);
const VERSION: string = (require('../../package.json') as { version: string }).version;
export const VERSION_AGENT = `lanstream/${VERSION}`;

export interface CommonFlags {
  configDir?: string;
  ffmpeg?: string;
  insecure?: boolean;
  duration?: string;
  json?: boolean;
  quiet?: boolean;
  logLevel?: string;
  logFile?: string;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loggerOptions(flags: CommonFlags): LoggerOptions {
  const level: LevelWithSilent = flags.logLevel ? parseChoice('--log-level', flags.logLevel, LEVELS) : flags.quiet ? 'error' : 'info';
  if (flags.logFile !== undefined) checkLogFile(flags.logFile);
  return { level, file: flags.logFile };
}

/** The log file's folder must exist, as --record's must: a typo is not a reason to create /nonexistent as root. */
function checkLogFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw usageError('--log-file', file, `a file in an existing directory: ${dir} does not exist`);
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw usageError('--log-file', file, 'a file, not a directory');
}
