/**
 * Test helper: an in-process lanstream server on 127.0.0.1 (real ffmpeg test source, real TLS)
 * and viewers with null sinks, so integration tests read like what a user does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Server, type ServeOptions, type ServerReady } from '../../src/server/serve.js';
import { Viewer, type WatchOptions } from '../../src/client/watch.js';
import { NullAudioSink, NullVideoSink } from '../../src/client/sinks/null-sink.js';
import { silentLogger } from '../../src/shared/logger.js';

export interface TestServer {
  server: Server;
  ready: ServerReady;
  configDir: string;
  close(): Promise<void>;
}

export async function startTestServer(overrides: Partial<ServeOptions> = {}): Promise<TestServer> {
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-test-'));
  const server = new Server({
    port: 0,
    host: '127.0.0.1',
    insecure: false,
    configDir,
    source: 'test',
    platform: 'linux',
    video: true,
    audio: true,
    width: 320,
    height: 240,
    fps: 30,
    quality: 8,
    sampleRateHz: 48000,
    channels: 1,
    maxViewers: 8,
    maxPendingHandshakes: 32,
    keepWarm: false,
    lingerMs: 500,
    preflight: false,
    agent: 'lanstream-test',
    logger: silentLogger(),
    ...overrides,
  });
  const ready = await server.start();
  return {
    server,
    ready,
    configDir,
    close: async () => {
      await server.close();
      await rm(configDir, { recursive: true, force: true });
    },
  };
}

export interface CountingViewer {
  viewer: Viewer;
  video: { seq: number; ptsUs: number; data: Buffer }[];
  audio: { seq: number; ptsUs: number; bytes: number }[];
}

/** A viewer with null sinks that records what it received. */
export function testViewer(ts: TestServer, overrides: Partial<WatchOptions> = {}): CountingViewer {
  const viewer = new Viewer({
    host: '127.0.0.1',
    port: ts.ready.port,
    key: ts.ready.accessKey,
    fingerprint: ts.ready.fingerprint ?? undefined,
    insecure: false,
    knownHosts: null,
    video: true,
    audio: true,
    reconnectTimeoutMs: null,
    agent: 'lanstream-test-viewer',
    logger: silentLogger(),
    openVideoSink: async (p) => {
      const s = new NullVideoSink();
      await s.start(p);
      return s;
    },
    openAudioSink: async (p) => {
      const s = new NullAudioSink();
      await s.start(p);
      return s;
    },
    ...overrides,
  });
  const record: CountingViewer = { viewer, video: [], audio: [] };
  viewer.connection.on('video', (m) => record.video.push({ seq: m.seq, ptsUs: m.ptsUs, data: Buffer.from(m.data) }));
  viewer.connection.on('audio', (m) => record.audio.push({ seq: m.seq, ptsUs: m.ptsUs, bytes: m.data.length }));
  return record;
}
