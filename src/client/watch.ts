/**
 * Composition root of `lanstream watch`: connection → demux → sinks (ffplay window, speaker or
 * pacat, or null sinks with --no-playback). The sinks are opened at the first WELCOME and stay
 * open across reconnects, so the window does not flicker away when the link drops. Also keeps the
 * viewer's stats (end-to-end latency from the server clock, fps, bitrate, drops) once a second.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { MediaFlag } from '../protocol/constants.js';
import type { AudioParams, StatusBody, VideoParams, WelcomeBody } from '../protocol/messages.js';
import { LanstreamError, isLanstreamError } from '../shared/errors.js';
import { ViewerConnection, type ConnectionState } from './connection.js';
import { OpusDecoder } from './decoders/opus-decoder.js';
import type { KnownHosts } from './known-hosts.js';
import type { AudioSink, VideoSink } from './sinks/sink.js';
import { AvSync, DEFAULT_AV_SYNC, type AvSyncOptions } from './av-sync.js';
import { ViewerStats, type StatsSnapshot } from './viewer-stats.js';

export interface WatchOptions {
  host: string;
  port: number;
  key: string;
  fingerprint?: string;
  insecure: boolean;
  knownHosts: KnownHosts | null;
  video: boolean;
  audio: boolean;
  reconnectTimeoutMs: number | null;
  retryFirst?: boolean;
  agent: string;
  logger: Logger;
  /** Opens the sinks (the CLI decides: window/speaker/pacat/null). Called once, at the first WELCOME. */
  openVideoSink: (params: VideoParams) => Promise<VideoSink>;
  openAudioSink: (params: AudioParams) => Promise<AudioSink>;
  /** Lip sync: hold video that would appear before its sound (default on). */
  avSync?: Partial<AvSyncOptions>;
  /** Also fed every frame and PCM packet with its server PTS (--record); started at the first WELCOME, closed last. */
  recorder?: RecorderHook;
}

/** What the viewer needs from a recorder (RecorderSink): one output for both media. */
export interface RecorderHook {
  /** Never rejects: a failure after or during start is reported through onError, once. */
  start(media: { video: VideoParams | null; audio: AudioParams | null }, onError: (err: LanstreamError) => void): void;
  pushFrame(jpeg: Buffer, ptsUs: number): void;
  pushPcm(pcm: Buffer, ptsUs: number): void;
  close(): Promise<void>;
}

export interface ViewerEvents {
  state: [ConnectionState, string | undefined];
  stats: [StatsSnapshot];
  status: [StatusBody];
  /** The first video frame / audio packet of this viewer arrived (once per kind), with its end-to-end latency (ms; clock from WELCOME). */
  'first-media': ['video' | 'audio', number];
  /** A frame arrived (snapshot, tests): JPEG bytes and server PTS. */
  frame: [Buffer, number];
  /** The viewer ended for good (null = closed on purpose). */
  closed: [LanstreamError | null];
  /** A sink failed; playback of that medium stops, the other continues. */
  'sink-error': ['video' | 'audio', Error];
  /** The user closed the video window. */
  'window-closed': [];
  /** A crashed sink was opened again (once per kind). */
  'sink-reopened': ['video' | 'audio'];
  /** The --record output failed (ffmpeg died, disk full); watching continues, the file is as far as it got. */
  'record-error': [LanstreamError];
}

export class Viewer extends EventEmitter<ViewerEvents> {
  readonly #o: WatchOptions;
  readonly #log: Logger;
  readonly #connection: ViewerConnection;
  readonly #stats: ViewerStats;
  #videoSink: VideoSink | null = null;
  #audioSink: AudioSink | null = null;
  /** Opus → PCM in front of the audio sink, when the server sends Opus. */
  #opus: OpusDecoder | null = null;
  readonly #sync: AvSync;
  #lastFrame: { data: Buffer; ptsUs: number } | null = null;
  /** H.264: the last IDR, the only unit that can be decoded again on its own (repaint()). */
  #lastKeyframe: { data: Buffer; ptsUs: number } | null = null;
  #sinksOpening: Promise<void> | null = null;
  #statsTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  /** Why the viewer ended (null: closed on purpose); start() rejects with it. */
  #endError: LanstreamError | null = null;
  #welcome: WelcomeBody | null = null;
  #recorderStarted = false;
  /** Kinds whose sink was already reopened once after a crash. */
  readonly #reopened = new Set<'video' | 'audio'>();
  /** Kinds whose first media arrived ('first-media' is emitted once each). */
  readonly #arrived = new Set<'video' | 'audio'>();

