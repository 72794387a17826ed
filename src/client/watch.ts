/**
 * Composition root of `lanstream watch`: connection → demux → sinks (ffplay window, speaker or
 * pacat, or null sinks with --no-playback). The sinks are opened at the first WELCOME and stay
 * open across reconnects, so the window does not flicker away when the link drops; only a WELCOME
 * with another format (a server restarted with other codecs) closes and reopens them. Also keeps the
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

/** A reopened output is reported back ('sink-reopened') after running this long without failing. */
export const REOPEN_SETTLE_MS = 1_000;

/** The same STATUS line from the server is a warning at most this often (a failing camera is retried every 10 s). */
const STATUS_REPEAT_WARN_MS = 60_000;

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
  /** Opens the sinks (the CLI decides: window/speaker/pacat/null): at the first WELCOME, after a crash, and when the format changes. */
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
  /** The first opening of the sinks (start() waits for it). */
  #sinksOpening: Promise<void> | null = null;
  /** What the current (or still opening) sinks were opened for; another WELCOME is compared with it. */
  #videoParams: VideoParams | null = null;
  #audioParams: AudioParams | null = null;
  /** Bumped at every (re)opening of a kind: an opening that finishes after a newer one began closes its sink. */
  #videoGen = 0;
  #audioGen = 0;
  #statsTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  /** Why the viewer ended (null: closed on purpose); start() rejects with it. */
  #endError: LanstreamError | null = null;
  #welcome: WelcomeBody | null = null;
  #recorderStarted = false;
  /** STATUS lines warned about, and when (Date.now()). */
  #statusWarnedAt = new Map<string, number>();
  /** Kinds whose sink was already reopened once after a crash. */
  readonly #reopened = new Set<'video' | 'audio'>();
  /** Reopened sinks not yet reported back ('sink-reopened' waits REOPEN_SETTLE_MS). */
  readonly #settling = new Set<NodeJS.Timeout>();
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
      // Said at once: a viewer that waits for media that will never come looks live to a script
      // (`--duration` then exited 0 with nothing received, `--snapshot` waited its full 15 s).
      if (!body.video && !body.audio) return void this.#end(nothingToWatch(this.#o.video, this.#o.audio));
      const before = this.#welcome;
      this.#welcome = body;
      const opening = this.#openSinks(body);
      this.#sinksOpening ??= opening;
      if (this.#recorderStarted && before) this.#checkRecorderFormat(before, body);
      if (this.#o.recorder && !this.#recorderStarted) {
        this.#recorderStarted = true;
        // Only what this viewer asked for: an input that never gets data would stall the recorder.
        const media = { video: this.#o.video ? body.video : null, audio: this.#o.audio ? body.audio : null };
        this.#o.recorder.start(media, (err) => {
          // The CLI (watch and serve --record) ends with this error as its last line; said once.
          this.#log.debug({ code: err.code }, err.message);
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
      if (body.state.endsWith('-live') || this.#statusWarnedRecently(line)) this.#log.debug({ state: body.state }, line);
      else this.#log.warn({ state: body.state }, line);
      this.emit('status', body);
    });
    c.on('closed', (err) => void this.#end(err));
  }

  /**
   * A camera that stays unplugged is reported again at each of the server's retries (10 s) and after
   * each reconnect: the same line is a warning once a minute, in between only a debug line.
   */
  #statusWarnedRecently(line: string): boolean {
    const now = Date.now();
    const at = this.#statusWarnedAt.get(line);
    if (at !== undefined && now - at < STATUS_REPEAT_WARN_MS) return true;
    if (this.#statusWarnedAt.size >= 32) for (const [l, t] of this.#statusWarnedAt) if (now - t >= STATUS_REPEAT_WARN_MS) this.#statusWarnedAt.delete(l);
    if (this.#statusWarnedAt.size < 32) this.#statusWarnedAt.set(line, now);
    return false;
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
    for (const timer of this.#settling) clearTimeout(timer);
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

  /**
   * Opens what this WELCOME needs and is not open yet: at the first WELCOME everything, later only a
   * kind whose format changed (a server restarted with --audio-codec opus, or H.264 instead of
   * MJPEG) — fed on, the old sink would play the new bytes as noise or show nothing. Both kinds at
   * once: neither the window's start nor the sound server's answers wait for the other.
   */
  async #openSinks(body: WelcomeBody): Promise<void> {
    const video = body.video;
    const audio = body.audio;
    await Promise.all([
      video && !sameVideo(this.#videoParams, video) && this.#openVideo(video),
      audio && !sameAudio(this.#audioParams, audio) && this.#openAudio(audio),
    ]);
  }

  async #openVideo(params: VideoParams): Promise<void> {
    const gen = ++this.#videoGen;
    const old = this.#videoSink;
    // Synchronous, before the next frame: none of the new codec may reach the old window.
    this.#videoSink = null;
    if (this.#videoParams) this.#log.warn(`the server now sends ${params.codec} video (was ${this.#videoParams.codec}): opening the window again`);
    this.#videoParams = params;
    this.#lastFrame = null;
    this.#lastKeyframe = null;
    try {
      await old?.close().catch(() => undefined);
      const sink = await this.#o.openVideoSink(params);
      // Opened after #end() or superseded: nobody else will close it (a window, a timer).
      if (this.#closing || gen !== this.#videoGen) await sink.close().catch(() => undefined);
      else this.#videoSink = sink;
    } catch (err) {
      if (gen === this.#videoGen) this.#sinkFailed('video', err);
    }
  }

  async #openAudio(params: AudioParams): Promise<void> {
    const gen = ++this.#audioGen;
    const oldSink = this.#audioSink;
    const oldOpus = this.#opus;
    // Synchronous, before the next packet: Opus bytes must never reach a PCM sink, nor PCM of
    // another rate or channel count.
    this.#audioSink = null;
    this.#opus = null;
    const was = this.#audioParams;
    if (was) this.#log.warn(`the server now sends ${describeAudio(params)} (was ${describeAudio(was)}): opening the audio output again`);
    this.#audioParams = params;
    try {
      if (params.codec === 'opus' && !this.#closing) this.#startOpus(params.channels, gen);
      await oldOpus?.close();
      await oldSink?.close().catch(() => undefined);
      const sink = await this.#o.openAudioSink(params);
      // Opened after #end() or superseded: nobody else will close it (a pacat child, a timer).
      if (this.#closing || gen !== this.#audioGen) await sink.close().catch(() => undefined);
      else this.#audioSink = sink;
    } catch (err) {
      if (gen === this.#audioGen) this.#sinkFailed('audio', err);
    }
  }

  /** --record writes one format into one file: a server that changes it mid-file ends the recording, said plainly. */
  #checkRecorderFormat(before: WelcomeBody, now: WelcomeBody): void {
    const videoChanged = this.#o.video && before.video && now.video && !sameRecordedVideo(before.video, now.video);
    const audioChanged =
      this.#o.audio && before.audio && now.audio && (before.audio.sampleRateHz !== now.audio.sampleRateHz || before.audio.channels !== now.audio.channels);
    if (!videoChanged && !audioChanged) return;
    const what = videoChanged
      ? `${describeVideo(now.video!)} (was ${describeVideo(before.video!)})`
      : `${describeAudio(now.audio!)} (was ${describeAudio(before.audio!)})`;
    const err = new LanstreamError(
      'LS_ERR_RECORD_FAILED',
      `The server now sends ${what}; --record cannot change format within one file: the file ends here, start watch --record again for the new format`,
    );
    this.#log.debug({ code: err.code }, err.message); // reported by the record-error listener, as above
    // Closed now, so not one packet of the new format reaches the file (a closing recorder drops pushes).
    void this.#o.recorder?.close().catch(() => undefined);
    this.emit('record-error', err);
  }

  #startOpus(channels: number, gen: number): void {
    const opus = new OpusDecoder({
      channels,
      logger: this.#log,
      onPcm: (pcm, ptsUs, discontinuity) => {
        if (gen !== this.#audioGen) return; // a decoder being replaced (the format changed)
        this.#audioSink?.pushPcm(pcm, ptsUs, discontinuity);
        this.#o.recorder?.pushPcm(pcm, ptsUs);
      },
      // #opus stays set: a failed decoder drops packets, where a null one would let Opus bytes reach the PCM sink.
      onError: (err) => {
        if (gen === this.#audioGen) this.#sinkFailed('audio', err);
      },
    });
    // Loads the WASM decoder while the audio sink opens; packets before it is ready are dropped.
    void opus.start();
    this.#opus = opus;
  }

  #sinkFailed(kind: 'video' | 'audio', err: unknown): void {
    const error = isLanstreamError(err) ? err : new LanstreamError('LS_ERR_SINK_FAILED', `${kind} output failed: ${(err as Error).message}`, { cause: err });
    // Logged: the viewer goes on without this output, so the log is where a person sees it.
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
    const failed = kind === 'video' ? this.#videoSink : this.#audioSink;
    if (kind === 'video') this.#videoSink = null;
    else this.#audioSink = null;
    const error = err ?? new Error('stopped');
    // Released before its replacement opens: a sink that failed may still hold its device (the
    // speaker package keeps ALSA open after a write error), and an exclusive device then refused the
    // reopen with EBUSY. destroy() is immediate and idempotent for every sink.
    try {
      failed?.destroy(error);
    } catch (destroyErr) {
      this.#log.debug({ err: (destroyErr as Error).message }, `releasing the failed ${kind} output`);
    }
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
        let sink: VideoSink | AudioSink;
        if (kind === 'video') {
          const gen = this.#videoGen;
          sink = await this.#o.openVideoSink(params as VideoParams);
          if (this.#closing || gen !== this.#videoGen) return void (await sink.close().catch(() => undefined));
          this.#videoSink = sink;
          this.repaint();
        } else {
          const gen = this.#audioGen;
          sink = await this.#o.openAudioSink(params as AudioParams);
          if (this.#closing || gen !== this.#audioGen) return void (await sink.close().catch(() => undefined));
          this.#audioSink = sink;
        }
        this.#reportBackWhenSettled(kind, sink);
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

  /**
   * 'sink-reopened' once the reopened output has run REOPEN_SETTLE_MS without failing. Its open call
   * returning is not enough: an output can open and fail a few ms later (a sound server that accepts
   * the stream and then drops it), and a script was told it was back just before the second error.
   */
  #reportBackWhenSettled(kind: 'video' | 'audio', sink: VideoSink | AudioSink): void {
    const timer = setTimeout(() => {
      this.#settling.delete(timer);
      const current = kind === 'video' ? this.#videoSink : this.#audioSink;
      if (!this.#closing && current === sink) this.emit('sink-reopened', kind);
    }, REOPEN_SETTLE_MS);
    this.#settling.add(timer);
  }

  #tick(): void {
    const snap = this.snapshot();
    this.emit('stats', snap);
    if (this.#connection.state === 'live') this.#connection.sendStats(snap as unknown as Record<string, unknown>);
  }
}

/** The window (ffplay or GStreamer) and the null sink depend only on the codec; ffplay follows a size change within the stream. */
function sameVideo(open: VideoParams | null, next: VideoParams): boolean {
  return open !== null && open.codec === next.codec;
}

/** Every audio output is opened for one rate and channel count, and Opus needs its decoder in front (the packet length does not matter). */
function sameAudio(open: AudioParams | null, next: AudioParams): boolean {
  return open !== null && open.codec === next.codec && open.sampleRateHz === next.sampleRateHz && open.channels === next.channels;
}

/** The server's WELCOME offers none of the media this viewer asked for. */
function nothingToWatch(askedVideo: boolean, askedAudio: boolean): LanstreamError {
  const asked = askedVideo && askedAudio ? 'video or audio' : askedVideo ? 'video' : 'audio';
  const hint =
    askedVideo && askedAudio
      ? 'start serve with a camera or a microphone'
      : askedVideo
        ? 'drop --no-audio to hear its sound (--snapshot needs video), or start serve with video'
        : 'drop --no-video to see its picture, or start serve with audio';
  return new LanstreamError('LS_ERR_NOTHING_TO_WATCH', `The server sends no ${asked}, and that is all this viewer asked for: ${hint}`);
}

/**
 * What one --record file is made for: its codec, its picture size (Matroska states it once, in the
 * track header) and its frame rate (the recorder's time grid). A server restarted with another
 * --size or --fps went on into the same file: frames of two sizes under one header, and timed on
 * the old grid.
 */
function sameRecordedVideo(a: VideoParams, b: VideoParams): boolean {
  return a.codec === b.codec && a.width === b.width && a.height === b.height && a.fps === b.fps;
}

function describeVideo(v: VideoParams): string {
  return `${v.codec} video ${v.width}x${v.height} at ${v.fps} fps`;
}

function describeAudio(a: AudioParams): string {
  return `${a.codec} ${a.sampleRateHz} Hz ${a.channels === 1 ? 'mono' : `${a.channels} channels`}`;
}
