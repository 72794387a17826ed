/**
 * `lanstream watch <target>`: flags → WatchOptions, choice of sinks (ffplay window; speaker, then
 * pacat; null with --no-playback), the status line and --json stats, and the run loop.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultConfigDir } from '../shared/config-dir.js';
import { checkAccessKey, parseWatchTarget, type WatchTarget } from '../shared/connect-url.js';
import { normalizeFingerprint } from '../shared/fingerprint.js';
import { LanstreamError, isLanstreamError, usageError } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { KNOWN_HOSTS_FILE, KnownHosts } from '../client/known-hosts.js';
import { Viewer } from '../client/watch.js';
import { WINDOW_BACKENDS, gstreamerInstallHint, WindowSink, windowTitle, type PlayerLaunch } from '../client/sinks/window-sink.js';
import { SpeakerSink } from '../client/sinks/speaker-sink.js';
import { AudioIoSink, DEVICE_BUFFER_MS, DEVICE_OPEN_FAILED } from '../client/sinks/audio-io-sink.js';
import { PacatSink } from '../client/sinks/pacat-sink.js';
import { NullVideoSink, openNullAudioSink } from '../client/sinks/null-sink.js';
import { alsaOutputPossible } from '../client/sinks/alsa-presence.js';
import { RecorderSink, assertWritableFile, checkRecordFlags, type RecordTarget } from '../client/sinks/recorder-sink.js';
import { snapshotFormat, takeSnapshot } from '../client/snapshot.js';
import { AUDIO_OUTPUTS, type AudioOutputChoice, type AudioSink, type SinkEvents } from '../client/sinks/sink.js';
import { PulseSink, PULSE_BUFFER_MS, loadPulseModule } from '../client/sinks/pulse-sink.js';
import type { AudioParams } from '../protocol/messages.js';
import { locateCompanion, locateFfmpeg, resolveExecutable, verifyCompanion } from '../server/capture/ffmpeg-locate.js';
import { exitCodeFor } from './exit-codes.js';
import { runUntilDone } from './lifecycle.js';
import type { Output } from './output.js';
import { parseChoice, parseDurationMs, parseIntIn, parsePort, parsePosition, parseSize } from './parse.js';
import { VERSION_AGENT, loggerOptions, type CommonFlags } from './common.js';
import { StatusLine } from './status-line.js';
import { WatchControls } from './watch-controls.js';
import { OverlayText } from '../client/overlay.js';
import { lastCodec, rememberCodec, runningEarlyWindow, type EarlyWindow } from './early-window.js';

export interface WatchFlags extends CommonFlags {
  port: string;
  key?: string;
  fingerprint?: string;
  /** Which of port, key and fingerprint were typed on the command line (not from LANSTREAM_* or a default). */
  fromCommandLine?: string[];
  video: boolean;
  audio: boolean;
  playback: boolean;
  volume: string;
  audioBufferMs: string;
  audioOutput: string;
  ffplay?: string;
  window: string;
  gstLaunch?: string;
  windowPosition?: string;
  borderless?: boolean;
  avSync?: boolean;
  overlay?: boolean;
  reconnectTimeout?: string;
  wait?: boolean;
  record?: string;
  /** --record may replace an existing file. */
  overwrite?: boolean;
  snapshot?: string;
  snapshotSize?: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

