/**
 * Audio sink speaking PulseAudio's native protocol (pulseaudio.js: ISC, pure TypeScript, no addon):
 * one playback stream asked for PULSE_BUFFER_MS in all, fed on the server's own requests from the
 * jitter buffer. Like the audio-io output the device pulls exactly what it needs,
 * so the jitter buffer knows its fill level and corrects drift; unlike it, there is no ALSA pulse
 * plugin in between, which kept ~20 ms of this stream queued in PulseAudio at each refill.
 * Linux (and any other system running PulseAudio or PipeWire-pulse) only.
 */
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AudioParams } from '../../protocol/messages.js';
import { PullPlayout, logGap } from './pull-playout.js';
import type { AudioSink, SinkEvents } from './sink.js';

/**
 * The whole latency asked of the server for this stream (its target length with ADJUST_LATENCY): the
 * server gives the device (tlength − 2 × minreq) / 2 = 5 ms of it and keeps the rest queued. With
 * 10 ms it gave the device nothing: the rig's PulseAudio then used 25 % more of a core (35 vs 10 %,
 * audio only) and first pictures came later; 15 / 2.5 and 20 / 5 (pacat's split at
 * --latency-msec=20) cost what audio-io does. `--audio-buffer-ms` is this plus the jitter buffer.
 */
export const PULSE_BUFFER_MS = 15;
/** How much the server asks for at a time. */
export const PULSE_REQUEST_MS = 2.5;
/** How long the server may take to accept the stream. */
export const OPEN_TIMEOUT_MS = 3_000;
/** How long the server may take to close the connection when we leave. */
export const CLOSE_TIMEOUT_MS = 1_000;

export interface PulseSinkOptions {
  /** Jitter-buffer target (ms), on top of the server's buffer. */
  targetMs: number;
  logger: Logger;
  volume?: number;
  events?: SinkEvents;
  /** Env to read PULSE_SERVER / PULSE_SINK / PULSE_COOKIE / XDG_RUNTIME_DIR from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** The unix socket PulseAudio clients would use, from PULSE_SERVER or the runtime dir (null: none we can use). */
export function pulseSocketPath(env: NodeJS.ProcessEnv, uid: number | null = process.getuid?.() ?? null): string | null {
  const server = env.PULSE_SERVER?.trim();
  if (server) {
    // A list of servers, tried in order; only local sockets are for us.
    for (const entry of server.split(/\s+/)) {
      const s = entry.replace(/^\{[^}]*\}/, '');
      if (s.startsWith('unix:')) return s.slice(5);
      if (s.startsWith('/')) return s;
    }
    return null;
  }
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'pulse', 'native');
  return uid === null ? null : `/run/user/${uid}/pulse/native`;
}

interface PulseModule {
  PulseAudio: new (props?: string, cookie?: Buffer, sockPath?: string) => PaClient;
  PA_SAMPLE_FORMAT: Record<string, number>;
}
let pulseModule: Promise<PulseModule> | null = null;
/**
 * The library, loaded once. watch asks for it just before it dials (preloadAudioOutput), not when
 * the first frames are already arriving; the require() below runs synchronously there and holds this
 * thread for 15–21 ms. It is CommonJS: `import()` of it took 31–54 ms, because Node first scans a
 * CommonJS package's source for its export names when an ES module imports it (5 runs each), and that
 * work landed in the middle of the TLS handshake.
 */
export function loadPulseModule(): Promise<PulseModule> {
  pulseModule ??= new Promise<PulseModule>((resolve) => resolve(createRequire(import.meta.url)('pulseaudio.js') as PulseModule));
  return pulseModule;
}

