/**
 * A capture ffmpeg spawned ahead of time and held at a gate before it opens anything, so the first
 * viewer does not wait for ffmpeg to load. Owned by serve.ts (one per medium, only while capture is
 * idle); CaptureSource.start() takes the waiting child, which opens its gate, instead of spawning.
 *
 * Why: spawn → first JPEG on the pipe for x11grab 720p MJPEG is 113–137 ms (median of 5 runs),
 * ~63 ms of it ffmpeg loading its shared libraries (`ffmpeg -version` alone takes 63 ms); from an
 * opened gate it is ~62 ms. Through serve, viewer start() → first video chunk at the viewer (TLS
 * included, in-process, 7 runs each, p50): x11grab 720p 147–180 ms cold → 62–81 ms; lavfi test
 * source 135 → 28 ms. An idle gated ffmpeg costs VmRSS 43.5 MB, of which 9.4 MB anonymous (PSS 13 MB:
 * the rest is shared library pages).
 *
 * The gate is FFREPORT pointing at a FIFO (mkfifo, in a private 0700 mkdtemp dir): ffmpeg opens the
 * report file for writing in main() before it parses any option, and open() of a FIFO blocks until
 * a reader comes. So a gated ffmpeg has its libraries loaded but has opened no device and installed
 * no signal handler (SIGTERM still kills it at once), and its argv is the cold one unchanged. Opening
 * the FIFO for reading is the gate; that reader stays open until the child exits, because ffmpeg
 * writes its report header (~200 bytes; `level=-8` keeps everything else out) and a closed reader
 * would kill it with SIGPIPE. An extra dummy input (`-i <fifo>` first) also gates, but two input
 * files switch ffmpeg ≤ 6 to input threads whose main loop polls device inputs with 10 ms sleeps,
 * i.e. up to 10 ms more on every frame and audio packet for the whole session.
 *
 * No FIFOs on Windows: there start() spawns cold, as it always did. Every exit of serve kills its
 * gated children (execa's cleanup) except SIGKILL: those stay blocked at the gate (they never open a
 * device). So each gate dir names its owner's PID, and the next standby on this machine (Linux,
 * where /proc shows a process's environment) kills the gated children of dead owners and removes
 * their dirs (sweepOrphanGates).
 */
