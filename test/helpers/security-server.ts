/**
 * Test helper for the security tests: an in-process server like startTestServer, but in a config
 * dir the test owns (so it can restart the server on the same port with the same or a changed
 * identity) and with a log the test can read.
 */
import { Server, type ServeOptions, type ServerReady } from '../../src/server/serve.js';
import { testServeOptions } from './lanstream.js';

export interface OwnedServer {
  server: Server;
  ready: ServerReady;
  close(): Promise<void>;
}

export async function startServerIn(configDir: string, overrides: Partial<ServeOptions> = {}): Promise<OwnedServer> {
  const server = new Server(testServeOptions(configDir, { agent: 'lanstream-security-test', ...overrides }));
  const ready = await server.start();
  return { server, ready, close: () => server.close() };
}