/** `early`: the window program main() started before this module loaded (early-window.ts); this function owns it from here. */
export async function runWatch(targetArg: string, flags: WatchFlags, output: Output, early: EarlyWindow | null = null): Promise<void> {
  output.json = Boolean(flags.json);
  output.quiet = Boolean(flags.quiet);
  if (!flags.video && !flags.audio) {
    throw new LanstreamError('LS_ERR_USAGE', 'Nothing to watch: --no-video and --no-audio together leave no stream; drop one of them');
  }
  const target = resolveTarget(targetArg, flags);
  const volume = parseIntIn('--volume', flags.volume, 0, 100);
  const audioBufferMs = parseIntIn('--audio-buffer-ms', flags.audioBufferMs, 10, 2000);
  const audioOutput = parseChoice('--audio-output', flags.audioOutput, AUDIO_OUTPUTS);
  const durationMs = flags.duration ? parseDurationMs(flags.duration, '--duration') : undefined;
  const reconnectTimeoutMs = flags.reconnectTimeout ? parseDurationMs(flags.reconnectTimeout, '--reconnect-timeout') : null;
  const position = flags.windowPosition ? parsePosition(flags.windowPosition) : undefined;
  const backend = parseChoice('--window', flags.window ?? 'ffplay', WINDOW_BACKENDS);
  const fingerprint = target.fingerprint;
  const configDir = flags.configDir ?? defaultConfigDir();
  const logger = createLogger(loggerOptions(flags));
  if (backend === 'gstreamer' && (position || flags.borderless)) {
    logger.warn(
      '--window gstreamer cannot place its window or remove its border: --window-position / --borderless are ignored (they work with --window ffplay)',
    );
  }
  const key = target.key ?? (await localKey(target.host, configDir));
  if (!key) {
    throw new LanstreamError(
      'LS_ERR_USAGE',
      'No access key: paste the whole `lanstream watch lanstream://…` line that `lanstream serve` printed, or pass --key',
    );
  }
  if (flags.insecure) process.stderr.write('lanstream: WARNING: --insecure: no encryption and no server authentication\n');
  const scripted = await checkScriptingFlags(flags);
  if (flags.snapshot) flags.playback = false; // a picture for cron: no window, no speaker, nothing interactive
  const recorder = scripted.recordFfmpeg
    ? new RecorderSink({
        file: flags.record!,
        ffmpegPath: scripted.recordFfmpeg,
        logger,
        target: scripted.recordTarget,
      })
    : null;

  const wantVideo = flags.video;
  const title = windowTitle(target.host);
  const windowWanted = Boolean(flags.playback && flags.video);
  const started = await runningEarlyWindow(early);
  // Finding the window program (ffplay: two `-version` runs) and starting it (SDL, X11) take a few
  // hundred ms: both run while the connection is made instead of after it. The plain case (the
  // player on PATH) was started by main() before this module even loaded. A missing ffplay still
  // fails the command (exit 5) before anything plays — start() below waits for this too.
  const playerFound: Promise<string | null> = !windowWanted
    ? Promise.resolve(null)
    : started
      ? Promise.resolve(started.plan.playerPath)
      : backend === 'gstreamer'
        ? locateGstLaunch(flags.gstLaunch)
        : (async () => {
            if (flags.ffplay) return verifyCompanion('ffplay', flags.ffplay, '--ffplay');
            // The usual case, ffplay on PATH: take it without running anything (a broken binary is
            // still reported, by the window sink when it fails to start).
            if (!flags.ffmpeg) {
              const onPath = await resolveExecutable('ffplay', process.env);
              if (onPath) return onPath;
            }
            const ffmpegPath = flags.ffmpeg ?? (await locateFfmpeg({}).catch(() => ''));
            return locateCompanion('ffplay', ffmpegPath);
          })();
  playerFound.catch(() => undefined); // reported where it is awaited
  // The status overlay lives in the window; only with a window.
  const overlay = windowWanted ? (started?.overlay ?? new OverlayText()) : null;
  const makeWindow = (playerPath: string, launched?: PlayerLaunch) =>
    new WindowSink({
      backend,
      playerPath,
      title,
      logger: logger.child({ component: 'window' }),
      position,
      borderless: flags.borderless,
      events: sinkEvents('video'),
      overlayFilter: overlay?.filter(),
      overlay: overlay ?? undefined,
      launched,
    });
  // Speculative: the codec this server sent last time (MJPEG for a new one); that window opens now
  // (or already runs), another codec replaces it at WELCOME and is remembered for next time.
  const server = `${target.host}:${target.port}`;
  const expectedCodec = started?.launch.codec ?? lastCodec(configDir, server);
  let rememberedCodec = expectedCodec;
  let earlyWindow: Promise<WindowSink> | null = windowWanted
    ? playerFound.then(async (playerPath) => {
        const sink = makeWindow(playerPath!, started?.launch);
        await sink.start({ codec: expectedCodec, width: 0, height: 0, fps: 0 });
        return sink;
      })
    : null;
  earlyWindow?.catch(() => undefined);
  const sinkEvents = (kind: 'video' | 'audio'): SinkEvents => ({
    onError: (err) => viewer.onSinkEvent(kind, 'error', err),
    onUserClose: () => viewer.onSinkEvent(kind, 'user-close'),
  });
  if (flags.playback && flags.audio && !flags.snapshot) preloadAudioOutput(audioOutput);
  const viewer: Viewer = new Viewer({
    host: target.host,
    port: target.port,
    key,
    fingerprint,
    insecure: Boolean(flags.insecure),
    knownHosts: flags.insecure ? null : new KnownHosts(path.join(configDir, KNOWN_HOSTS_FILE)),
    video: wantVideo,
    audio: flags.audio && !flags.snapshot,
    reconnectTimeoutMs,
    retryFirst: Boolean(flags.wait),
    avSync: { enabled: Boolean(flags.avSync) && flags.playback !== false },
    agent: VERSION_AGENT,
    logger,
    recorder: recorder ?? undefined,
    openVideoSink: async (params) => {
      // Whenever the server's codec is not the one remembered (at the first WELCOME, or a server
      // restarted with another codec while we watch), the next launch's early window follows it.
      if (windowWanted && params.codec !== rememberedCodec) {
        rememberedCodec = params.codec;
        rememberCodec(configDir, server, params.codec).catch((err: unknown) => logger.debug({ err }, "could not record the server's codec"));
      }
      const speculative = earlyWindow;
      earlyWindow = null; // once: a window reopened after a crash is a new one
      // A window program that is not there ends `watch` through `live` below, with its own code
      // (exit 5) as the one line the user reads; the viewer meanwhile gets no window, so it does not
      // also report that as an output that failed.
      const playerPath = await playerFound.catch(() => null);
      if (speculative && playerPath !== null) {
        const window = await speculative;
        if (params.codec === expectedCodec) return window;
        await window.close();
      }
      const sink = playerPath ? makeWindow(playerPath) : new NullVideoSink();
      await sink.start(params);
      return sink;
    },
    openAudioSink: async (params) => openAudio(params, flags.playback ? audioOutput : 'null', { volume, audioBufferMs, logger, events: sinkEvents('audio') }),
  });

  const status = new StatusLine(!output.json && !output.quiet && Boolean(process.stderr.isTTY));
  viewer.on('state', (state, detail) => {
    output.event('state', { state, detail });
    status.state(state, detail);
  });
  let quit: () => void = () => undefined;
  const controls = new WatchControls({
    viewer,
    overlay,
    status,
    output,
    volume,
    showStats: Boolean(flags.overlay),
    // Keys only for a person at a terminal: never for scripts or cron (stdin not a TTY). --json is
    // about stdout (`watch --json | jq` in a terminal still has a person at the keys), so it does not
    // turn them off; their effect is reported as `control` events.
    stdin: process.stdin.isTTY && flags.playback ? process.stdin : null,
    onQuit: () => quit(),
  });
  viewer.on('stats', (snap) => output.event('stats', { ...snap, volume: controls.effectiveVolume }));
  viewer.on('status', (body) => output.event('server-status', { ...body }));
  viewer.on('sink-error', (kind, err) => output.event('sink-error', { kind, message: err.message }));
  viewer.on('sink-reopened', (kind) => output.event('sink-reopened', { kind }));
  // When the picture (sound) first arrived, counted from this process's start: scripts can wait for
  // it, and it is the viewer's own time to first picture (the window adds its drawing on top).
  viewer.on('first-media', (kind, latencyMs) => output.event('first-media', { kind, sinceStartMs: Math.round(performance.now()), latencyMs }));

  // The connection starts in 'connecting' without an event; scripts see the whole sequence.
  output.event('state', { state: viewer.connection.state });
  const snapshot = flags.snapshot ? snapshotThenExit(viewer, flags.snapshot, scripted.snapshotSize, flags.ffmpeg, logger, output) : null;
  let snapshotTaken = false;
  snapshot?.then(
    () => (snapshotTaken = true),
    () => undefined,
  );
  // Live once the connection is up and the sinks are open; a missing window program is the error
  // to report even if the connection failed too.
  const live = (async () => {
    const [started, found] = await Promise.allSettled([viewer.start(), playerFound]);
    if (found.status === 'rejected') throw found.reason;
    if (started.status === 'rejected') throw started.reason;
    output.event('live', { host: target.host, port: target.port, welcome: viewer.welcome });
  })();
  // Subscribed before start(): a viewer can end while it connects (its only window died), and its
  // 'closed' event, with the error, is emitted once — attached after start() it was missed.
  const ended = new Promise<void>((resolve, reject) => {
    viewer.on('closed', (err) => (err ? reject(err) : resolve()));
    viewer.on('window-closed', () => resolve());
    quit = resolve;
    viewer.on('record-error', reject); // a recording that silently stopped would fool a script: exit 1
    snapshot?.then(resolve, reject);
    live.catch(reject);
  });
  live.catch(() => undefined); // reported through `ended`
  try {
    // Signals and `q` are handled from here, not only once live: `watch --wait` for a server that is
    // not up yet was killed by SIGTERM/SIGINT without its `stopped` line, and `q` did nothing.
    process.exitCode = await runUntilDone({ durationMs, durationFrom: live, close: () => viewer.close(), ended });
    // The run ended well but ffmpeg did not finish the file: a script must not take it as complete.
    if (recorder?.closeError && process.exitCode === 0) throw recorder.closeError;
    // --duration ran out before the picture: exit 0 left a cron job with no file, or last run's.
    if (snapshot && !snapshotTaken && process.exitCode === 0) {
      throw new LanstreamError(
        'LS_ERR_SNAPSHOT_FAILED',
        `--duration ${flags.duration} ended before a settled picture arrived: nothing was written to ${flags.snapshot}; allow more time (it takes the 3rd frame)`,
      );
    }
  } catch (err) {
    // Set here too so the --json "stopped" event below carries the code the process will exit with,
    // and report the error now: `stopped` must be the last line (main skips an error reported here).
    process.exitCode = exitCodeFor(err);
    if (isLanstreamError(err)) output.error(err);
    throw err;
  } finally {
    controls.close();
    await earlyWindow?.then((w) => w.close()).catch(() => undefined); // never taken: not live, or no video
    overlay?.close();
    status.done();
    if (recorder) output.event('recording', { file: flags.record, ...recorder.stats() });
    output.stopped(Number(process.exitCode ?? 1), { totals: viewer.snapshot().totals });
  }
}

