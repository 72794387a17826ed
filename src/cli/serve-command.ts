/**
 * `lanstream serve`: flags → ServeOptions, the connect line, viewer events, and the run loop.
 * The connect line carries the access key, so it goes to the terminal only (stdout without
 * --json), never into logs.
 */
import { defaultConfigDir } from '../shared/config-dir.js';
import { envSourceOf, usageError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { Server } from '../server/serve.js';
import { AUDIO_PACKET_MS, type Platform } from '../server/capture/capture-types.js';
import { runUntilDone } from './lifecycle.js';
import { exitCodeFor } from './exit-codes.js';
import { startServeRecorder } from './serve-recorder.js';
import { checkRecordFlags } from '../client/sinks/recorder-sink.js';
import type { Viewer } from '../client/watch.js';
import type { RecorderSink } from '../client/sinks/recorder-sink.js';
import { ServeStatus } from './serve-status.js';
import type { Output } from './output.js';
import { parseDurationMs, parseFps, parseIntIn, parsePort, parseSize } from './parse.js';
import { VERSION_AGENT, loggerOptions, type CommonFlags } from './common.js';

export interface ServeFlags extends CommonFlags {
  port: string;
  host?: string;
  source: 'device' | 'test';
  videoDevice?: string;
  audioDevice?: string;
  audioBackend?: 'pulse' | 'alsa';
  videoInput?: string;
  audioInput?: string;
  copyMjpeg?: boolean;
  videoCodec?: 'mjpeg' | 'h264';
  audioCodec?: 'pcm' | 'opus';
  bitrate?: string;
  audioBitrate?: string;
  audioPacketMs?: string;
  gop?: string;
  encoder?: string;
  size: string;
  fps: string;
  quality: string;
  audioRate: string;
  channels: string;
  video: boolean;
  audio: boolean;
  maxViewers: string;
  keepWarm?: boolean;
  preflight: boolean;
  key?: string;
  newKey?: boolean;
  record?: string;
  /** --record may replace an existing file. */
  overwrite?: boolean;
}

/**
 * Flag combinations that cannot work, refused as usage errors before anything starts: they used to
 * be found after serve was listening (--record with H.264 printed the connect line, then exited 1)
 * or not at all (--encoder and --gop were ignored without --video-codec h264: the MJPEG encoder is
 * fixed). From LANSTREAM_ENCODER / LANSTREAM_GOP they are settings for when H.264 is chosen, not a
 * mistake on an MJPEG run.
 */
export function checkServeFlags(flags: Pick<ServeFlags, 'videoCodec' | 'video' | 'record' | 'encoder' | 'gop'>): void {
  const h264 = flags.videoCodec === 'h264';
  if (flags.record && flags.video && h264)
    throw usageError('--record', flags.record, 'MJPEG video: with --video-codec h264 add --no-video to record the sound only, or drop --video-codec h264');
  if (!h264 && flags.encoder !== undefined && flags.encoder !== 'auto' && envSourceOf('--encoder') === undefined)
    throw usageError('--encoder', flags.encoder, 'only with --video-codec h264; MJPEG has one encoder: add --video-codec h264 or drop --encoder');
  if (!h264 && flags.gop !== undefined && envSourceOf('--gop') === undefined)
    throw usageError('--gop', flags.gop, 'only with --video-codec h264; every MJPEG frame is a keyframe: add --video-codec h264 or drop --gop');
}

export async function runServe(flags: ServeFlags, output: Output): Promise<void> {
  output.json = Boolean(flags.json);
  output.quiet = Boolean(flags.quiet);
  checkServeFlags(flags);
  const port = parsePort(flags.port);
  const { width, height } = parseSize(flags.size);
  const durationMs = flags.duration ? parseDurationMs(flags.duration, '--duration') : undefined;
  // Before the server starts: exit 2 for a bad path, like watch.
  const recordTarget = await checkRecordFlags(flags);
  const logger = createLogger(loggerOptions(flags));
  const server = new Server({
    port,
    host: flags.host,
    insecure: Boolean(flags.insecure),
    configDir: flags.configDir ?? defaultConfigDir(),
    key: flags.key,
    newKey: flags.newKey,
    source: flags.source,
    platform: process.platform as Platform,
    video: flags.video,
    audio: flags.audio,
    videoDevice: flags.videoDevice,
    audioDevice: flags.audioDevice,
    audioBackend: flags.audioBackend,
    videoInput: flags.videoInput,
    audioInput: flags.audioInput,
    copyMjpeg: flags.copyMjpeg,
    videoCodec: flags.videoCodec ?? 'mjpeg',
    audioCodec: flags.audioCodec === 'opus' ? 'opus' : 'pcm_s16le',
    videoBitrateKbps: parseIntIn('--bitrate', flags.bitrate ?? '2000', 100, 100_000),
    audioBitrateKbps: parseIntIn('--audio-bitrate', flags.audioBitrate ?? '64', 6, 510),
    audioPacketMs: Number(flags.audioPacketMs ?? AUDIO_PACKET_MS),
    ...(flags.gop ? { gopFrames: parseIntIn('--gop', flags.gop, 1, 1000) } : {}),
    encoder: flags.encoder ?? 'auto',
    width,
    height,
    fps: parseFps(flags.fps),
    quality: parseIntIn('--quality', flags.quality, 2, 31),
    sampleRateHz: parseIntIn('--audio-rate', flags.audioRate, 8000, 192000),
    channels: parseIntIn('--channels', flags.channels, 1, 8),
    ffmpeg: flags.ffmpeg,
    maxViewers: parseIntIn('--max-viewers', flags.maxViewers, 1, 1000),
    // The recorder is a viewer over loopback; it does not take a place meant for people.
    ...(flags.record ? { reservedViewers: 1 } : {}),
    maxPendingHandshakes: 32,
    keepWarm: Boolean(flags.keepWarm),
    lingerMs: 2000,
    preflight: flags.preflight,
    agent: VERSION_AGENT,
    logger,
  });
  server.on('viewer-live', (info) => output.event('viewer-live', { id: info.id, address: info.address }));
  server.on('viewer-left', (info, reason) => output.event('viewer-left', { id: info.id, address: info.address, reason }));
  server.on('capture-status', (s) => output.event('capture', s));

  // Started under runUntilDone, so a Ctrl-C or SIGTERM during start-up (the preflight, the H.264
  // probe) closes what has started and still ends --json with `stopped`; it used to kill serve
  // with no last line.
  const status = new ServeStatus(!output.json && !output.quiet && Boolean(process.stderr.isTTY));
  let statsTimer: NodeJS.Timeout | null = null;
  // What start-up has reached, read by close() (an object: TS would narrow a `let` set in the closure to null).
  const run: { closing: boolean; startDone: boolean; recording: { viewer: Viewer; recorder: RecorderSink } | null } = {
    closing: false,
    startDone: false,
    recording: null,
  };
  let fail: (err: unknown) => void = () => undefined;
  const ended = new Promise<void>((_resolve, reject) => (fail = reject)); // serve ends on its own only by failing
  const started = (async () => {
    const ready = await server.start();
    for (const warning of ready.warnings) logger.warn(warning);
    output.event('ready', { port: ready.port, tls: !flags.insecure, fingerprint: ready.fingerprint });
    if (flags.insecure)
      process.stderr.write('lanstream: WARNING: --insecure: the stream is not encrypted and the server is not authenticated; anyone on the LAN can read it\n');
    if (!output.json) {
      output.text(`lanstream serve: listening on port ${ready.port}${flags.insecure ? ' (plain TCP, --insecure)' : ' (TLS)'}. On the viewer, run:`);
      // Double quotes: the URL's '&' needs quoting in every shell, and cmd.exe (also npm's .cmd wrappers
      // under PowerShell) has no single quotes: the line printed with them was cut at the '&' there.
      for (const url of ready.connectUrls) output.text(`  lanstream watch "${url}"${flags.insecure ? ' --insecure' : ''}`);
    }
    // Who is watching, once a second: a line refreshed in place on a terminal, `stats` with --json.
    if (output.json || status.enabled) {
      statsTimer = setInterval(() => output.event('stats', { viewers: status.update(server.sessions()) }), 1000);
      statsTimer.unref();
    }
    if (flags.record && !run.closing) {
      run.recording = await startServeRecorder({
        file: flags.record,
        target: recordTarget,
        ready,
        host: flags.host,
        insecure: Boolean(flags.insecure),
        ffmpeg: flags.ffmpeg,
        logger,
        onError: (err) => fail(err),
      });
      output.event('recording', { file: flags.record });
    }
  })();
  started.catch(fail);
  started.then(
    () => (run.startDone = true),
    () => (run.startDone = true),
  );
  const close = async () => {
    run.closing = true;
    if (!run.startDone) {
      // Still starting: the server gives up at its next step, then whatever had started is closed.
      await server.close();
      await started.catch(() => undefined);
    }
    // The recorder closes first (its file is finished), then the server.
    await run.recording?.viewer.close();
    await server.close();
  };
  let code: number;
  try {
    code = await runUntilDone({ durationMs, durationFrom: started, close, ended });
    const unfinished = run.recording?.recorder.closeError;
    if (unfinished && code === 0) {
      output.error(unfinished);
      code = exitCodeFor(unfinished);
    }
  } finally {
    if (statsTimer) clearInterval(statsTimer);
    status.done();
  }
  output.stopped(code);
  logger.flush?.();
  process.exitCode = code;
}