interface PaStream {
  requestedBytes: number;
  left: number | null;
  _onEvent(event: { type: string }): void;
  _enqueued(): number;
  write(chunk: Buffer): boolean;
  on(event: 'error', cb: (err: Error) => void): void;
  on(event: 'underflow', cb: () => void): void;
}
interface PaClient {
  connect(): Promise<unknown>;
  createPlaybackStream(opts: Record<string, unknown>): Promise<PaStream>;
  disconnect(): Promise<unknown>;
  sock?: { destroy(): void };
  on(event: 'error', cb: (err?: Error) => void): void;
}

export class PulseSink implements AudioSink {
  readonly name = 'pulse';
  readonly #o: PulseSinkOptions;
  readonly #log: Logger;
  readonly #playout: PullPlayout;
  #client: PaClient | null = null;
  #stream: PaStream | null = null;
  #frameBytes = 2;
  #closing: Promise<void> | null = null;
  /** Times the server ran dry because an answer came late (this thread was busy): heard as a gap. */
  #serverUnderruns = 0;

  constructor(o: PulseSinkOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'pulse-sink' });
    this.#playout = new PullPlayout(o.volume, (gap) => logGap(this.#log, gap));
  }

  async start(params: AudioParams): Promise<void> {
    const env = this.#o.env ?? process.env;
    const sock = pulseSocketPath(env);
    if (!sock)
      throw new LanstreamError('LS_ERR_SINK_FAILED', 'No local PulseAudio socket (PULSE_SERVER names no unix: socket); use --audio-output audio-io|pacat');
    let mod: PulseModule;
    try {
      mod = await loadPulseModule();
    } catch (err) {
      throw new LanstreamError(
        'LS_ERR_SINK_FAILED',
        `The pulse output is not available (${(err as Error).message}); reinstall with npm install, or use --audio-output audio-io|pacat`,
        { cause: err },
      );
    }
    const cookie = await readCookie(env);
    const client = new mod.PulseAudio('lanstream', cookie, sock);
    this.#client = client;
    // The client emits 'error' when the connection ends unasked: before the stream exists the failing
    // call rejects with the cause, after it the output has died.
    client.on('error', (err) => {
      if (this.#stream) this.#fail(err ?? new Error('PulseAudio closed the connection'));
    });
    const bytesPerMs = (params.sampleRateHz * 2 * params.channels) / 1000;
    this.#frameBytes = 2 * params.channels;
    const align = (ms: number) => Math.round((ms * bytesPerMs) / this.#frameBytes) * this.#frameBytes;
    const opening = (async () => {
      await client.connect();
      return client.createPlaybackStream({
        sampleSpec: { format: mod.PA_SAMPLE_FORMAT.S16LE, rate: params.sampleRateHz, channels: params.channels },
        name: env.PULSE_SINK || null,
        targetLength: align(PULSE_BUFFER_MS),
        // Pre-buffer one request: after an underflow (this thread busy) the server pauses until it
        // has that much again. With none (prebuf 0) it was meant to play on and drop the late bytes,
        // but after a 60 ms stall of this thread nothing more was heard at all (3 of 3 runs of the
        // busy-thread test in test/integration/pulse-sink.test.ts; one silent rig run, one with 15 of
        // 37 clicks lost). The jitter buffer drops what came late instead.
        preBuffering: align(PULSE_REQUEST_MS),
        minimumRequest: align(PULSE_REQUEST_MS),
        adjustLatency: true,
        properties: { media: { name: 'lanstream audio', role: 'video' } },
      });
    })();
    let timer: NodeJS.Timeout | undefined;
    let stream: PaStream;
    try {
      // A server that accepts the connection but never answers must not leave watch without sound
      // and without an error: after OPEN_TIMEOUT_MS this output fails and `auto` tries the next.
      stream = await Promise.race([
        opening,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      opening.catch(() => undefined);
      this.#abandon(client);
      const msg = (err as Error).message;
      const hint = /ENOENT|ECONNREFUSED|no answer/.test(msg) ? ' (is PulseAudio or PipeWire-pulse running?)' : '';
      throw new LanstreamError('LS_ERR_SINK_FAILED', `Cannot open the PulseAudio output at ${sock}: ${msg}${hint}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    // Requests are answered through the library's stream internals (the version is pinned): if they
    // ever change, fail here, where `auto` goes on to the next output, not silently later.
    if (typeof stream._onEvent !== 'function' || typeof stream.requestedBytes !== 'number' || typeof stream._enqueued !== 'function') {
      this.#abandon(client);
      throw new LanstreamError(
        'LS_ERR_SINK_FAILED',
        'This pulseaudio.js version is not the one lanstream was built with; reinstall with npm ci, or use --audio-output audio-io|pacat',
      );
    }
    // The library counts bytes against maximumLength (2^32 - 1 when unset): hours of audio, not forever.
    stream.left = null;
    this.#stream = stream;
    this.#playout.open(params, this.#o.targetMs);
    // The server says how many bytes it wants; answer each request from the jitter buffer.
    const onEvent = stream._onEvent.bind(stream);
    stream._onEvent = (event) => {
      onEvent(event);
      if (event.type === 'request') this.#fill();
    };
    stream.on('underflow', () => {
      this.#serverUnderruns++;
      // Not the jitter buffer's gap (logGap): the server's own queue ran out before an answer came.
      this.#log.debug({ serverUnderruns: this.#serverUnderruns }, 'PulseAudio ran dry: an answer came late (heard as a gap)');
    });
    stream.on('error', (err) => this.#fail(err));
    this.#fill();
    this.#log.debug({ params, sock, targetMs: this.#o.targetMs, serverBufferMs: PULSE_BUFFER_MS }, 'pulse output open');
  }

  /** A start() that failed: drop the connection at once (a polite disconnect would wait on a server that may not answer). */
  #abandon(client: PaClient): void {
    client.sock?.destroy();
    this.#client = null;
  }

  #fill(): void {
    const stream = this.#stream;
    if (!stream || this.#closing) return;
    const want = stream.requestedBytes - stream._enqueued();
    const bytes = want - (want % this.#frameBytes);
    if (bytes <= 0) return;
    const out = new Int16Array(bytes / 2);
    this.#playout.pull(out);
    stream.write(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }

  #fail(err: Error): void {
    if (this.#closing) return;
    this.#closing = this.#shutdown();
    this.#o.events?.onError?.(new LanstreamError('LS_ERR_SINK_FAILED', `Sound output (PulseAudio) stopped: ${err.message}`, { cause: err }));
  }

  pushPcm(pcm: Buffer, _ptsUs: number, discontinuity: boolean): void {
    if (!this.#closing) this.#playout.push(pcm, discontinuity);
  }

  setVolume(volume: number): void {
    this.#playout.setVolume(volume);
  }

  stats(): { bufferedMs: number; underruns: number; droppedMs: number } {
    return this.#playout.stats(PULSE_BUFFER_MS, this.#serverUnderruns);
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  destroy(err?: Error): void {
    if (err) this.#log.debug({ err: err.message }, 'pulse sink destroyed');
    void this.close();
  }

  async #shutdown(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    this.#stream = null;
    if (!client) return;
    // disconnect() half-closes and waits for the server's close, with no limit: a frozen server
    // would hold watch's exit for good (its SIGTERM handler already spent). Bounded, then cut.
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        client.sock?.destroy();
        resolve();
      }, CLOSE_TIMEOUT_MS);
    });
    await Promise.race([client.disconnect().catch(() => undefined), cut]);
    clearTimeout(timer);
  }
}

async function readCookie(env: NodeJS.ProcessEnv): Promise<Buffer | undefined> {
  for (const file of [env.PULSE_COOKIE, join(env.HOME ?? homedir(), '.config', 'pulse', 'cookie'), join(env.HOME ?? homedir(), '.pulse-cookie')]) {
    if (!file) continue;
    try {
      return await readFile(file);
    } catch {
      /* next */
    }
  }
  return undefined;
}
