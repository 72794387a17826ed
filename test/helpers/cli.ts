/**
 * Test helper: the real `lanstream` command for e2e tests — the compiled CLI (bin/lanstream.js →
 * dist/, built by `npm run build`, which `npm test` runs first) in its own process, exactly as a
 * user starts it. runCli() runs a command to completion; spawnCli() keeps one running and collects
 * its output; startServe() waits until `lanstream serve` is listening and hands back what a viewer
 * needs (port, key, fingerprint). Every child is spawned through spawnTracked(), so killAll()
 * stops exactly these PIDs and nothing else that happens to be called node or ffmpeg.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isRunning, sleep, spawnTracked, stopChild, waitForExit } from './process.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LANSTREAM_BIN = path.join(REPO_ROOT, 'bin', 'lanstream.js');

/** Throws with the fix when the compiled CLI is missing (e2e tests run dist/, not src/). */
export function assertBuilt(): void {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js')) || !existsSync(path.join(REPO_ROOT, 'dist', 'bundle', 'main.js'))) {
    throw new Error(`${REPO_ROOT}/dist is missing: run \`npm run build\` first (npm test does)`);
  }
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** runCli: SIGKILL after this long (the result then has signal SIGKILL). Default 20 s. */
  timeoutMs?: number;
  cwd?: string;
  /** Run node under a wrapper, e.g. ['setpriv', '--reuid=nobody', …]. */
  wrapper?: readonly string[];
  /** Another lanstream entry script (an installed package's bin); default this checkout's bin/lanstream.js. */
  bin?: string;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** A running `lanstream …` with its output collected as it comes. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAtMs = Date.now();
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[], opts: CliOptions = {}) {
    const argv = [...(opts.wrapper ?? []), process.execPath, opts.bin ?? LANSTREAM_BIN, ...args];
    this.child = spawnTracked(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`could not spawn ${argv.join(' ')}`);
    this.pid = this.child.pid;
    this.child.stdout?.on('data', (b: Buffer) => (this.stdout += b.toString()));
    this.child.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString()));
    // 'close' (not 'exit'): all output has been read by then.
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  /** Resolves with the first match in stdout or stderr; rejects if the process ends first or on timeout. */
  async waitForOutput(stream: 'stdout' | 'stderr', regex: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this[stream].match(regex);
      if (m) return m;
      if (!this.running) throw new Error(`lanstream (pid ${this.pid}) exited before ${stream} matched ${regex}\n${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`${stream} did not match ${regex} within ${timeoutMs} ms\n${this.describe()}`);
      await sleep(25);
    }
  }

  /** Resolves with the first --json event satisfying `predicate`. */
  async waitForEvent(predicate: (e: JsonEvent) => boolean, timeoutMs: number, what = 'event'): Promise<JsonEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = completeLines(this.stdout)
        .map(tryParse)
        .find((e): e is JsonEvent => e !== null && predicate(e));
      if (found) return found;
      if (!this.running) throw new Error(`lanstream (pid ${this.pid}) exited before ${what}\n${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms\n${this.describe()}`);
      await sleep(25);
    }
  }

  /** Every complete stdout line parsed as JSON (throws on a line that is not JSON: --json promises only JSON). */
  events(): JsonEvent[] {
    return jsonLines(this.stdout);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Sends `sig` and waits for the exit (rejects after timeoutMs, leaving the process to killAll). */
  async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal(sig);
    await waitForExit(this.child, timeoutMs);
    return this.exited;
  }

  /** SIGTERM then SIGKILL: for teardown, whatever state the process is in. */
  destroy(): Promise<void> {
    return stopChild(this.child, 2000);
  }

  describe(): string {
    return `--- stdout (tail) ---\n${this.stdout.slice(-1500)}\n--- stderr (tail) ---\n${this.stderr.slice(-1500)}`;
  }
}

export type JsonEvent = { event: string; [key: string]: unknown };

export function spawnCli(args: readonly string[], opts: CliOptions = {}): CliProcess {
  assertBuilt();
  return new CliProcess(args, opts);
}

/** Runs `lanstream <args>` to its end (or SIGKILL at timeoutMs). Never rejects on the exit status. */
export async function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const proc = spawnCli(args, opts);
  const timer = setTimeout(() => proc.signal('SIGKILL'), opts.timeoutMs ?? 20_000);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  return { code, signal, stdout: proc.stdout, stderr: proc.stderr, elapsedMs: Date.now() - proc.startedAtMs };
}

/**
 * Runs any program to its end in `cwd` (process.ts run() has no cwd). Never rejects on the exit
 * status; SIGKILL at timeoutMs.
 */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** process.env without the npm_* variables `npm test`/`npx tap` set, which would point a nested npm at this checkout. */
export function envWithoutNpm(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

/** The `lanstream: … [LS_ERR_…]` lines of stderr (pino log lines, JSON, are left out). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('lanstream: '));
}

function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines.filter((l) => l.trim() !== '');
}

function tryParse(line: string): JsonEvent | null {
  try {
    return JSON.parse(line) as JsonEvent;
  } catch {
    return null;
  }
}

/** Parses every complete line; throws naming the first line that is not JSON. */
export function jsonLines(text: string): JsonEvent[] {
  return completeLines(text).map((line, i) => {
    try {
      return JSON.parse(line) as JsonEvent;
    } catch {
      throw new Error(`stdout line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
    }
  });
}

