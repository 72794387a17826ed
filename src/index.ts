/**
 * The public API: `import { serve, watch } from 'lanstream'`. The same composition roots the CLI
 * runs (Server from src/server/serve.ts, Viewer from src/client/watch.ts) with the CLI's defaults,
 * minus everything that belongs to a terminal: no argv, no exit codes, no signal handlers, no
 * stdout, and a silent logger unless you pass one. Errors are LanstreamError with a stable `code`.
 */
import path from 'node:path';
import { VERSION_AGENT } from './cli/common.js';
import { openAudio, preloadAudioOutput } from './cli/watch-command.js';
import { KNOWN_HOSTS_FILE, KnownHosts } from './client/known-hosts.js';
import { NullVideoSink, openNullAudioSink } from './client/sinks/null-sink.js';
import { RecorderSink, checkRecordTarget } from './client/sinks/recorder-sink.js';
import { WindowSink } from './client/sinks/window-sink.js';
import type { AudioOutputChoice } from './client/sinks/sink.js';
import { Viewer } from './client/watch.js';
import type { Platform } from './server/capture/capture-types.js';
import { locateCompanion, locateFfmpeg } from './server/capture/ffmpeg-locate.js';
import { Server, type ServeOptions, type ServerReady } from './server/serve.js';
import { DEFAULT_PORT } from './protocol/constants.js';
import { defaultConfigDir } from './shared/config-dir.js';
import { parseWatchTarget } from './shared/connect-url.js';
import { LanstreamError } from './shared/errors.js';
import { normalizeFingerprint } from './shared/fingerprint.js';
import { silentLogger, type Logger } from './shared/logger.js';

export { LanstreamError, ERROR_CODES, isLanstreamError, type ErrorCode, type ErrorKind } from './shared/errors.js';
export { Server, type ServerReady, type ServerEvents } from './server/serve.js';
export type { SessionInfo } from './server/session.js';
export { Viewer, type ViewerEvents } from './client/watch.js';
export type { StatsSnapshot } from './client/viewer-stats.js';
export type { ConnectionState } from './client/connection.js';
export type { AudioParams, VideoParams, WelcomeBody } from './protocol/messages.js';
export { takeSnapshot, type SnapshotResult, type SnapshotSize, type TakeSnapshotOptions } from './client/snapshot.js';

/** `serve()` options: every field is optional and defaults to what `lanstream serve` uses. */
export interface ServeApiOptions extends Partial<Omit<ServeOptions, 'logger' | 'agent'>> {
  /** pino logger; default: silent. */
  logger?: Logger;
}

/** A started server: `ready` says where it listens and what viewers need to connect. */
export type LanstreamServer = Server & { readonly ready: ServerReady };

/** Starts a server (listening when the promise resolves). Close it with `await server.close()`. */
export async function serve(options: ServeApiOptions = {}): Promise<LanstreamServer> {
  const server = new Server({
    port: DEFAULT_PORT,
    insecure: false,
    configDir: defaultConfigDir(),
    source: 'device',
    platform: process.platform as Platform,
    video: true,
    audio: true,
    width: 1280,
    height: 720,
    fps: 30,
    quality: 5,
    sampleRateHz: 48000,
    channels: 1,
    maxViewers: 8,
    maxPendingHandshakes: 32,
    keepWarm: false,
    lingerMs: 2000,
    preflight: true,
    agent: VERSION_AGENT,
    ...definedOnly(options),
    logger: options.logger ?? silentLogger(),
  });
  try {
    const ready = await server.start();
    return Object.assign(server, { ready });
  } catch (err) {
    await server.close();
    throw err;
  }
}

