/**
 * Test helper: child processes, ports and waiting, shared by integration and e2e tests.
 *
 * Every child a test starts goes through spawnTracked(), so `t.teardown(killAll)` (or afterEach)
 * can stop exactly those PIDs — never anything by name: other people's ffmpeg/ffplay/pulseaudio run
 * on this machine at the same time. All waits are bounded and reject with a message that says what
 * was awaited, so a hung test names its cause instead of hitting tap's global timeout.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';

const tracked = new Set<ChildProcess>();

/** spawn() whose child is remembered until it exits, so killAll() can stop it. */
export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, opts);
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  // A missing binary emits 'error' and never 'exit': forget it too, and keep the error from
  // becoming an unhandled event (tests see it through waitForExit / their own listener).
  child.once('error', () => tracked.delete(child));
  return child;
}

/** PIDs of tracked children that are still running (for assertions such as "close() left none"). */
export function trackedPids(): number[] {
  return [...tracked].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}

/** True while a process with this PID exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  return stat.status === 0 && !stat.stdout.trim().startsWith('Z');
}

export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!isRunning(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** SIGTERM, then SIGKILL after graceMs. Resolves when the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 1000): Promise<void> {
  if (!isRunning(child)) return;
  child.kill('SIGTERM');
  try {
    await waitForExit(child, graceMs);
  } catch {
    child.kill('SIGKILL');
    await waitForExit(child, 5000);
  }
}

/** Stop every tracked child that is still running (only those PIDs). Safe to call repeatedly. */
export async function killAll(graceMs = 1000): Promise<void> {
  await Promise.all([...tracked].map((c) => stopChild(c, graceMs).catch(() => undefined)));
}

/** Resolves with the first line matching `regex` (lines are split on \n; a partial last line waits). */
export function waitForLine(stream: Readable, regex: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let pending = '';
    const seen: string[] = [];
    const finish = (err: Error | null, match?: RegExpMatchArray): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      if (err) reject(err);
      else resolve(match as RegExpMatchArray);
    };
    const onData = (chunk: Buffer | string): void => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = line.match(regex);
        if (m) return finish(null, m);
        seen.push(line);
        if (seen.length > 20) seen.shift();
      }
    };
    const onEnd = (): void => finish(new Error(`stream ended before a line matched ${regex}; last lines:\n${seen.join('\n')}`));
    const timer = setTimeout(() => finish(new Error(`no line matched ${regex} within ${timeoutMs} ms; last lines:\n${seen.join('\n')}`)), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the usual small race is acceptable in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or `timeoutMs` passes.
 * A predicate that throws counts as "not yet"; its last error is in the timeout message.
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, timeoutMs: number, intervalMs = 50, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`${what} not met within ${timeoutMs} ms${why}`);
    }
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when `cmd` is on PATH (tests skip with a reason instead of failing on a missing tool). */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null 2>&1`, 'sh', cmd]).status === 0;
}

/** True when npm installed this package (an optional dependency may be left out on some platforms). */
export function isInstalled(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** Runs a short command to completion with a time limit; resolves with its output (never rejects on exit status). */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: Buffer } = {},
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin?.end(opts.input);
  });
}