/**
 * The target with --port, --key and --fingerprint merged in. What the target itself says (a pasted
 * lanstream:// line, host:port) wins over the same setting from LANSTREAM_* or a default: a stale
 * LANSTREAM_KEY used to override the key in the URL, and the server refused it (exit 4, counted
 * against the address). Typed on the command line as well and different, it is a usage error.
 */
export function resolveTarget(targetArg: string, flags: Pick<WatchFlags, 'port' | 'key' | 'fingerprint' | 'fromCommandLine'>): WatchTarget {
  const typed = new Set(flags.fromCommandLine ?? []);
  // Port 0 never comes out of a target: it marks "no port in the target".
  const target = parseWatchTarget(targetArg, { port: 0 });
  const port = parsePort(flags.port);
  if (target.port === 0) target.port = port;
  else if (typed.has('port') && port !== target.port) throw conflict(`--port ${port} differs from the port in the target (${target.port})`);
  if (flags.key !== undefined) {
    const key = checkAccessKey(flags.key);
    if (target.key === undefined) target.key = key;
    else if (typed.has('key') && key !== target.key) throw conflict('--key differs from the key in the lanstream:// line');
  }
  if (flags.fingerprint !== undefined) {
    const fp = normalizeFingerprint(flags.fingerprint);
    if (target.fingerprint === undefined) target.fingerprint = fp;
    else if (typed.has('fingerprint') && fp !== target.fingerprint) throw conflict(`--fingerprint ${fp} differs from the fp in the lanstream:// line`);
  }
  return target;
}