import { closeSync, constants as fsConstants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from '../../shared/logger.js';
import { Platform } from './capture-types.js';
import { FfmpegProcess } from './ffmpeg-process.js';

/**
 * The environment that holds an ffmpeg at its start gate (the FIFO at fifoPath), or null where
 * there are no FIFOs (Windows). Pure.
 */
export function startGateEnv(fifoPath: string, platform: Platform): Record<string, string> | null {
  if (platform === Platform.WINDOWS) return null;
  // level=-8 (quiet): nothing but the header goes to the report, so the pipe never fills.
  return { FFREPORT: `file=${escapeReportPath(fifoPath)}:level=-8` };
}

/** FFREPORT: '%' is ffmpeg's file-name template escape (%p, %t, %%); '\', ':' and "'" are av_get_token's escape, separator and quote. */
function escapeReportPath(p: string): string {
  return p.replace(/%/g, '%%').replace(/[\\:']/g, (c) => `\\${c}`);
}

export interface FfmpegStandbyOptions {
  ffmpegPath: string;
  /** The same argv as a cold spawn: the gate is in the environment only. */
  args: string[];
  name: 'video' | 'audio';
  platform: Platform;
  logger: Logger;
  graceMs?: number;
  env?: Record<string, string>;
}

const GATE_DIR_PREFIX = 'lanstream-gate-';
const OWNER_FILE = 'owner';
let swept = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills gated ffmpeg children left behind by a serve that was SIGKILLed (their gate dir's owner PID
 * is gone) and removes those dirs. A child is matched by its FFREPORT pointing into that dir (a
 * unique mkdtemp name), so nothing else is touched. Linux only (/proc/<pid>/environ); returns the
 * PIDs it killed.
 */
export function sweepOrphanGates(tmp: string = tmpdir(), procDir = '/proc'): number[] {
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(tmp).filter((e) => e.startsWith(GATE_DIR_PREFIX));
  } catch {
    return killed;
  }
  const stale = entries
    .map((e) => path.join(tmp, e))
    .filter((dir) => {
      try {
        const owner = Number(readFileSync(path.join(dir, OWNER_FILE), 'utf8'));
        return !(Number.isInteger(owner) && owner > 0 && alive(owner));
      } catch {
        return false; // no owner file (yet): not ours to judge
      }
    });
  if (stale.length === 0) return killed;
  let pids: string[];
  try {
    pids = readdirSync(procDir).filter((e) => /^\d+$/.test(e));
  } catch {
    // No /proc (macOS): the dirs stay; their children (if any) stay blocked without a device.
    return killed;
  }
  const markers = stale.map((dir) => Buffer.from(`FFREPORT=file=${escapeReportPath(dir + path.sep)}`));
  for (const pid of pids) {
    let environ: Buffer;
    try {
      environ = readFileSync(path.join(procDir, pid, 'environ'));
    } catch {
      continue; // gone, or another user's
    }
    if (!markers.some((m) => environ.includes(m))) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed.push(Number(pid));
    } catch {
      // already gone
    }
  }
  for (const dir of stale) rmSync(dir, { recursive: true, force: true });
  return killed;
}

interface Waiting {
  child: FfmpegProcess;
  fifoPath: string;
}

export class FfmpegStandby {
  readonly #o: FfmpegStandbyOptions;
  readonly #log: Logger;
  #dir: string | null = null;
  #waiting: Waiting | null = null;
  /** Gated children this standby stopped itself (gate would not open), within their grace period. */
  readonly #dying = new Set<FfmpegProcess>();
  #spawning = false;
  #replaced = false;
  #seq = 0;
  #disabled = false;
  #closing: Promise<void> | null = null;

  constructor(opts: FfmpegStandbyOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'ffmpeg-standby', stream: opts.name });
    this.#disabled = startGateEnv('x', opts.platform) === null;
  }

  /** PID of the gated child waiting for a viewer (tests, diagnostics). */
  get pid(): number | undefined {
    return this.#waiting?.child.pid;
  }

  /** The private dir holding the gate FIFOs (null before the first refill() and after close()). */
  get dir(): string | null {
    return this.#dir;
  }

  /** True when a gated child is waiting. */
  get ready(): boolean {
    return this.#waiting?.child.running === true;
  }

  /**
   * Spawns a gated child unless one is waiting; call it whenever capture becomes idle. Resolves once
   * the child is spawned (not once it reached the gate); never rejects: a standby that cannot be
   * made only means the next start is cold.
   */
  async refill(): Promise<void> {
    this.#replaced = false;
    await this.#spawn();
  }

  /**
   * Hands over the waiting child with its gate opened (the caller owns it from now on: 'data',
   * 'exit', close()), or null when there is none. Does not spawn another: a standby is only kept
   * while capture is idle.
   */
  take(): FfmpegProcess | null {
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting === null) return null;
    // Dead but its 'exit' not delivered yet: the caller starts cold.
    if (!waiting.child.running) return null;
    let readerFd: number;
    try {
      // O_NONBLOCK: succeeds with or without a writer, so a child still loading (not yet at the
      // gate) gets through the moment it arrives, and a dead one never blocks us.
      readerFd = openSync(waiting.fifoPath, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      this.#log.debug({ err }, 'cannot open the start gate; starting cold');
      const child = waiting.child;
      this.#dying.add(child);
      void child.close().then(() => this.#dying.delete(child));
      return null;
    }
    waiting.child.once('exit', () => closeSync(readerFd));
    return waiting.child;
  }

  /** Kills the waiting child (it has opened nothing) and removes the FIFO dir. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const waiting = this.#waiting;
      this.#waiting = null;
      await Promise.all([waiting?.child.close(), ...[...this.#dying].map((c) => c.close())]);
      if (this.#dir !== null) rmSync(this.#dir, { recursive: true, force: true });
      this.#dir = null;
    })();
    return this.#closing;
  }

  async #spawn(): Promise<void> {
    if (this.#disabled || this.#closing !== null || this.#spawning || this.#waiting?.child.running === true) return;
    this.#spawning = true;
    try {
      if (this.#dir === null) {
        if (!swept) {
          swept = true;
          const killed = sweepOrphanGates();
          if (killed.length) this.#log.info({ pids: killed }, 'stopped gated ffmpeg left behind by a serve that was killed');
        }
        this.#dir = mkdtempSync(path.join(tmpdir(), GATE_DIR_PREFIX));
        writeFileSync(path.join(this.#dir, OWNER_FILE), String(process.pid), { mode: 0o600 });
      }
      const fifoPath = path.join(this.#dir, `gate-${++this.#seq}`);
      // Node has no mkfifo(); this runs only while capture is idle, so its few ms cost nobody.
      await execa('mkfifo', ['-m', '600', fifoPath], { stdin: 'ignore' });
      if (this.#closing !== null) {
        unlinkSync(fifoPath);
        return;
      }
      const child = new FfmpegProcess({
        ffmpegPath: this.#o.ffmpegPath,
        args: this.#o.args,
        name: this.#o.name,
        logger: this.#o.logger,
        ...(this.#o.graceMs === undefined ? {} : { graceMs: this.#o.graceMs }),
        env: { ...this.#o.env, ...startGateEnv(fifoPath, this.#o.platform) },
      });
      const waiting: Waiting = { child, fifoPath };
      child.once('exit', (exit) => {
        try {
          unlinkSync(fifoPath);
        } catch {
          // Already gone with the dir (close()).
        }
        if (this.#waiting !== waiting) return;
        this.#waiting = null;
        if (exit.requested || this.#closing !== null) return;
        // Killed or crashed while gated: it never opened the device, so this is no capture failure.
        // Replace it once; a second death (ffmpeg cannot even start) waits for the next refill().
        this.#log.debug({ code: exit.code, signal: exit.signal, stderrTail: exit.stderrTail, replacing: !this.#replaced }, 'standby ffmpeg exited while gated');
        if (this.#replaced) return;
        this.#replaced = true;
        void this.#spawn();
      });
      this.#waiting = waiting;
      child.start();
    } catch (err) {
      // mkdtemp or mkfifo failed (no mkfifo binary, full disk): starts are cold from now on.
      this.#disabled = true;
      this.#log.debug({ err }, 'no start gate: capture starts cold');
    } finally {
      this.#spawning = false;
    }
  }
}
