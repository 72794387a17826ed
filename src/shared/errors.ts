/**
 * Error registry: every error lanstream raises on purpose has a stable code, a one-line message
 * that says what to do, and an exit-code class. Only src/cli turns these into process exit codes
 * (see src/cli/exit-codes.ts); everything else throws them with context and `cause`.
 * docs/errors.md is kept in sync with this table by test/unit/errors-doc.test.ts.
 */

/** Exit-code classes (the numbers live in src/cli/exit-codes.ts). */
export const ErrorKind = {
  failure: 'failure',
  usage: 'usage',
  connection: 'connection',
  auth: 'auth',
  dependency: 'dependency',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

export const ERROR_CODES = {
  LS_ERR_USAGE: { kind: 'usage', summary: 'a flag or argument has a wrong value' },
  LS_ERR_NOTHING_TO_WATCH: { kind: 'usage', summary: 'the server sends none of what this viewer asked for (e.g. --no-audio against serve --no-video)' },
  LS_ERR_FFMPEG_NOT_FOUND: { kind: 'dependency', summary: 'ffmpeg (or ffplay/ffprobe) is not installed or not runnable' },
  LS_ERR_FFPLAY_NOT_FOUND: { kind: 'dependency', summary: 'ffplay is needed for the video window and is missing' },
  LS_ERR_GSTREAMER_NOT_FOUND: { kind: 'dependency', summary: 'gst-launch-1.0 is needed for `--window gstreamer` and is missing' },
  LS_ERR_CAPTURE_FAILED: { kind: 'failure', summary: 'ffmpeg could not open or keep reading the camera or microphone' },
  LS_ERR_DEVICE_NOT_FOUND: { kind: 'failure', summary: 'the camera or microphone does not exist' },
  LS_ERR_DEVICE_BUSY: { kind: 'failure', summary: 'the camera or microphone is used by another program' },
  LS_ERR_PORT_BUSY: { kind: 'failure', summary: 'another program listens on the port' },
  LS_ERR_PORT_PRIVILEGED: { kind: 'failure', summary: 'ports below 1024 need privilege' },
  LS_ERR_BIND_FAILED: { kind: 'failure', summary: 'the listen address cannot be used' },
  LS_ERR_CONNECT_REFUSED: { kind: 'connection', summary: 'nothing listens at host:port' },
  LS_ERR_HOST_UNKNOWN: { kind: 'connection', summary: 'the host name does not resolve' },
  LS_ERR_CONNECT_TIMEOUT: { kind: 'connection', summary: 'the server did not answer in time' },
  LS_ERR_TLS_FAILED: { kind: 'connection', summary: 'the TLS handshake failed' },
  LS_ERR_CONNECTION_LOST: { kind: 'connection', summary: 'the server went away or the link died' },
  LS_ERR_SERVER_CLOSED: { kind: 'connection', summary: 'the server ended the session (reason given)' },
  LS_ERR_PROTOCOL: { kind: 'connection', summary: 'the peer sent bytes that break the lanstream protocol' },
  LS_ERR_VERSION_MISMATCH: { kind: 'connection', summary: 'the peer speaks another protocol version' },
  LS_ERR_CODEC_UNSUPPORTED: { kind: 'connection', summary: 'the server sends a codec this lanstream cannot decode' },
  LS_ERR_AUTH_REFUSED: { kind: 'auth', summary: 'the access key was missing or wrong' },
  LS_ERR_AUTH_RATE_LIMITED: { kind: 'auth', summary: 'too many wrong keys from this address; wait and retry' },
  LS_ERR_FINGERPRINT_MISMATCH: { kind: 'auth', summary: 'the server certificate is not the pinned one (possible man in the middle)' },
  LS_ERR_CONFIG: { kind: 'failure', summary: 'the config directory or a key/certificate file is unusable' },
  LS_ERR_SINK_FAILED: { kind: 'failure', summary: 'the window or the speaker could not be opened' },
  LS_ERR_RECORD_FAILED: { kind: 'failure', summary: 'the --record file could not be written (ffmpeg failed or the disk is full)' },
  LS_ERR_SNAPSHOT_FAILED: { kind: 'failure', summary: 'no video frame arrived for --snapshot, or the image could not be written' },
} as const satisfies Record<string, { kind: ErrorKind; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class LanstreamError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  /** Extra facts for logs/JSON (never secrets). */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LanstreamError';
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.details = options.details ?? {};
  }
}

export function isLanstreamError(err: unknown): err is LanstreamError {
  return err instanceof LanstreamError;
}

/** Flag → the environment variable its value came from, for this run (set by the CLI before a command runs). */
const envSources = new Map<string, string>();

/**
 * The CLI says which flags took their value from LANSTREAM_* rather than the command line, so that a
 * usage error about one names the variable: `LANSTREAM_PORT=abc` used to read "Invalid --port: abc",
 * and the user looked for a --port they never typed.
 */
export function setEnvSources(sources: Iterable<readonly [flag: string, envVar: string]>): void {
  envSources.clear();
  for (const [flag, envVar] of sources) envSources.set(flag, envVar);
}

/** The LANSTREAM_* variable this run took `flag` from, if it came from the environment. */
export function envSourceOf(flag: string): string | undefined {
  return envSources.get(flag);
}

/**
 * Usage errors name the flag, the value and what was expected: `Invalid --port: 70000 (expected 1–65535)`;
 * `Invalid LANSTREAM_PORT (--port): abc (…)` when the value came from the environment.
 */
export function usageError(flag: string, value: unknown, expected: string): LanstreamError {
  const envVar = envSources.get(flag);
  const source = envVar ? `${envVar} (${flag})` : flag;
  return new LanstreamError('LS_ERR_USAGE', `Invalid ${source}: ${String(value)} (expected ${expected})`, {
    details: { flag, value, ...(envVar ? { envVar } : {}) },
  });
}
