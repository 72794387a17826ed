/**
 * Test helper: an in-process lanstream server on 127.0.0.1 (real ffmpeg test source, real TLS)
 * and viewers with null sinks, so integration tests read like what a user does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Server, type ServeOptions, type ServerReady } from '../../src/server/serve.js';
import { Viewer, type WatchOptions } from '../../src/client/watch.js';
import { openNullAudioSink, openNullVideoSink } from '../../src/client/sinks/null-sink.js';
import { silentLogger } from '../../src/shared/logger.js';

export interface TestServer {
  server: Server;
  ready: ServerReady;
  configDir: string;
  close(): Promise<void>;
}

/** Options a test server gets unless the test overrides them: small and quick to start. */
export function testServeOptions(configDir: string, overrides: Partial<ServeOptions> = {}): ServeOptions {
  return {
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
  };
}

/** A server in a fresh temp config dir, removed again by close(). */
export async function startTestServer(overrides: Partial<ServeOptions> = {}): Promise<TestServer> {
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-test-'));
  const server = new Server(testServeOptions(configDir, overrides));
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
  video: { seq: number; ptsUs: number; arrivalUs: number; flags: number; data: Buffer }[];
  audio: { seq: number; ptsUs: number; arrivalUs: number; flags: number; bytes: number }[];
  states: string[];
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
    openVideoSink: openNullVideoSink,
    openAudioSink: openNullAudioSink,
    ...overrides,
  });
  const record: CountingViewer = { viewer, video: [], audio: [], states: [] };
  viewer.connection.on('video', (m, arrivalUs) => record.video.push({ seq: m.seq, ptsUs: m.ptsUs, arrivalUs, flags: m.flags, data: Buffer.from(m.data) }));
  viewer.connection.on('audio', (m, arrivalUs) => record.audio.push({ seq: m.seq, ptsUs: m.ptsUs, arrivalUs, flags: m.flags, bytes: m.data.length }));
  viewer.on('state', (state) => record.states.push(state));
  return record;
}

/** Frames that arrived in [fromUs, toUs) (same process = same monotonic clock as the server). */
export function framesBetween<T extends { arrivalUs: number }>(items: T[], fromUs: number, toUs: number): T[] {
  return items.filter((f) => f.arrivalUs >= fromUs && f.arrivalUs < toUs);
}

/** Capture → arrival latency percentile in ms (in-process: server and viewer share the clock). */
export function latencyPercentileMs(items: { ptsUs: number; arrivalUs: number }[], q: number): number {
  if (items.length === 0) return Number.NaN;
  const sorted = items.map((f) => (f.arrivalUs - f.ptsUs) / 1000).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
