/**
 * Test helper: a program in a pseudo-terminal, for what only happens on a TTY (watch's keys, the
 * status line refreshed in place, serve's viewer line). util-linux `script` owns the PTY: we write
 * keys into its stdin (a pipe; script copies them to the terminal), and read what the terminal
 * shows from its stdout (the program's stdout and stderr, merged as on a real screen).
 *
 * The program is exec'ed by script's shell, so it is script's direct child: destroy() sends it
 * SIGTERM by PID so it can shut down its own children (ffplay, ffmpeg) instead of them being
 * orphaned by a hangup, then stops whatever of its process tree is left — those PIDs only.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { LANSTREAM_BIN, assertBuilt, descendants } from './cli.js';
import { isRunning, pidAlive, sleep, spawnTracked, waitForExit } from './process.js';

export interface PtyOptions {
  env?: NodeJS.ProcessEnv;
  /** Redirect the program's stdout to this file (its stdin and stderr stay on the terminal). */
  stdoutFile?: string;
  cols?: number;
  rows?: number;
}

/** POSIX shell single-quoting. */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export class PtyProcess {
  readonly child: ChildProcess;
  readonly startedAtMs = Date.now();
  /** Everything the terminal showed so far (raw: \r, escape sequences and all). */
  output = '';
  /** script -e: the program's exit code (128 + n when a signal ended it). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(argv: readonly string[], opts: PtyOptions = {}) {
    const redirect = opts.stdoutFile ? ` > ${shellQuote(opts.stdoutFile)}` : '';
    const size = `stty cols ${opts.cols ?? 160} rows ${opts.rows ?? 40} 2>/dev/null; `;
    const command = `${size}exec ${argv.map(shellQuote).join(' ')}${redirect}`;
    this.child = spawnTracked('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (b: Buffer) => (this.output += b.toString()));
    this.child.stderr?.on('data', (b: Buffer) => (this.output += b.toString()));
    this.child.stdin?.on('error', () => undefined); // script gone: nothing to type into
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  /** Types `text` into the terminal (raw bytes: 'q', '-', '\x03' for Ctrl-C). */
  write(text: string): void {
    if (this.running) this.child.stdin?.write(text);
  }

  /** One key after the other with a pause between, as a person would type them. */
  async press(keys: string, gapMs = 120): Promise<void> {
    for (const key of keys) {
      this.write(key);
      await sleep(gapMs);
    }
  }

  /** The PID of the program inside the terminal (script's child), or null before it runs. */
  innerPid(): number | null {
    if (this.child.pid === undefined) return null;
    const res = spawnSync('ps', ['-o', 'pid=', '--ppid', String(this.child.pid)], { encoding: 'utf8' });
    const pid = Number(res.stdout.trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  /** Resolves with the first match in the terminal output; rejects if the program ends first or on timeout. */
  async waitForOutput(regex: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.slice(from).match(regex);
      if (m) return m;
      if (!this.running) throw new Error(`the program in the terminal exited before its output matched ${regex}\n${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`terminal output did not match ${regex} within ${timeoutMs} ms\n${this.describe()}`);
      await sleep(25);
    }
  }

  /** Sends `sig` to the program inside (not to script). */
  signalInner(sig: NodeJS.Signals): void {
    const pid = this.innerPid();
    if (pid !== null) process.kill(pid, sig);
  }

  /** Terminal text with escape sequences removed and each \r-refreshed line reduced to its last state. */
  screenText(): string {
    // eslint-disable-next-line no-control-regex
    const plain = this.output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    return plain
      .split('\n')
      .map(
        (line) =>
          line
            .split('\r')
            .filter((part) => part !== '')
            .at(-1) ?? '',
      )
      .join('\n');
  }

  /** SIGTERM to the program, then SIGKILL to anything left of its tree and to script. */
  async destroy(): Promise<void> {
    if (this.child.pid === undefined) return;
    const tree = descendants(this.child.pid);
    if (this.running) {
      this.signalInner('SIGTERM');
      try {
        await waitForExit(this.child, 4000);
      } catch {
        // killed below
      }
    }
    for (const p of tree) if (pidAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  describe(): string {
    return `--- terminal (tail) ---\n${this.screenText().slice(-2000)}`;
  }
}

export function spawnInPty(argv: readonly string[], opts: PtyOptions = {}): PtyProcess {
  return new PtyProcess(argv, opts);
}

/** `lanstream <args>` (the compiled CLI) in a pseudo-terminal. */
export function spawnCliInPty(args: readonly string[], opts: PtyOptions = {}): PtyProcess {
  assertBuilt();
  return new PtyProcess([process.execPath, LANSTREAM_BIN, ...args], opts);
}
