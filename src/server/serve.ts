/**
 * Composition root of `lanstream serve`: identity (certificate + access key), capture (one ffmpeg
 * per medium, started only while a viewer is connected), hub, TLS listener and sessions. It owns
 * the shutdown order: stop accepting, say goodbye to viewers, drain briefly, stop ffmpeg.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { availableParallelism } from 'node:os';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { ByeReason } from '../protocol/constants.js';
import type { AudioParams, StatusBody, VideoParams } from '../protocol/messages.js';
import { LanstreamError, isLanstreamError } from '../shared/errors.js';
import { connectHosts, formatConnectUrl, plainAddress } from '../shared/connect-url.js';
import { AuthLimiter } from './auth-limiter.js';
import { buildAudioArgs, buildVideoArgs } from './capture/ffmpeg-args.js';
import { chooseH264Encoder } from './capture/encoder-probe.js';
import { H264_COPY, type H264EncodeOptions } from './capture/h264-args.js';
import { locateFfmpeg } from './capture/ffmpeg-locate.js';
import { CaptureSource } from './capture/capture-source.js';
import { FfmpegStandby } from './capture/ffmpeg-standby.js';
import type { OpusPacketEncoder, OpusPacketEncoderOptions } from './capture/opus-packet-encoder.js';
import { AUDIO_PACKET_MS, type Platform } from './capture/capture-types.js';
import { Hub } from './hub.js';
import { loadOrCreateIdentity } from './identity.js';
import { Listener } from './listener.js';
import { handshakeToEvict } from './handshake-slots.js';
import { LogThrottle } from '../shared/log-throttle.js';
import { ReencodeAdmission } from './reencode-admission.js';
import { Session, type SessionInfo, type SessionLimits } from './session.js';

/**
 * Threads for ffmpeg's conversion of each camera frame to 4:2:0 before the MJPEG encode (which stays
 * one thread: see ffmpeg-args.ts). Measured only on this 2-core machine; more than 4 slices of a
 * 720p frame is not worth a thread each.
 */
const MAX_CONVERT_THREADS = 4;

export interface ServeOptions {
  port: number;
  host?: string;
  insecure: boolean;
  configDir: string;
  key?: string;
  newKey?: boolean;
  source: 'device' | 'test';
  platform: Platform;
  video: boolean;
  audio: boolean;
  videoDevice?: string;
  audioDevice?: string;
  audioBackend?: 'pulse' | 'alsa';
  videoInput?: string;
  audioInput?: string;
  copyMjpeg?: boolean;
  width: number;
  height: number;
  fps: number;
  quality: number;
  sampleRateHz: number;
  channels: number;
  /** Default mjpeg. h264: see docs/codecs.md. */
  videoCodec?: 'mjpeg' | 'h264';
  /** Default pcm_s16le. */
  audioCodec?: 'pcm_s16le' | 'opus';
  /** H.264 bitrate cap (default 2000) and GOP in frames (default fps / 2: an IDR twice a second). */
  videoBitrateKbps?: number;
  gopFrames?: number;
  /** 'auto' (default: hardware if one works, else libx264), 'copy' (the camera's own H.264) or an encoder name. */
  encoder?: string;
  /** Opus bitrate, default 64. */
  audioBitrateKbps?: number;
  /** Audio packet duration in ms, one of AUDIO_PACKET_CHOICES_MS; default AUDIO_PACKET_MS (5). */
  audioPacketMs?: number;
  ffmpeg?: string;
  maxViewers: number;
  /** Live sessions allowed beyond maxViewers for serve's own viewers (`serve --record`); default 0. */
  reservedViewers?: number;
  maxPendingHandshakes: number;
  /** Pending handshakes one address may hold (default 8); its oldest is dropped beyond that. */
  maxPendingPerAddress?: number;
  keepWarm: boolean;
  lingerMs: number;
  /** Open the devices once at start so a missing camera fails now, not when the first viewer comes. */
  preflight: boolean;
  /**
   * While no viewer watches, keep one ffmpeg per medium spawned and held before it opens the device,
   * so the first viewer does not wait for ffmpeg to load (FfmpegStandby). Default true; not used with
   * keepWarm, nor on Windows.
   */
  captureStandby?: boolean;
  sessionLimits?: Partial<SessionLimits>;
  /** A capture that failed is tried again after this long while anyone watches; default CAPTURE_RETRY_MS. */
  captureRetryMs?: number;
  agent: string;
  logger: Logger;
}

