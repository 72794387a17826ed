/**
 * How a long-running command ends: --duration (exit 0), SIGINT (130), SIGHUP (129, the terminal
 * closed) or SIGTERM (143) start the graceful close; a second Ctrl-C (or SIGTERM) forces the exit at
 * once. This is the only process.exit() call. When the command ends on its own (`ended` settles), its
 * error decides the exit code.
 *
 * A reader of stdout that went away ends the command too (141, as a Unix tool killed by SIGPIPE):
 * `watch --json | grep -m1 first-media` used to leave watch running with nobody reading, so the
 * script hung. Node ignores SIGPIPE; the next write fails with EPIPE instead (--json writes stats
 * once a second, so that is within a second).
 */
import { ExitCode } from './exit-codes.js';

export interface RunUntilOptions {
  durationMs?: number;
  /** --duration counts from when this resolves (watch: the stream is live); default: at once. */
  durationFrom?: Promise<unknown>;
  close: () => Promise<void>;
  /** Resolves when the command ends on its own with success; rejects with the reason otherwise. */
  ended: Promise<void>;
}

/**
 * A write to stdout failed because its reader went away: EPIPE, or on Windows also EOF (libuv's
 * name for ERROR_BROKEN_PIPE there; `watch --json | findstr …` crashed with "write EOF").
 */
export function readerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'EOF';
}

const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM' | 'SIGHUP', ExitCode>> = {
  SIGINT: ExitCode.INTERRUPTED,
  SIGTERM: ExitCode.TERMINATED,
  SIGHUP: ExitCode.HANGUP,
};

let releaseStartupGuard: (() => void) | null = null;

/**
 * Until runUntilDone takes over, SIGINT, SIGTERM and SIGHUP run `cleanup` (synchronous) and exit at
 * once with the signal's code. `watch` starts its window program and makes the overlay's temp dir
 * before it loads the rest of itself (early-window.ts); a signal in those ~50 ms met Node's default
 * action, which exits without running anything, and the temp dir stayed behind (one per full test
 * run here, from a test that stops a just-started watch). Returns the release, which runUntilDone
 * also calls once its own handlers are in place.
 */
export function guardStartup(cleanup: () => void): () => void {
  releaseStartupGuard?.();
  const handlers = (Object.keys(SIGNAL_EXIT) as Array<keyof typeof SIGNAL_EXIT>).map((sig) => {
    const onSignal = () => {
      cleanup();
      process.exit(SIGNAL_EXIT[sig]);
    };
    process.on(sig, onSignal);
    return () => process.off(sig, onSignal);
  });
  const release = () => {
    handlers.forEach((off) => off());
    if (releaseStartupGuard === release) releaseStartupGuard = null;
  };
  releaseStartupGuard = release;
  return release;
}

/** Resolves with the exit code, or rejects with the error that ended the command. */
export function runUntilDone(o: RunUntilOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    let closing = false;
    let timer: NodeJS.Timeout | null = null;
    const onSigint = () => {
      if (closing) {
        process.stderr.write('lanstream: forced exit\n');
        process.exit(ExitCode.INTERRUPTED);
      }
      finish(ExitCode.INTERRUPTED);
    };
    const onSigterm = () => {
      if (closing) {
        process.stderr.write('lanstream: forced exit\n');
        process.exit(ExitCode.TERMINATED);
      }
      finish(ExitCode.TERMINATED);
    };
    // A second SIGHUP has nobody to force the exit for: the close goes on.
    const onSighup = () => finish(ExitCode.HANGUP);
    const onStdoutError = (err: NodeJS.ErrnoException) => {
      if (readerGone(err)) finish(ExitCode.BROKEN_PIPE);
    };
    // The signal handlers stay until the close is done. Removing one inside the signal's own dispatch
    // let signal-exit (loaded with execa), whose listener runs after ours, see itself alone and
    // re-raise the signal: serve --video-codec h264 died on SIGTERM without its `stopped` line.
    const removeHandlers = () => {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
      process.off('SIGHUP', onSighup);
      process.stdout.off('error', onStdoutError);
    };
    const finish = (code: number, err?: unknown) => {
      if (closing) return;
      closing = true;
      if (timer) clearTimeout(timer);
      o.close().then(
        () => {
          removeHandlers();
          if (err) reject(err);
          else resolve(code);
        },
        (closeErr: unknown) => {
          removeHandlers();
          reject(err ?? closeErr);
        },
      );
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    process.on('SIGHUP', onSighup);
    releaseStartupGuard?.(); // after ours are on: never a moment with no handler at all
    process.stdout.on('error', onStdoutError);
    const durationMs = o.durationMs;
    if (durationMs) {
      const arm = () => {
        if (!closing) timer = setTimeout(() => finish(ExitCode.OK), durationMs);
      };
      if (o.durationFrom) o.durationFrom.then(arm, () => undefined);
      else arm();
    }
    o.ended.then(
      () => finish(ExitCode.OK),
      (err: unknown) => finish(ExitCode.FAILURE, err),
    );
  });
}
