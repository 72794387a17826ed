/**
 * Test helper: a machine in the middle. It listens on its own port and relays to the real server in
 * one of two modes, switchable at any time (like an ARP spoof that starts mid-way):
 *  - 'transparent': a plain TCP pipe (an honest router: the viewer talks TLS to the real server);
 *  - 'intercept': terminates the viewer's TLS with its own self-signed certificate (ALPN
 *    lanstream/1), opens its own TLS session to the real server and relays the plaintext both ways,
 *    decoding what the server sends so a test can assert that no media ever reached the proxy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ALPN_PROTOCOL } from '../../src/protocol/constants.js';
import { MessageDecoder } from '../../src/protocol/decoder.js';
import { loadOrCreateIdentity } from '../../src/server/identity.js';

export type MitmMode = 'transparent' | 'intercept';

export interface MitmProxy {
  port: number;
  /** Fingerprint of the proxy's own certificate ("sha256:…"). */
  fingerprint: string;
  mode: MitmMode;
  /** Message types the real server sent through the proxy in intercept mode, in order. */
  serverMessages: string[];
  /** Intercepted connections so far. */
  intercepted: number;
  /** Intercepted connections (TLS with the viewer done) whose viewer side has closed: none of their bytes is still to come. */
  interceptedClosed: number;
  /** TCP connections from viewers, and how many of them have closed (some end before TLS is done). */
  connections: number;
  connectionsClosed: number;
  /** Plaintext bytes viewers sent through the proxy in intercept mode (a HELLO is 100 or so). */
  viewerBytes: number;
  close(): Promise<void>;
}

export async function startMitmProxy(o: { upstreamPort: number; upstreamHost?: string; mode?: MitmMode }): Promise<MitmProxy> {
  const upstreamHost = o.upstreamHost ?? '127.0.0.1';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-mitm-'));
  const identity = await loadOrCreateIdentity({ configDir: dir });
  const sockets = new Set<net.Socket>();
  const track = <S extends net.Socket>(s: S): S => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    return s;
  };

  const tlsTerminator = tls.createServer(
    { cert: identity.certPem, key: identity.keyPem, minVersion: 'TLSv1.3', ALPNProtocols: [ALPN_PROTOCOL] },
    (viewerSide) => {
      proxy.intercepted++;
      track(viewerSide);
      const serverSide = track(
        tls.connect({ host: upstreamHost, port: o.upstreamPort, rejectUnauthorized: false, ALPNProtocols: [ALPN_PROTOCOL], minVersion: 'TLSv1.3' }),
      );
      const decoder = new MessageDecoder({ direction: 'server-to-client' });
      serverSide.on('data', (chunk: Buffer) => {
        try {
          for (const m of decoder.push(chunk)) proxy.serverMessages.push(m.type);
        } catch {
          proxy.serverMessages.push('undecodable');
        }
        viewerSide.write(chunk);
      });
      viewerSide.on('data', (chunk: Buffer) => {
        proxy.viewerBytes += chunk.length;
        serverSide.write(chunk);
      });
      viewerSide.once('close', () => {
        proxy.interceptedClosed++;
        serverSide.destroy();
      });
      serverSide.once('close', () => viewerSide.destroy());
    },
  );
  tlsTerminator.on('tlsClientError', () => undefined);

  const listener = net.createServer((socket) => {
    track(socket);
    proxy.connections++;
    socket.once('close', () => proxy.connectionsClosed++);
    if (proxy.mode === 'intercept') {
      tlsTerminator.emit('connection', socket);
      return;
    }
    const upstream = track(net.connect({ host: upstreamHost, port: o.upstreamPort }));
    socket.pipe(upstream).pipe(socket);
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => socket.destroy());
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));

  const proxy: MitmProxy = {
    port: (listener.address() as net.AddressInfo).port,
    fingerprint: identity.fingerprint,
    mode: o.mode ?? 'intercept',
    serverMessages: [],
    intercepted: 0,
    interceptedClosed: 0,
    connections: 0,
    connectionsClosed: 0,
    viewerBytes: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return proxy;
}
