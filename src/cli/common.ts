/** Flags and helpers shared by the commands. */
import type { LoggerOptions } from '../shared/logger.js';
import { createRequire } from 'node:module';
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
  return { level, file: flags.logFile };
}