  constructor(options: WatchOptions) {
    super();
    this.#o = options;
    this.#log = options.logger.child({ component: 'watch' });
    this.#connection = new ViewerConnection({
      host: options.host,
      port: options.port,
      insecure: options.insecure,
      key: options.key,
      fingerprint: options.fingerprint,
      knownHosts: options.knownHosts,
      wantVideo: options.video,
      wantAudio: options.audio,
      agent: options.agent,
      logger: options.logger,
      reconnectTimeoutMs: options.reconnectTimeoutMs,
      retryFirst: options.retryFirst,
    });
    this.#stats = new ViewerStats(this.#connection.clock);
    this.#sync = new AvSync({ ...DEFAULT_AV_SYNC, ...options.avSync });
    const c = this.#connection;
    c.on('state', (state, detail) => {
      this.#stats.state = state;
      this.emit('state', state, detail);
    });
    c.on('welcome', (body) => {
      this.#welcome = body;
      this.#sinksOpening ??= this.#openSinks(body);
      if (this.#o.recorder && !this.#recorderStarted) {
        this.#recorderStarted = true;
        // Only what this viewer asked for: an input that never gets data would stall the recorder.
        const media = { video: this.#o.video ? body.video : null, audio: this.#o.audio ? body.audio : null };
        this.#o.recorder.start(media, (err) => {
          this.#log.error({ code: err.code }, err.message);
          this.emit('record-error', err);
        });
      }
    });
    c.on('video', (msg, arrivalUs) => {
      this.#stats.onVideo(msg.ptsUs, arrivalUs, msg.data.length + 20, (msg.flags & MediaFlag.DISCONTINUITY) !== 0);
      const hold = this.#sync.holdMs(this.#connection.clock.latencyUs(msg.ptsUs, arrivalUs) / 1000, this.#audioSink?.stats().bufferedMs ?? null);
      this.#stats.onVideoHold(hold);
      this.#lastFrame = { data: msg.data, ptsUs: msg.ptsUs };
      if ((msg.flags & MediaFlag.KEYFRAME) !== 0) this.#lastKeyframe = this.#lastFrame;
      this.#sync.schedule(hold, () => this.#videoSink?.pushFrame(msg.data, msg.ptsUs));
      this.#firstMedia('video', msg.ptsUs, arrivalUs);
      this.#o.recorder?.pushFrame(msg.data, msg.ptsUs);
      if (this.listenerCount('frame') > 0) this.emit('frame', msg.data, msg.ptsUs);
    });
    c.on('audio', (msg, arrivalUs) => {
      const discontinuity = (msg.flags & MediaFlag.DISCONTINUITY) !== 0;
      this.#stats.onAudio(msg.ptsUs, arrivalUs, msg.data.length + 20, discontinuity);
      this.#sync.onAudioArrival(this.#connection.clock.latencyUs(msg.ptsUs, arrivalUs) / 1000);
      this.#firstMedia('audio', msg.ptsUs, arrivalUs);
      if (this.#opus) {
        this.#opus.push(msg.data, msg.ptsUs, discontinuity);
        return;
      }
      this.#audioSink?.pushPcm(msg.data, msg.ptsUs, discontinuity);
      this.#o.recorder?.pushPcm(msg.data, msg.ptsUs);
    });
    c.on('status', (body) => {
      const line = `server: ${body.state}${body.message ? `: ${body.message}` : ''}`;
      if (body.state.endsWith('-live')) this.#log.debug({ state: body.state }, line);
      else this.#log.warn({ state: body.state }, line);
      this.emit('status', body);
    });
    c.on('closed', (err) => void this.#end(err));
  }

  #firstMedia(kind: 'video' | 'audio', ptsUs: number, arrivalUs: number): void {
    if (this.#arrived.has(kind)) return;
    this.#arrived.add(kind);
    this.emit('first-media', kind, Math.round(this.#connection.clock.latencyUs(ptsUs, arrivalUs) / 100) / 10);
  }

  get welcome(): WelcomeBody | null {
    return this.#welcome;
  }

  get connection(): ViewerConnection {
    return this.#connection;
  }

  /** Resolves when the first connection is live and the sinks are open. */
  async start(): Promise<void> {
    try {
      await this.#connection.start();
      await this.#sinksOpening;
    } catch (err) {
      // Why the viewer ended (its only window died while connecting), not the connection's "closed".
      throw this.#endError ?? err;
    }
    if (this.#closing) throw this.#endError ?? new LanstreamError('LS_ERR_CONNECTION_LOST', 'The viewer was closed before it was live');
    this.#statsTimer = setInterval(() => this.#tick(), 1000);
    this.#statsTimer.unref();
  }

  snapshot(): StatsSnapshot {
    return this.#stats.snapshot(this.#audioSink?.stats().bufferedMs ?? null, this.#audioSink, this.#videoSink);
  }

  setVolume(volume: number): void {
    this.#audioSink?.setVolume(volume);
  }

  reconnect(): void {
    this.#connection.reconnect();
  }

  /** Leave the server on purpose; the window stays open on the last picture. */
  disconnect(): void {
    this.#connection.disconnect();
  }

  connect(): void {
    this.#connection.connect();
  }

  /**
   * Show the last picture again (the overlay text changed while no frames arrive). H.264 repaints its
   * last IDR instead: a P-frame fed twice decodes against the wrong reference and smears the picture.
   */
  repaint(): void {
    const frame = this.#welcome?.video?.codec === 'h264' ? this.#lastKeyframe : this.#lastFrame;
    if (frame) this.#videoSink?.pushFrame(frame.data, frame.ptsUs);
  }

  close(): Promise<void> {
    return this.#end(null);
  }

  #end(err: LanstreamError | null): Promise<void> {
    if (this.#closing) return this.#closing;
    let done!: () => void;
    this.#closing = new Promise<void>((resolve) => (done = resolve));
    this.#endError = err;
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    void (async () => {
      await this.#connection.close();
      await this.#opus?.close();
      await this.#audioSink?.close().catch(() => undefined);
      await this.#videoSink?.close().catch(() => undefined);
      // Last: the recorder finishes its file (index, duration) before close() resolves.
      await this.#o.recorder?.close().catch(() => undefined);
      this.emit('closed', err);
      done();
    })();
    return this.#closing;
  }

  /** Both at once: neither the window's start nor the sound server's answers wait for the other. */
  async #openSinks(body: WelcomeBody): Promise<void> {
    const video = body.video;
    const audio = body.audio;
    await Promise.all([
      video &&
        this.#o.openVideoSink(video).then(
          async (sink) => {
            // Opened after #end(): nobody else will close it (a window, a pacat child, a timer).
            if (this.#closing) await sink.close().catch(() => undefined);
            else this.#videoSink = sink;
          },
          (err: unknown) => this.#sinkFailed('video', err),
        ),
      audio &&
        (async () => {
          if (audio.codec === 'opus' && !this.#closing) this.#startOpus(audio.channels);
          const sink = await this.#o.openAudioSink(audio);
          if (this.#closing) await sink.close().catch(() => undefined);
          else this.#audioSink = sink;
        })().catch((err: unknown) => this.#sinkFailed('audio', err)),
    ]);
  }

  #startOpus(channels: number): void {
    const opus = new OpusDecoder({
      channels,
      logger: this.#log,
      onPcm: (pcm, ptsUs, discontinuity) => {
        this.#audioSink?.pushPcm(pcm, ptsUs, discontinuity);
        this.#o.recorder?.pushPcm(pcm, ptsUs);
      },
      // #opus stays set: a failed decoder drops packets, where a null one would let Opus bytes reach the PCM sink.
      onError: (err) => {
        this.#sinkFailed('audio', err);
      },
    });
    // Loads the WASM decoder while the audio sink opens; packets before it is ready are dropped.
    void opus.start();
    this.#opus = opus;
  }

  #sinkFailed(kind: 'video' | 'audio', err: unknown): void {
    const error = isLanstreamError(err) ? err : new LanstreamError('LS_ERR_SINK_FAILED', `${kind} output failed: ${(err as Error).message}`, { cause: err });
    this.#log.error({ code: error.code }, error.message);
    this.emit('sink-error', kind, error);
  }

  /** For the CLI: the sinks report a user-closed window or a crash here. */
  onSinkEvent(kind: 'video' | 'audio', event: 'error' | 'user-close', err?: Error): void {
    if (event === 'user-close') {
      this.emit('window-closed');
      return;
    }
    if (this.#closing) return;
    if (kind === 'video') this.#videoSink = null;
    else this.#audioSink = null;
    const error = err ?? new Error('stopped');
    this.#sinkFailed(kind, error);
    void this.#reopenOrEnd(kind, error);
  }

  /**
   * A sink that crashed (ffplay killed, the sound server restarted) is opened once more; if that
   * fails too and nothing else is left to play or record, the viewer ends with LS_ERR_SINK_FAILED
   * (exit 1) — before this, a watch whose only window died ran on forever, showing nothing.
   */
  async #reopenOrEnd(kind: 'video' | 'audio', err: Error): Promise<void> {
    const params = kind === 'video' ? this.#welcome?.video : this.#welcome?.audio;
    if (params && !this.#reopened.has(kind)) {
      this.#reopened.add(kind);
      this.#log.warn(`the ${kind} output stopped (${err.message}); opening it again`);
      try {
        if (kind === 'video') {
          const sink = await this.#o.openVideoSink(params as VideoParams);
          if (this.#closing) return void (await sink.close().catch(() => undefined));
          this.#videoSink = sink;
          this.repaint();
        } else {
          const sink = await this.#o.openAudioSink(params as AudioParams);
          if (this.#closing) return void (await sink.close().catch(() => undefined));
          this.#audioSink = sink;
        }
        this.emit('sink-reopened', kind);
        return;
      } catch (reopenErr) {
        this.#sinkFailed(kind, reopenErr);
      }
    }
    if (this.#videoSink || this.#audioSink || this.#o.recorder || this.#closing) return;
    void this.#end(
      new LanstreamError('LS_ERR_SINK_FAILED', `The ${kind} output stopped and could not be reopened, nothing is left to play: ${err.message}`, { cause: err }),
    );
  }

  #tick(): void {
    const snap = this.snapshot();
    this.emit('stats', snap);
    if (this.#connection.state === 'live') this.#connection.sendStats(snap as unknown as Record<string, unknown>);
  }
}