function conflict(what: string): LanstreamError {
  return new LanstreamError('LS_ERR_USAGE', `${what}: give it once (the target alone is enough)`);
}

/** `--window gstreamer`: gst-launch-1.0 from --gst-launch or PATH; its plugins are checked when it starts. */
async function locateGstLaunch(explicit: string | undefined): Promise<string> {
  const found = await resolveExecutable(explicit ?? 'gst-launch-1.0', process.env);
  if (found) return found;
  throw new LanstreamError(
    'LS_ERR_GSTREAMER_NOT_FOUND',
    `${explicit ? `--gst-launch ${explicit} is not runnable` : 'gst-launch-1.0 is not on PATH'}: ${gstreamerInstallHint()}`,
  );
}

/** Checks --record / --snapshot before anything connects: a bad path is a usage error (exit 2) now. */
async function checkScriptingFlags(
  flags: WatchFlags,
): Promise<{ recordFfmpeg: string | null; recordTarget: RecordTarget | null; snapshotSize?: { width: number; height: number } }> {
  if (flags.snapshotSize && !flags.snapshot) throw usageError('--snapshot-size', flags.snapshotSize, 'to be used with --snapshot');
  const snapshotSize = flags.snapshotSize ? parseSize(flags.snapshotSize, '--snapshot-size', { even: false }) : undefined;
  if (flags.snapshot) {
    snapshotFormat(flags.snapshot);
    if (flags.record) throw usageError('--record', flags.record, 'no --record with --snapshot (a snapshot takes one picture and exits)');
    if (!flags.video) throw usageError('--snapshot', flags.snapshot, 'video: drop --no-video');
    await assertWritableFile('--snapshot', flags.snapshot);
  }
  const record = await checkRecordFlags(flags);
  if (!record) return { recordFfmpeg: null, recordTarget: null, snapshotSize };
  // The claim on the file is held until the recorder closes, or the process ends (exit 4 here too).
  return { recordFfmpeg: await locateFfmpeg({ override: flags.ffmpeg }), recordTarget: record, snapshotSize };
}