/**
 * A camera or microphone whose capture failed (gone, busy, its restarts used up) is tried again this
 * often for as long as a viewer watches: a camera plugged back in, or freed by another program,
 * comes back without anyone reconnecting. Each new viewer is told at once that it failed.
 */
export const CAPTURE_RETRY_MS = 10_000;

type CaptureKind = 'video' | 'audio';

export interface ServerReady {
  port: number;
  fingerprint: string | null;
  accessKey: string;
  /** One `lanstream://` URL per reachable address (terminal only: it carries the key). */
  connectUrls: string[];
  warnings: string[];
}

export interface ServerEvents {
  'viewer-live': [SessionInfo];
  'viewer-left': [SessionInfo, string];
  /** starting, live, restarting, failed (with the error's code when it never started), stopped (no viewer left, or the preflight done). */
  'capture-status': [{ kind: 'video' | 'audio'; state: string; detail?: string; code?: string }];
}

export class Server extends EventEmitter<ServerEvents> {
  readonly #o: ServeOptions;
  readonly #log: Logger;
  readonly #sessions = new Set<Session>();
  readonly #limiter = new AuthLimiter();
  #hub: Hub | null = null;
  #listener: Listener | null = null;
  #makeVideo: (() => CaptureSource) | null = null;
  #makeAudio: (() => CaptureSource) | null = null;
  #video: CaptureSource | null = null;
  #audio: CaptureSource | null = null;
  readonly #standbys: { video?: FfmpegStandby; audio?: FfmpegStandby } = {};
  #videoParams: VideoParams | null = null;
  #audioParams: AudioParams | null = null;
  #closing: Promise<void> | null = null;
  /** start() while it runs: close() waits for it, so whatever it made by then is closed too. */
  #starting: Promise<unknown> | null = null;
  /** The preflight's captures while they run: close() ends them rather than waiting for the devices. */
  #probes: Partial<Record<CaptureKind, CaptureSource>> | null = null;
  readonly #retryTimers = new Map<CaptureKind, NodeJS.Timeout>();
  /** Resolves once the last stopped capture's ffmpeg children are gone (the devices are free). */
  #released: Promise<void> = Promise.resolve();
  /** Stalled handshakes dropped to make room, logged as a count at most every 5 s (a flood cannot fill the log). */
  /** One for all sessions: which viewer may start re-encoding its video, and when. */
  readonly #reencodeAdmission = new ReencodeAdmission();
  readonly #dropLog = new LogThrottle(5000, (n) =>
    this.#log.warn(
      { address: this.#lastDropped, dropped: n },
      `dropped ${n} stalled handshake(s) to make room (limits: ${this.#o.maxPendingHandshakes} in all, ${this.#o.maxPendingPerAddress ?? 8} per address)`,
    ),
  );
  #lastDropped: string | undefined;

  constructor(options: ServeOptions) {
    super();
    this.#o = options;
    this.#log = options.logger.child({ component: 'serve' });
  }

  /** PIDs of the running capture children (status display, fault tests). */
  capturePids(): { video?: number; audio?: number } {
    return { video: this.#video?.pid, audio: this.#audio?.pid };
  }

  /** PIDs of the gated standby children waiting for a viewer (tests, diagnostics). */
  standbyPids(): { video?: number; audio?: number } {
    return { video: this.#standbys.video?.pid, audio: this.#standbys.audio?.pid };
  }

  sessions(): SessionInfo[] {
    return [...this.#sessions].map((s) => s.info());
  }

  /**
   * Listens once the identity, the capture arguments and (with preflight) the devices are checked.
   * close() may be called while it runs (Ctrl-C during start-up): start() then stops at its next
   * step and rejects, and close() cleans up what it had made.
   */
  start(): Promise<ServerReady> {
    if (this.#starting !== null) return Promise.reject(new Error('Server.start() called twice'));
    const starting = this.#start();
    this.#starting = starting;
    return starting;
  }

  /** After each step of start() that waits: a close() meanwhile ends the start here. */
  #stopIfClosing(): void {
    if (this.#closing !== null) throw new Error('serve was closed while it was starting');
  }

  async #start(): Promise<ServerReady> {
    const o = this.#o;
    if (!o.video && !o.audio)
      throw new LanstreamError('LS_ERR_USAGE', 'Nothing to serve: --no-video and --no-audio together leave no stream; drop one of them');
    const ffmpegPath = await locateFfmpeg({ override: o.ffmpeg });
    this.#stopIfClosing();
    await Listener.probe(o.host, o.port);
    this.#stopIfClosing();
    const identity = await loadOrCreateIdentity({ configDir: o.configDir, key: o.key, newKey: o.newKey });
    this.#stopIfClosing();
    const standby = (name: 'video' | 'audio', args: string[]) =>
      o.captureStandby === false || o.keepWarm
        ? undefined
        : (this.#standbys[name] = new FfmpegStandby({
            ffmpegPath,
            args,
            name,
            platform: o.platform,
            logger: o.logger.child({ component: `capture-${name}` }),
          }));
    if (identity.created.cert) this.#log.info({ configDir: o.configDir }, 'created a new certificate');
    if (identity.created.key) this.#log.info({ configDir: o.configDir }, 'created a new access key');

    if (o.video) {
      const videoCodec = o.videoCodec ?? 'mjpeg';
      const h264 = videoCodec === 'h264' ? await this.#h264Options(ffmpegPath) : undefined;
      this.#stopIfClosing();
      this.#videoParams = { codec: videoCodec, width: o.width, height: o.height, fps: o.fps };
      const args = buildVideoArgs({
        platform: o.platform,
        source: o.source,
        device: o.videoDevice,
        width: o.width,
        height: o.height,
        fps: o.fps,
        quality: o.quality,
        inputArgs: o.videoInput,
        copyMjpeg: o.copyMjpeg,
        h264,
        convertThreads: Math.min(availableParallelism(), MAX_CONVERT_THREADS),
      });
      const videoStandby = standby('video', args);
      this.#makeVideo = () =>
        new CaptureSource({
          kind: 'video',
          ffmpegPath,
          args,
          // Named in its errors; none (the default camera, or --video-input) gets the --source test hint.
          ...(o.videoDevice !== undefined && o.videoInput === undefined && o.source === 'device' ? { device: o.videoDevice } : {}),
          logger: o.logger.child({ component: 'capture-video' }),
          ...(h264 ? { codec: 'h264' as const } : {}),
          ...(videoStandby ? { standby: videoStandby } : {}),
          onChunk: (chunk) => this.#hub?.publish('video', chunk),
          onStatus: (state, detail) => this.#captureStatus('video', state, detail),
        });
    }
    if (o.audio) {
      const packetMs = o.audioPacketMs ?? AUDIO_PACKET_MS;
      // Opus is encoded here from PCM (OpusPacketEncoder); the WASM is loaded only when chosen, and
      // now, so a bad bitrate or a broken package fails at start rather than at the first viewer.
      const opus = o.audioCodec === 'opus' ? await loadOpusEncoder({ channels: o.channels, bitrateKbps: o.audioBitrateKbps ?? 64, packetMs }) : undefined;
      this.#stopIfClosing();
      // Opus always runs at 48 kHz: ffmpeg captures (or resamples) at that rate, whatever the microphone's.
      const rateHz = opus ? opus.sampleRateHz : o.sampleRateHz;
      this.#audioParams = { codec: opus ? 'opus' : 'pcm_s16le', sampleRateHz: rateHz, channels: o.channels, packetMs };
      const args = buildAudioArgs({
        platform: o.platform,
        source: o.source,
        device: o.audioDevice,
        backend: o.audioBackend,
        sampleRateHz: rateHz,
        channels: o.channels,
        inputArgs: o.audioInput,
        packetMs,
      });
      const audioStandby = standby('audio', args);
      this.#makeAudio = () =>
        new CaptureSource({
          kind: 'audio',
          ffmpegPath,
          args,
          ...(o.audioDevice !== undefined && o.audioInput === undefined && o.source === 'device' ? { device: o.audioDevice } : {}),
          logger: o.logger.child({ component: 'capture-audio' }),
          ...(audioStandby ? { standby: audioStandby } : {}),
          ...(opus ? { audioEncoder: opus.create() } : {}),
          audio: { sampleRateHz: rateHz, channels: o.channels, packetMs },
          onChunk: (chunk) => this.#hub?.publish('audio', chunk),
          onStatus: (state, detail) => this.#captureStatus('audio', state, detail),
        });
    }

    if (o.preflight && !o.keepWarm) {
      // Fail now with ffmpeg's own words if a device is missing or busy; the frames are discarded
      // (no viewer is subscribed), so none of them can reach anyone later.
      const probes = (this.#probes = { video: this.#makeVideo?.(), audio: this.#makeAudio?.() });
      try {
        await Promise.all([probes.video?.start(), probes.audio?.start()]);
      } finally {
        this.#probes = null;
        await this.#closeSources(probes);
      }
      this.#stopIfClosing();
    }

    this.#hub = new Hub({
      lingerMs: o.lingerMs,
      keepWarm: o.keepWarm,
      onActive: () => this.#startCapture(),
      onIdle: () => void this.#stopCapture(),
    });

    this.#listener = new Listener({
      host: o.host,
      port: o.port,
      insecure: o.insecure,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      logger: o.logger.child({ component: 'listener' }),
      onConnection: (socket, secure) => this.#accept(socket, secure, identity.accessKey),
    });
    const port = await this.#listener.start();
    this.#stopIfClosing();
    // After the preflight (its children are gone) and once serving (a failed start leaves none).
    await this.#refillStandbys();
    this.#stopIfClosing();
    const fingerprint = o.insecure ? null : identity.fingerprint;
    const connectUrls = connectHosts(o.host).map((host) =>
      fingerprint
        ? formatConnectUrl({ host, port, key: identity.accessKey, fingerprint })
        : formatConnectUrl({ host, port, key: identity.accessKey, fingerprint: '' }).replace(/&fp=$/, ''),
    );
    this.#log.info({ port, tls: !o.insecure, fingerprint, video: o.video, audio: o.audio }, 'serving');
    return { port, fingerprint, accessKey: identity.accessKey, connectUrls, warnings: identity.warnings ?? [] };
  }

  /** Encoder choice for --video-codec h264; a hardware encoder that does not work is one warning line. */
  async #h264Options(ffmpegPath: string): Promise<H264EncodeOptions> {
    const o = this.#o;
    const requested = o.encoder ?? 'auto';
    const base = { bitrateKbps: o.videoBitrateKbps ?? 2000, gopFrames: o.gopFrames ?? Math.max(1, Math.round(o.fps / 2)) };
    if (requested === H264_COPY) return { ...base, encoder: H264_COPY };
    let choice;
    try {
      choice = await chooseH264Encoder({ ffmpegPath, platform: o.platform, requested });
    } catch (err) {
      throw new LanstreamError('LS_ERR_USAGE', (err as Error).message, { cause: err });
    }
    if (choice.fallbackMessage) this.#log.warn({ failed: choice.failed }, choice.fallbackMessage);
    this.#log.info({ encoder: choice.encoder, ...base }, `H.264 encoder: ${choice.encoder}`);
    return { ...base, encoder: choice.encoder };
  }

  /** Graceful, idempotent: stop accepting, BYE every viewer, drain ≤ 1 s, stop ffmpeg. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Closed while starting: a preflight capture ends now (its start() then resolves), and start()
      // gives up at its next step; what it made by then (listener, standbys) is closed below.
      // (--no-video / --no-audio: that probe is undefined.)
      if (this.#probes) await Promise.all([this.#probes.video?.close(), this.#probes.audio?.close()]);
      await this.#starting?.catch(() => undefined);
      // Stop accepting now; net.Server.close() resolves only once every connection ended, so it
      // is awaited after the viewers were told goodbye.
      const listenerClosed = this.#listener?.close().catch(() => undefined);
      // Each viewer's own close: every one gets up to 1 s for its BYE to go out.
      const gone = [...this.#sessions].map((s) => {
        s.bye(ByeReason.SHUTDOWN, 'the server is shutting down');
        return s.closed;
      });
      await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 1000).unref())]);
      for (const s of this.#sessions) s.destroy();
      this.#clearRetries();
      this.#hub?.close();
      await this.#stopCapture();
      await Promise.all([this.#standbys.video?.close(), this.#standbys.audio?.close()]);
      await listenerClosed;
    })();
    return this.#closing;
  }

  #accept(socket: tls.TLSSocket | net.Socket, secure: boolean, accessKey: string): void {
    const o = this.#o;
    // A connection accepted before close() whose TLS handshake ends after it: no session, or it
    // would go live, start capture again and keep the server from exiting.
    if (this.#closing !== null) {
      socket.destroy();
      return;
    }
    this.#makeRoomForHandshake(plainAddress(socket.remoteAddress));
    const session = new Session({
      socket,
      secure,
      accessKey,
      limiter: this.#limiter,
      video: this.#videoParams,
      audio: this.#audioParams,
      agent: o.agent,
      logger: o.logger.child({ component: 'session' }),
      limits: o.sessionLimits,
      reencodeAdmission: this.#reencodeAdmission,
      admit: () => {
        const live = [...this.#sessions].filter((x) => x.live).length;
        if (live < o.maxViewers + (o.reservedViewers ?? 0)) return null;
        return `the server already has ${o.maxViewers} viewer${o.maxViewers === 1 ? '' : 's'} (--max-viewers)`;
      },
      onLive: (s) => {
        this.#hub?.subscribe(s);
        for (const kind of ['video', 'audio'] as const) {
          const source = this.#source(kind);
          if (source?.state === 'failed') s.status({ state: `${kind}-failed`, message: source.lastError?.message ?? `${kind} capture failed` });
        }
        this.emit('viewer-live', s.info());
      },
      onClose: (s, reason, wasLive) => {
        this.#sessions.delete(s);
        this.#hub?.unsubscribe(s.id);
        // Only viewers that went live leave: a port scan or a wrong key never joined (debug log only).
        if (wasLive) this.emit('viewer-left', s.info(), reason);
      },
    });
    this.#sessions.add(session);
  }

  /**
   * Slowloris defence that cannot lock a real viewer out (policy in handshake-slots.ts): the
   * pending handshake that gives way is dropped with BYE server-full. Logged at most every 5 s, so a
   * flood cannot fill the log.
   */
  #makeRoomForHandshake(address: string): void {
    const o = this.#o;
    const perAddress = o.maxPendingPerAddress ?? 8;
    const pending = [...this.#sessions].filter((s) => s.pending).map((session) => ({ address: session.address, sinceMs: session.connectedAtMs, session }));
    const victim = handshakeToEvict(pending, address, { total: o.maxPendingHandshakes, perAddress })?.session;
    if (!victim) return;
    victim.bye(ByeReason.SERVER_FULL, 'too many handshakes in progress: the oldest unfinished one was dropped');
    this.#lastDropped = victim.address;
    this.#dropLog.note();
  }

  #startCapture(): void {
    const video = (this.#video = this.#makeVideo?.() ?? null);
    const audio = (this.#audio = this.#makeAudio?.() ?? null);
    // A viewer just after the linger ran out: the last capture's children may still be exiting (up to
    // their grace period) and still hold the camera; a new one opening it now failed as busy and
    // waited for the 10 s retry. Started once they are gone, if still wanted by then.
    void this.#released.then(() => {
      if (this.#video === video) this.#startSource('video', video);
      if (this.#audio === audio) this.#startSource('audio', audio);
    });
  }

  #source(kind: CaptureKind): CaptureSource | null {
    return kind === 'video' ? this.#video : this.#audio;
  }

  #startSource(kind: CaptureKind, source: CaptureSource | null): void {
    source?.start().catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      const code = isLanstreamError(err) ? err.code : undefined;
      this.#log.error({ code }, message);
      this.emit('capture-status', { kind, state: 'failed', detail: message, ...(code ? { code } : {}) });
      this.#broadcast({ state: 'capture-failed', message });
      if (source === this.#source(kind)) this.#scheduleRetry(kind);
    });
  }

  #scheduleRetry(kind: CaptureKind): void {
    if (this.#closing !== null || this.#retryTimers.has(kind)) return;
    const delayMs = this.#o.captureRetryMs ?? CAPTURE_RETRY_MS;
    this.#log.info(`${kind} capture failed; trying again in ${Math.round(delayMs / 1000)} s while anyone watches`);
    const timer = setTimeout(() => {
      this.#retryTimers.delete(kind);
      void this.#retryCapture(kind);
    }, delayMs);
    timer.unref();
    this.#retryTimers.set(kind, timer);
  }

  async #retryCapture(kind: CaptureKind): Promise<void> {
    const failed = this.#source(kind);
    if (this.#closing !== null || !this.#hub?.active || failed?.state !== 'failed') return;
    // The old children are gone before the new one opens the device (a camera opens once).
    await failed.close();
    if (this.#closing !== null || !this.#hub.active || this.#source(kind) !== failed) return;
    const fresh = (kind === 'video' ? this.#makeVideo : this.#makeAudio)?.() ?? null;
    if (kind === 'video') this.#video = fresh;
    else this.#audio = fresh;
    this.#startSource(kind, fresh);
  }

  #clearRetries(): void {
    for (const timer of this.#retryTimers.values()) clearTimeout(timer);
    this.#retryTimers.clear();
  }

  async #stopCapture(): Promise<void> {
    this.#clearRetries();
    const sources = { video: this.#video, audio: this.#audio };
    this.#video = this.#audio = null;
    const closed = this.#closeSources(sources);
    this.#released = closed;
    await closed;
    // Only while idle: a viewer may have come back while the old children were closing.
    if (this.#closing === null && this.#video === null && this.#audio === null) await this.#refillStandbys();
  }

  /** Closes these capture sources; once their ffmpeg children are gone, each is reported stopped. */
  async #closeSources(sources: Partial<Record<CaptureKind, CaptureSource | null>>): Promise<void> {
    const kinds = (['video', 'audio'] as const).filter((kind) => sources[kind]);
    await Promise.all(kinds.map((kind) => sources[kind]!.close()));
    for (const kind of kinds) this.emit('capture-status', { kind, state: 'stopped' });
  }

  async #refillStandbys(): Promise<void> {
    await Promise.all([this.#standbys.video?.refill(), this.#standbys.audio?.refill()]);
  }

  #captureStatus(kind: 'video' | 'audio', state: string, detail?: string): void {
    this.emit('capture-status', { kind, state, detail });
    if (state === 'restarting' || state === 'failed') {
      this.#log.warn({ kind, detail }, `${kind} capture ${state}`);
      this.#broadcast({ state: `${kind}-${state}`, message: detail });
      if (state === 'failed') this.#scheduleRetry(kind);
    } else if (state === 'live') {
      this.#broadcast({ state: `${kind}-live` });
    }
  }

  #broadcast(body: StatusBody): void {
    for (const s of this.#sessions) {
      try {
        s.status(body);
      } catch (err) {
        // One viewer's socket must not keep the news from the others (nor take the server down).
        this.#log.debug({ session: s.id, err: (err as Error).message }, 'status not sent');
      }
    }
  }
}

/** Imports the Opus encoder (and its WASM) and checks the settings by building one encoder. */
async function loadOpusEncoder(options: OpusPacketEncoderOptions): Promise<{ sampleRateHz: number; create: () => OpusPacketEncoder }> {
  const { OpusPacketEncoder, OPUS_SAMPLE_RATE_HZ } = await import('./capture/opus-packet-encoder.js');
  try {
    new OpusPacketEncoder(options).destroy();
  } catch (err) {
    throw new LanstreamError('LS_ERR_USAGE', `Opus encoder: ${(err as Error).message}`, { cause: err });
  }
  return { sampleRateHz: OPUS_SAMPLE_RATE_HZ, create: () => new OpusPacketEncoder(options) };
}
