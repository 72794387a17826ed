/**
 * The only place that knows process exit codes. Scripts and cron jobs rely on these numbers; they
 * are listed in `--help` and the README, and test/unit/exit-codes.test.ts pins every mapping.
 */
import { ERROR_CODES, isLanstreamError, type ErrorKind } from '../shared/errors.js';

export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  CONNECTION: 3,
  AUTH: 4,
  DEPENDENCY: 5,
  HANGUP: 129,
  INTERRUPTED: 130,
  BROKEN_PIPE: 141,
  TERMINATED: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const BY_KIND: Record<ErrorKind, ExitCode> = {
  failure: ExitCode.FAILURE,
  usage: ExitCode.USAGE,
  connection: ExitCode.CONNECTION,
  auth: ExitCode.AUTH,
  dependency: ExitCode.DEPENDENCY,
};

export function exitCodeFor(err: unknown): ExitCode {
  if (isLanstreamError(err)) return BY_KIND[ERROR_CODES[err.code].kind];
  return ExitCode.FAILURE;
}

export const EXIT_CODES_HELP = `Exit codes:
  0    ok (--duration elapsed, window closed, or stopped on purpose)
  1    runtime failure (capture, port busy or privileged, config, output device)
  2    usage error (a flag or argument has a wrong value, or the server sends none of what it asks for)
  3    could not connect, or the connection was lost for good
  4    authentication refused (wrong key, rate limited, certificate fingerprint changed)
  5    a required program is missing (ffmpeg, ffplay, gst-launch-1.0 for --window gstreamer)
  129  hung up (SIGHUP: the terminal closed)
  130  interrupted (Ctrl-C / SIGINT)
  141  stdout closed by its reader (\`--json | head -1\`)
  143  terminated (SIGTERM)`;