const configDirs = new Set<string>();
// Each holds a key and a certificate: removed when the test process exits, whoever made them (three
// were left in /tmp after every full run while callers were to remove them themselves).
process.on('exit', () => {
  for (const dir of configDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp directory for --config-dir, removed when this test process exits. */
export async function makeConfigDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-'));
  configDirs.add(dir);
  return dir;
}

export interface ServeHandle {
  port: number;
  /** The lanstream://127.0.0.1:port/?key=…&fp=… line serve printed (text mode), or one built from it. */
  url: string;
  key: string;
  /** null with --insecure. */
  fingerprint: string | null;
  configDir: string;
  proc: CliProcess;
  /** Sends `sig` (default SIGTERM) and waits for the exit. */
  stop(sig?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `serve --source test` (640x360 unless `size`) on 127.0.0.1:port with its own config dir, then `extra`. */
export function serveArgs(o: { port: number; configDir: string; size?: string }, ...extra: string[]): string[] {
  return ['serve', '--source', 'test', '--size', o.size ?? '640x360', '--host', '127.0.0.1', '--port', String(o.port), '--config-dir', o.configDir, ...extra];
}

/**
 * `watch` of a startServe() server from this machine, then `extra`. Same config dir as serve: on
 * 127.0.0.1 watch reads the access key from it (same user, same machine).
 */
export function localWatchArgs(serve: { port: number; configDir: string }, ...extra: string[]): string[] {
  return ['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, ...extra];
}

/** The window where the screen tests look for it: at 0,0, without a border. */
export const WINDOW_AT_ORIGIN: readonly string[] = ['--window-position', '0,0', '--borderless'];

export interface StartServeOptions {
  port?: number;
  configDir?: string;
  /** Extra flags after the defaults (`--source test --size 640x360 --host 127.0.0.1`). */
  args?: readonly string[];
  insecure?: boolean;
  /** Wait for the --json `ready` event instead of the connect line. */
  json?: boolean;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

/**
 * `lanstream serve --source test` on 127.0.0.1 and a free port; resolves once it listens. On a
 * start failure the process is stopped and the error carries its output.
 */
export async function startServe(opts: StartServeOptions = {}): Promise<ServeHandle> {
  const port = opts.port ?? (await freePort());
  const configDir = opts.configDir ?? (await makeConfigDir());
  const args = [...serveArgs({ port, configDir }), ...(opts.insecure ? ['--insecure'] : []), ...(opts.json ? ['--json'] : []), ...(opts.args ?? [])];
  const proc = spawnCli(args, { env: opts.env });
  const timeoutMs = opts.readyTimeoutMs ?? 10_000;
  try {
    let url: string;
    let fingerprint: string | null;
    let key: string;
    if (opts.json) {
      const ready = await proc.waitForEvent((e) => e.event === 'ready', timeoutMs, 'ready event');
      fingerprint = typeof ready.fingerprint === 'string' ? ready.fingerprint : null;
      key = (await readFile(path.join(configDir, 'access-key'), 'utf8')).trim();
      url = `lanstream://127.0.0.1:${port}/?key=${key}${fingerprint ? `&fp=${fingerprint}` : ''}`;
    } else {
      const m = await proc.waitForOutput('stdout', /lanstream watch "(lanstream:\/\/127\.0\.0\.1:\d+\/\?[^"]+)"/, timeoutMs);
      url = m[1]!;
      const query = new URL(url.replace(/^lanstream:/, 'http:')).searchParams;
      key = query.get('key') ?? '';
      fingerprint = query.get('fp');
    }
    return {
      port,
      url,
      key,
      fingerprint,
      configDir,
      proc,
      stop: (sig = 'SIGTERM', stopTimeoutMs = 5000) => proc.stop(sig, stopTimeoutMs),
    };
  } catch (err) {
    await proc.destroy();
    throw err;
  }
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
}

/** All descendants of `pid` (children, grandchildren…) with their command names, from ps. */
export function descendants(pid: number): ProcInfo[] {
  const res = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' });
  const all = res.stdout
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.+)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), comm: m[3]!.trim() }));
  const out: ProcInfo[] = [];
  const parents = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}
