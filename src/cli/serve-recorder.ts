/**
 * `serve --record <file.mkv>`: the server records its own stream through a viewer on loopback —
 * the same path (and the same RecorderSink with server timestamps) as `watch --record`, so there is
 * one recorder, not two. It counts as a viewer, which keeps capture running while it records.
 * Lives in the CLI layer because it wires client code to the server (they never import each other).
 */
import type { Logger } from '../shared/logger.js';
import { openNullAudioSink, openNullVideoSink } from '../client/sinks/null-sink.js';
import { RecorderSink, type RecordTarget } from '../client/sinks/recorder-sink.js';
import { Viewer } from '../client/watch.js';
import type { ServerReady } from '../server/serve.js';
import { locateFfmpeg } from '../server/capture/ffmpeg-locate.js';
import { isWildcardHost } from '../shared/connect-url.js';
import { VERSION_AGENT } from './common.js';

/**
 * Where the loopback viewer dials: the address serve is bound to (`--host`), or 127.0.0.1 when it
 * listens on all of them. Always 127.0.0.1 before: `serve --host 192.168.1.10 --record` failed at
 * start (nothing listens on 127.0.0.1).
 */
export function recorderDialHost(bindHost: string | undefined): string {
  return !bindHost || isWildcardHost(bindHost) ? '127.0.0.1' : bindHost;
}

export async function startServeRecorder(o: {
  file: string;
  /** checkRecordFlags' answer and claim on the file. */
  target: RecordTarget | null;
  ready: ServerReady;
  /** serve's --host (bind address). */
  host?: string;
  insecure: boolean;
  ffmpeg?: string;
  logger: Logger;
  onError: (err: Error) => void;
}): Promise<{ viewer: Viewer; recorder: RecorderSink }> {
  const recorder = new RecorderSink({
    file: o.file,
    ffmpegPath: await locateFfmpeg({ override: o.ffmpeg }),
    logger: o.logger,
    target: o.target,
  });
  const viewer = new Viewer({
    host: recorderDialHost(o.host),
    port: o.ready.port,
    key: o.ready.accessKey,
    fingerprint: o.ready.fingerprint ?? undefined,
    insecure: o.insecure,
    knownHosts: null,
    video: true,
    audio: true,
    reconnectTimeoutMs: null,
    avSync: { enabled: false },
    agent: `${VERSION_AGENT} (serve --record)`,
    logger: o.logger.child({ component: 'serve-recorder' }),
    recorder,
    openVideoSink: openNullVideoSink,
    openAudioSink: openNullAudioSink,
  });
  viewer.on('record-error', (err) => o.onError(err));
  await viewer.start();
  return { viewer, recorder };
}
