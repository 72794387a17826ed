/**
 * Test helper: a private PulseAudio daemon as the viewer's sound card and the server's microphone.
 *
 * Layout (like ../shared/bench, without its stereo bus):
 *   - null sink `spk` (stereo, 48 kHz): the default sink, i.e. the viewer's speaker. Record what
 *     was played from `spk.monitor` with recordMonitor()/startRecording().
 *   - null sink `mic` (mono, 48 kHz): play a test signal into it (e.g. `pacat -d mic`); its monitor
 *     `mic.monitor` is the virtual microphone (default source).
 * `env` points pulse clients (pacat, ffmpeg -f pulse) at this daemon, and ALSA clients too: the
 * ALSA_CONFIG_PATH file includes the system alsa.conf and makes `default` the pulse plugin, so the
 * npm `speaker` package (ALSA) lands in `spk`. Everything lives in one temp dir (socket, runtime
 * dir, HOME), the daemon is stopped by its PID and the dir is removed on close(); if this process
 * dies first, the kernel stops the daemon (see startPulse).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand, run, spawnTracked, stopChild, waitFor } from './process.js';
import { nowMs } from '../../src/shared/clock.js';

export const RECORD_RATE_HZ = 48_000;

export interface Recording {
  /** Stops parec; resolves with everything recorded (s16le, 48 kHz, mono). */
  stop(): Promise<Buffer>;
  /**
   * Estimated nowMs() (src/shared/clock.ts) at which recorded sample 0 came out of `spk`.
   * It is the earliest moment consistent with when each block of samples reached us, so a
   * latency measured against it is at most a few ms (parec's 10 ms fragment) too high, never low.
   * NaN before any data arrived.
   */
  sampleZeroAtMs(): number;
}

export interface PulseServer {
  env: Record<string, string>;
  /** "spk": the default sink (the speaker). */
  sinkName: string;
  /** "mic.monitor": the default source (the microphone). */
  micSource: string;
  dir: string;
  /** The daemon's PID. */
  pid: number | undefined;
  /** Records `seconds` of spk.monitor (s16le, 48 kHz, mono). */
  recordMonitor(seconds: number): Promise<Buffer>;
  startRecording(): Recording;
  close(): Promise<void>;
}

export async function startPulse(opts: { startTimeoutMs?: number } = {}): Promise<PulseServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ls-pulse-'));
  const socket = join(dir, 'native');
  const script = join(dir, 'default.pa');
  const asound = join(dir, 'asound.conf');
  await writeFile(
    script,
    [
      `load-module module-native-protocol-unix auth-anonymous=1 socket=${socket}`,
      `load-module module-null-sink sink_name=spk channels=2 rate=${RECORD_RATE_HZ} format=s16le sink_properties=device.description=virtual-speaker`,
      `load-module module-null-sink sink_name=mic channels=1 rate=${RECORD_RATE_HZ} format=s16le sink_properties=device.description=virtual-mic`,
      'set-default-sink spk',
      'set-default-source mic.monitor',
      '',
    ].join('\n'),
  );
  await writeFile(asound, '</usr/share/alsa/alsa.conf>\npcm.!default { type pulse }\nctl.!default { type pulse }\n');

  const env: Record<string, string> = {
    PULSE_SERVER: `unix:${socket}`,
    PULSE_SINK: 'spk',
    PULSE_SOURCE: 'mic.monitor',
    XDG_RUNTIME_DIR: dir,
    ALSA_CONFIG_PATH: asound,
  };
  const childEnv = { ...process.env, ...env };
  const daemonArgs = ['-n', '-F', script, '--daemonize=no', '--exit-idle-time=-1', '--use-pid-file=no', '--log-target=stderr', '--log-level=error'];
  // The daemon ends with this process even when it dies without its teardown (a crash, a SIGKILL from
  // tap's timeout): setpriv (util-linux) asks the kernel to send it SIGTERM when its parent goes, and
  // then execs it, so its PID is the one stopped on close(). Its parec readers end with it.
  const [cmd, args] = hasCommand('setpriv') ? ['setpriv', ['--pdeathsig', 'TERM', '--', 'pulseaudio', ...daemonArgs]] : ['pulseaudio', daemonArgs];
  const daemon = spawnTracked(cmd, args, { env: { ...childEnv, HOME: dir }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr?.on('data', (b: Buffer) => {
    log = (log + b.toString()).slice(-2000);
  });

  let closing: Promise<void> | undefined;
  const recorders = new Set<Recording>();
  const keepers: ChildProcess[] = [];
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await Promise.all([...recorders].map((r) => r.stop().catch(() => undefined)));
      await Promise.all(keepers.map((k) => stopChild(k, 1000)));
      await stopChild(daemon, 1000);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    await waitFor(
      async () => {
        if (daemon.exitCode !== null) throw new Error(`pulseaudio exited with ${daemon.exitCode}: ${log}`);
        return (await run('pactl', ['info'], { env: childEnv, timeoutMs: 2000 })).code === 0;
      },
      opts.startTimeoutMs ?? 10_000,
      100,
      'pulseaudio answering pactl',
    );
  } catch (err) {
    await close();
    throw err;
  }

  // A null sink renders in blocks as long as the smallest latency any client asked for, up to 2 s
  // when nobody asked (measured: a 10 ms pacat took 1.9 s to drain). A real sound card plays in
  // real time, so keep one 10 ms reader on each monitor for the daemon's whole life.
  for (const source of ['spk.monitor', 'mic.monitor']) {
    keepers.push(
      spawnTracked('parec', ['-d', source, '--raw', '--latency-msec=10', '--client-name=ls-test-clock'], {
        env: childEnv,
        stdio: ['ignore', 'ignore', 'ignore'],
      }),
    );
  }
  // The sinks started with 2 s blocks before any reader came; the first stream waits that block out
  // (measured 1.6 s for a 10 ms pacat). Wait it out here, once, instead of in every test.
  await Promise.all(
    ['spk', 'mic'].map((sink) =>
      run('pacat', ['--playback', '--raw', '-d', sink, '--latency-msec=10'], { env: childEnv, input: Buffer.alloc(1920), timeoutMs: 5000 }),
    ),
  );

  const startRecording = (): Recording => {
    const parec = spawnTracked('parec', ['-d', 'spk.monitor', '--raw', '--format=s16le', `--rate=${RECORD_RATE_HZ}`, '--channels=1', '--latency-msec=10'], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let zeroMs = Number.NaN;
    parec.stdout?.on('data', (b: Buffer) => {
      const at = nowMs();
      chunks.push(b);
      bytes += b.length;
      const candidate = at - ((bytes / 2) * 1000) / RECORD_RATE_HZ;
      if (!(candidate >= zeroMs)) zeroMs = candidate;
    });
    const ended = new Promise<void>((resolve) => {
      parec.once('close', () => resolve());
      parec.once('error', () => resolve());
    });
    let stopping: Promise<Buffer> | undefined;
    const recording: Recording = {
      stop: () =>
        (stopping ??= (async () => {
          await stopChild(parec, 1000);
          await ended;
          recorders.delete(recording);
          const all = Buffer.concat(chunks);
          return all.subarray(0, all.length - (all.length % 2));
        })()),
      sampleZeroAtMs: () => zeroMs,
    };
    recorders.add(recording);
    return recording;
  };

  const recordMonitor = async (seconds: number): Promise<Buffer> => {
    const rec = startRecording();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return rec.stop();
  };

  return { env, sinkName: 'spk', micSource: 'mic.monitor', dir, pid: daemon.pid, recordMonitor, startRecording, close };
}