export interface WatchApiOptions {
  /** host, host:port, or the whole `lanstream://…` URL that serve printed (it carries key and fingerprint). */
  target: string;
  /** Default 443 (when not in `target`). */
  port?: number;
  /** Access key (when not in `target`). */
  key?: string;
  /** Pin the server certificate, `sha256:…` (when not in `target`). */
  fingerprint?: string;
  insecure?: boolean;
  /** Where known hosts are kept (trust on first use); default the CLI's config dir. */
  configDir?: string;
  video?: boolean;
  audio?: boolean;
  /** Open an ffplay window and a speaker; default false (frames and stats only, like --no-playback). */
  playback?: boolean;
  /** 0–100, with playback. */
  volume?: number;
  audioBufferMs?: number;
  audioOutput?: AudioOutputChoice;
  /** Also write video + audio to this .mkv file (server timestamps, playable even if the process dies). */
  record?: string;
  /** `record` may replace an existing, non-empty file; default false (rejects with LS_ERR_USAGE). */
  overwrite?: boolean;
  /** Give up after the server is gone this long; default never (null). */
  reconnectTimeoutMs?: number | null;
  /** Keep trying if the server is not up yet; default false (reject at once). */
  wait?: boolean;
  ffmpeg?: string;
  ffplay?: string;
  logger?: Logger;
}

/**
 * Connects and resolves with a live Viewer: events `state`, `stats` (once a second), `frame`
 * (JPEG, server ptsUs), `closed`, `record-error`; `setVolume()`, `reconnect()`, `close()`.
 * Rejects with a LanstreamError if the first connection fails (refused, auth, TLS…).
 */
export async function watch(options: WatchApiOptions): Promise<Viewer> {
  const target = parseWatchTarget(options.target, { port: options.port ?? DEFAULT_PORT });
  const key = options.key ?? target.key;
  if (!key) throw new LanstreamError('LS_ERR_USAGE', 'No access key: pass `key` or the whole lanstream://… URL as `target`');
  const logger = options.logger ?? silentLogger();
  const configDir = options.configDir ?? defaultConfigDir();
  const insecure = options.insecure ?? false;
  const video = options.video ?? true;
  const audio = options.audio ?? true;
  const playback = options.playback ?? false;
  const volume = options.volume ?? 100;

  let recorder: RecorderSink | undefined;
  if (options.record) {
    const recordTarget = await checkRecordTarget('record', options.record, options.overwrite === true, '`overwrite: true`');
    const ffmpegPath = await locateFfmpeg({ override: options.ffmpeg }).catch(async (err: unknown) => {
      await recordTarget.release();
      throw err;
    });
    recorder = new RecorderSink({ file: options.record, ffmpegPath, logger, target: recordTarget });
  }
  let ffplayPath: string | null = null;
  if (playback && video) ffplayPath = options.ffplay ?? (await locateCompanion('ffplay', await locateFfmpeg({ override: options.ffmpeg })));

  const events = (kind: 'video' | 'audio') => ({
    onError: (err: Error) => viewer.onSinkEvent(kind, 'error', err),
    onUserClose: () => viewer.onSinkEvent(kind, 'user-close'),
  });
  if (playback && audio) preloadAudioOutput(options.audioOutput ?? 'auto');
  const viewer: Viewer = new Viewer({
    host: target.host,
    port: target.port,
    key,
    fingerprint: options.fingerprint ? normalizeFingerprint(options.fingerprint) : target.fingerprint,
    insecure,
    knownHosts: insecure ? null : new KnownHosts(path.join(configDir, KNOWN_HOSTS_FILE)),
    video,
    audio,
    reconnectTimeoutMs: options.reconnectTimeoutMs ?? null,
    retryFirst: options.wait ?? false,
    agent: VERSION_AGENT,
    logger,
    recorder,
    openVideoSink: async (params) => {
      const sink = ffplayPath
        ? new WindowSink({
            playerPath: ffplayPath,
            title: `lanstream - ${target.host}`,
            logger: logger.child({ component: 'window' }),
            events: events('video'),
          })
        : new NullVideoSink();
      await sink.start(params);
      return sink;
    },
    openAudioSink: async (params) => {
      if (playback)
        return openAudio(params, options.audioOutput ?? 'auto', { volume, audioBufferMs: options.audioBufferMs ?? 30, logger, events: events('audio') });
      return openNullAudioSink(params);
    },
  });
  try {
    await viewer.start();
  } catch (err) {
    await viewer.close();
    throw err;
  }
  return viewer;
}

/** Drops keys set to undefined so they do not override the defaults. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