function snapshotThenExit(
  viewer: Viewer,
  file: string,
  size: { width: number; height: number } | undefined,
  ffmpeg: string | undefined,
  logger: Logger,
  output: Output,
): Promise<void> {
  const done = takeSnapshot(viewer, { file, size, ffmpegPath: () => locateFfmpeg({ override: ffmpeg }) }).then((result) => {
    logger.info({ ...result }, `snapshot written to ${file}`);
    output.event('snapshot', { ...result });
  });
  done.catch(() => undefined); // reported through `ended`
  return done;
}

/** Starts loading what openAudio() will need for this choice, while the connection is made. */
export function preloadAudioOutput(choice: AudioOutputChoice): void {
  if (choice === 'pulse') loadPulseModule().catch(() => undefined);
}

export async function openAudio(
  params: AudioParams,
  choice: AudioOutputChoice | 'null',
  o: { volume: number; audioBufferMs: number; logger: Logger; events: SinkEvents },
): Promise<AudioSink> {
  if (choice === 'null') return openNullAudioSink(params);
  const log = o.logger.child({ component: 'audio' });
  // Pull outputs first: the device asks for what it needs, so the jitter buffer knows its true fill
  // level. audio-io's pull callback (ALSA, Core Audio, MME) is the default: 0–4 underruns in 30 min
  // soaks. PulseAudio's native protocol skips the ALSA plugin's ~20 ms queue (rig: 41 vs 45 ms with
  // 10 ms packets, batch L; 45 vs 42 with 5 ms, batch M), but as the default it had 21 underruns in a
  // 30 min soak, most while the machine was busy, so it is the choice when asked for and the fallback
  // where audio-io is not.
  const common = { logger: log, volume: o.volume, events: o.events };
  const outputs: Array<{ name: AudioOutputChoice; label: string; make: () => AudioSink }> = [
    { name: 'audio-io', label: 'audio-io', make: () => new AudioIoSink({ ...common, targetMs: Math.max(10, o.audioBufferMs - DEVICE_BUFFER_MS) }) },
    {
      name: 'pulse',
      label: "PulseAudio's native protocol",
      make: () => new PulseSink({ ...common, targetMs: Math.max(10, o.audioBufferMs - PULSE_BUFFER_MS) }),
    },
    { name: 'speaker', label: 'the speaker package', make: () => new SpeakerSink({ ...common, targetMs: o.audioBufferMs }) },
    { name: 'pacat', label: "PulseAudio's pacat", make: () => new PacatSink({ ...common, targetMs: o.audioBufferMs }) },
  ];
  const order = audioOutputOrder(choice, process.platform);
  let tries = order.map((name) => outputs.find((out) => out.name === name)!);
  if (choice === 'auto' && process.platform === 'linux' && !alsaOutputPossible()) {
    log.debug('no sound card, ALSA configuration or sound server for ALSA to reach: audio-io and speaker skipped');
    tries = tries.filter((out) => out.name !== 'audio-io' && out.name !== 'speaker');
  }
  for (let i = 0; i < tries.length; i++) {
    const out = tries[i]!;
    const sink = out.make();
    try {
      await sink.start(params);
      return sink;
    } catch (err) {
      // The default device would not open: speaker would open the same one and may abort the process (DEVICE_OPEN_FAILED).
      if (isLanstreamError(err) && err.details[DEVICE_OPEN_FAILED] === true) tries = tries.filter((o) => o.name !== 'speaker');
      const next = tries[i + 1];
      if (!next) throw err;
      log.warn(`${(err as Error).message}; trying ${next.label} instead`);
    }
  }
  throw new Error(`unknown audio output ${choice}`);
}

/**
 * The outputs `--audio-output` tries, in order. `auto`: audio-io first everywhere; PulseAudio's two
 * (its native protocol, pacat) only where PulseAudio is the usual sound server, Linux and the BSDs:
 * on macOS and Windows they were tried after speaker had failed, so the last word the user read was
 * pacat's "sudo apt-get install pulseaudio-utils". Asked for by name, any output is tried.
 */
export function audioOutputOrder(choice: AudioOutputChoice, platform: NodeJS.Platform): AudioOutputChoice[] {
  if (choice !== 'auto') return [choice];
  const pulseHere = platform === 'linux' || platform === 'freebsd' || platform === 'openbsd';
  return pulseHere ? ['audio-io', 'pulse', 'speaker', 'pacat'] : ['audio-io', 'speaker'];
}

/** Same user, same machine: the server's own key file is readable, so `watch localhost` just works. */
async function localKey(host: string, configDir: string): Promise<string | undefined> {
  if (!LOOPBACK.has(host)) return undefined;
  try {
    return (await readFile(path.join(configDir, 'access-key'), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}
