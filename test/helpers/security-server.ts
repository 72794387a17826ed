/**
 * Test helper for the security tests: an in-process server like startTestServer, but in a config
 * dir the test owns (so it can restart the server on the same port with the same or a changed
 * identity) and with a log the test can read.
 */
import { Server, type ServeOptions, type ServerReady } from '../../src/server/serve.js';
import { silentLogger } from '../../src/shared/logger.js';

export interface OwnedServer {
  server: Server;
  ready: ServerReady;
  close(): Promise<void>;
}

export async function startServerIn(configDir: string, overrides: Partial<ServeOptions> = {}): Promise<OwnedServer> {
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
    agent: 'lanstream-security-test',
    logger: silentLogger(),
    ...overrides,
  });
  const ready = await server.start();
  return { server, ready, close: () => server.close() };
}
