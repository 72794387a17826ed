/**
 * Opus → PCM on the viewer, between the connection and the audio sink (speaker/pacat/null), so the
 * sinks and their jitter buffer stay PCM-only. Decoding runs in an ffmpeg child (no native addon or
 * WebAssembly decoder is installed; ffmpeg is already needed for the window): packets go in as Ogg
 * pages (OggOpusWriter), s16le comes out, and each output byte is matched to the packet it came from
 * by sample count (pre-skip 0, so one packet = exactly its TOC duration of samples), which keeps the
 * server PTS and DISCONTINUITY flags on the PCM handed to the sink.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { OggOpusWriter } from './ogg-writer.js';

export interface OpusDecoderOptions {
  ffmpegPath: string;
  channels: number;
  logger: Logger;
  onPcm: (pcm: Buffer, ptsUs: number, discontinuity: boolean) => void;
  /** ffmpeg died on its own (called once). */
  onError?: (err: Error) => void;
}

/** Arguments of the decoding child (exported for tests and --verbose logs). */
export function opusDecoderArgs(channels: number): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-fflags', 'nobuffer', '-probesize', '32', '-analyzeduration', '0',
    '-f', 'ogg', '-i', 'pipe:0',
    '-c:a', 'pcm_s16le', '-ac', String(channels), '-ar', '48000', '-f', 's16le', '-flush_packets', '1', 'pipe:1',
  ];
}

/** Samples in one Opus packet (RFC 6716 §3.1 TOC byte), at 48 kHz. */
export function opusSamples(packet: Buffer): number {
  if (packet.length === 0) return 0;
  const config = packet[0]! >> 3;
  const frame = config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? ((config & 1) === 0 ? 480 : 960) : [120, 240, 480, 960][config & 3]!;
  const code = packet[0]! & 3;
  return frame * (code === 0 ? 1 : code < 3 ? 2 : packet.length > 1 ? packet[1]! & 0x3f : 0);
}

export class OpusDecoder {
  readonly #o: OpusDecoderOptions;
  readonly #writer = new OggOpusWriter();
  readonly #frameBytes: number;
  #child: ChildProcess | null = null;
  /** Packets written and not yet fully decoded: their PTS and how many PCM bytes are still due. */
  #inFlight: Array<{ ptsUs: number; bytesLeft: number; discontinuity: boolean }> = [];
  #stderrTail = '';
  #closing: Promise<void> | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(opts: OpusDecoderOptions) {
    this.#o = opts;
    this.#frameBytes = 2 * opts.channels;
  }

  start(): void {
    const child = spawn(this.#o.ffmpegPath, opusDecoderArgs(this.#o.channels), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdin!.on('error', () => undefined); // exit reported below
    child.stderr!.on('data', (b: Buffer) => {
      this.#stderrTail = (this.#stderrTail + b.toString()).slice(-1000);
    });
    child.stdout!.on('data', (pcm: Buffer) => this.#onPcm(pcm));
    this.#exited = new Promise((resolve) => child.once('close', (code, signal) => {
      if (this.#closing === null) {
        const tail = this.#stderrTail.trim().split('\n').slice(-2).join(' | ');
        this.#o.onError?.(new LanstreamError('LS_ERR_SINK_FAILED', `The Opus decoder (ffmpeg) stopped (${signal ?? `exit code ${code}`})${tail ? `: ${tail}` : ''}`));
      }
      resolve();
    }));
    child.once('error', () => undefined); // ENOENT etc.: 'close' follows and reports it
    child.stdin!.write(this.#writer.headers(this.#o.channels));
  }

  /** One received Opus packet. Never throws; a dead decoder ignores input. */
  push(packet: Buffer, ptsUs: number, discontinuity: boolean): void {
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed || this.#closing) return;
    const samples = opusSamples(packet);
    if (samples === 0) return;
    this.#inFlight.push({ ptsUs, bytesLeft: samples * this.#frameBytes, discontinuity });
    stdin.write(this.#writer.packet(packet, samples));
  }

  /** Packets written but not yet decoded (a measure of the decoder's own delay). */
  get pendingPackets(): number {
    return this.#inFlight.length;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const child = this.#child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await this.#exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }

  destroy(): void {
    this.#closing ??= this.#exited;
    this.#child?.kill('SIGKILL');
  }

  #onPcm(pcm: Buffer): void {
    let at = 0;
    while (at < pcm.length) {
      const head = this.#inFlight[0];
      if (head === undefined) {
        // More samples than packets account for (should not happen with pre-skip 0): pass them on.
        this.#o.onPcm(pcm.subarray(at), 0, true);
        return;
      }
      const n = Math.min(head.bytesLeft, pcm.length - at);
      this.#o.onPcm(pcm.subarray(at, at + n), head.ptsUs, head.discontinuity);
      head.discontinuity = false;
      head.bytesLeft -= n;
      at += n;
      if (head.bytesLeft === 0) this.#inFlight.shift();
    }
  }
}
