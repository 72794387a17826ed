/**
 * Test helper: a private X display (Xvfb) for tests that open windows (the viewer's ffplay sink,
 * e2e `lanstream watch`).
 *
 * Xvfb picks its own free display number (-displayfd), so parallel tests and other users' displays
 * never collide; we wait until the server really accepts clients (xdpyinfo) because the socket file
 * appears before that. close() stops only this Xvfb's PID. No window manager runs: windows land
 * where they ask (ffplay -left/-top) and titles are searchable with xdotool.
 */
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { run, spawnTracked, stopChild, waitFor } from './process.js';

export interface XvfbDisplay {
  /** e.g. ":7" — pass as DISPLAY. */
  display: string;
  width: number;
  height: number;
  /** Env for children that should draw on this display (process.env + DISPLAY). */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function startXvfb(opts: { width?: number; height?: number; depth?: number; startTimeoutMs?: number } = {}): Promise<XvfbDisplay> {
  const width = opts.width ?? 640;
  const height = opts.height ?? 480;
  const depth = opts.depth ?? 24;
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const child: ChildProcess = spawnTracked('Xvfb', ['-displayfd', '3', '-screen', '0', `${width}x${height}x${depth}`, '-nolisten', 'tcp', '-ac', '-noreset'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-2000);
  });
  const close = (): Promise<void> => stopChild(child, 1000);

  try {
    const number = await readDisplayNumber(child, child.stdio[3] as Readable, timeoutMs);
    const display = `:${number}`;
    const env = { ...process.env, DISPLAY: display };
    await waitFor(
      async () => (await run('xdpyinfo', ['-display', display], { timeoutMs: 2000 })).code === 0,
      timeoutMs,
      50,
      `Xvfb ${display} accepting clients`,
    );
    // x11grab draws the pointer: park it in the far corner so it does not spoil screen checks.
    await run('xdotool', ['mousemove', String(width - 1), String(height - 1)], { env, timeoutMs: 2000 });
    return { display, width, height, env, close };
  } catch (err) {
    await close();
    throw new Error(`Xvfb did not start: ${(err as Error).message}\n${stderr}`, { cause: err });
  }
}

function readDisplayNumber(child: ChildProcess, fd3: Readable, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no display number within ${timeoutMs} ms`)), timeoutMs);
    fd3.on('data', (b: Buffer) => {
      text += b.toString();
      const m = text.match(/^(\d+)\n/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Xvfb exited with ${code}`));
    });
  });
}
