/**
 * Audio sink fallback: PulseAudio's own `pacat` as a child process, for when the optional `speaker`
 * addon cannot load. pacat asks the server for exactly `--latency-msec` of buffering (measured
 * 16–31 ms mouth to ear in the bench), so PCM is written on arrival. The only thing we add is a
 * bound: if audio arrives in a burst (after a network stall) and the estimated queue goes past
 * target + margin, the packet is dropped instead of becoming permanent delay. Volume is applied here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { nowMs } from '../../shared/clock.js';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AudioParams } from '../../protocol/messages.js';
import { PcmGain } from './pcm-gain.js';
import type { AudioSink, SinkEvents } from './sink.js';
import { WallClockPacer } from './speaker-sink.js';

export const DEFAULT_PACAT_TARGET_MS = 30;

export interface PacatSinkOptions {
  targetMs?: number;
  logger: Logger;
  volume?: number;
  events?: SinkEvents;
  pacatPath?: string;
  /** Env for pacat (PULSE_SERVER, PULSE_SINK…); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export class PacatSink implements AudioSink {
  readonly name = 'pacat';
  private readonly opts: PacatSinkOptions;
  private readonly log: Logger;
  private readonly targetMs: number;
  private readonly pacer = new WallClockPacer();
  private child: ChildProcess | null = null;
  private gain: PcmGain | null = null;
  private volume: number;
  private bytesPerMs = 0;
  private droppedMs = 0;
  private stderrTail = '';
  private exited: Promise<void> = Promise.resolve();
  private closing: Promise<void> | null = null;
  private ended = false;

  constructor(opts: PacatSinkOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'pacat-sink' });
    this.targetMs = Math.max(5, opts.targetMs ?? DEFAULT_PACAT_TARGET_MS);
    this.volume = opts.volume ?? 100;
  }

  get pid(): number | undefined {
    return this.ended ? undefined : this.child?.pid;
  }

  start(params: AudioParams): Promise<void> {
    if (this.child) return Promise.reject(new Error('PacatSink.start() called twice'));
    this.bytesPerMs = (params.sampleRateHz * 2 * params.channels) / 1000;
    this.gain = new PcmGain({ sampleRateHz: params.sampleRateHz, channels: params.channels, volume: this.volume });
    const args = [
      '--playback',
      '--raw',
      '--format=s16le',
      `--rate=${params.sampleRateHz}`,
      `--channels=${params.channels}`,
      `--latency-msec=${Math.round(this.targetMs)}`,
      '--client-name=lanstream',
      '--stream-name=lanstream audio',
    ];
    const child = spawn(this.opts.pacatPath ?? 'pacat', args, { env: this.opts.env ?? process.env, stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString()).slice(-1000);
    });
    child.stdin?.on('error', (err) => this.log.debug({ err }, 'pacat stdin error'));
    let spawnFailed = false;
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.ended = true;
        if (!spawnFailed && !this.closing) this.reportExit(code, signal);
        resolve();
      }),
    );
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err: NodeJS.ErrnoException) => {
        spawnFailed = true;
        const missing = err.code === 'ENOENT' || err.code === 'EACCES';
        reject(
          new LanstreamError(
            'LS_ERR_SINK_FAILED',
            missing ? 'No sound: pacat is missing; run `sudo apt-get install pulseaudio-utils`' : `Cannot start pacat: ${err.message}`,
            { cause: err },
          ),
        );
      });
    });
  }

  pushPcm(pcm: Buffer, _ptsUs: number, _discontinuity: boolean): void {
    const stdin = this.child?.stdin;
    if (!stdin || this.ended || this.closing || stdin.destroyed || pcm.length === 0) return;
    const now = nowMs();
    const ms = pcm.length / this.bytesPerMs;
    const marginMs = Math.max(20, this.targetMs);
    if (this.pacer.queuedMs(now) + ms > this.targetMs + marginMs || stdin.writableNeedDrain) {
      this.droppedMs += ms;
      return;
    }
    this.pacer.wrote(ms, now);
    stdin.write(this.gain ? this.gain.apply(pcm) : pcm);
  }

  setVolume(volume: number): void {
    if (!Number.isFinite(volume)) return;
    this.volume = volume;
    this.gain?.setVolume(volume);
  }

  stats(): { bufferedMs: number; underruns: number; droppedMs: number } {
    return { bufferedMs: this.pacer.queuedMs(nowMs()), underruns: this.pacer.underruns, droppedMs: this.droppedMs };
  }

  /** Lets pacat play what it holds (≤ target + margin), then SIGTERM, then SIGKILL. */
  close(): Promise<void> {
    this.closing ??= this.stop(false);
    return this.closing;
  }

  destroy(err?: Error): void {
    if (err) this.log.debug({ err }, 'pacat sink destroyed');
    this.closing ??= this.stop(true);
  }

  private async stop(immediate: boolean): Promise<void> {
    const child = this.child;
    if (!child || this.ended) return;
    if (immediate) {
      child.kill('SIGKILL');
      return this.exited;
    }
    child.stdin?.end();
    const graceMs = Math.min(1000, this.pacer.queuedMs(nowMs()) + 300);
    if (await settlesWithin(this.exited, graceMs)) return;
    child.kill('SIGTERM');
    if (await settlesWithin(this.exited, 1000)) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  private reportExit(code: number | null, signal: NodeJS.Signals | null): void {
    const tail = this.stderrTail.trim().split(/\r?\n/).slice(-2).join(' | ');
    const hint = /Connection (failure|refused)/i.test(tail) ? ' (is PulseAudio or PipeWire-pulse running?)' : '';
    this.opts.events?.onError?.(
      new LanstreamError('LS_ERR_SINK_FAILED', `Sound output (pacat) stopped (${signal ?? `exit code ${code}`})${tail ? `: ${tail}` : ''}${hint}`, {
        details: { code, signal },
      }),
    );
  }
}

function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
