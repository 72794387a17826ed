/**
 * Connections that never start TLS (or stall in it) against the real Listener on 127.0.0.x: they are
 * bounded per address and in all, a flood from one address only ever evicts its own oldest sockets,
 * and a real viewer's handshake still gets through during the flood. Also the slot policy alone.
 */
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Listener } from '../../src/server/listener.js';
import { handshakeToEvict } from '../../src/server/handshake-slots.js';
import { loadOrCreateIdentity } from '../../src/server/identity.js';
import { ALPN_PROTOCOL } from '../../src/protocol/constants.js';
import { captureLogger } from '../helpers/log-capture.js';
import { sleep, waitFor } from '../helpers/process.js';

t.test("slot policy: own oldest beyond the per-address limit, the busiest address's oldest beyond the total", async (t) => {
  const p = (address: string, sinceMs: number) => ({ address, sinceMs });
  const limits = { total: 4, perAddress: 2 };
  t.equal(handshakeToEvict([p('a', 1)], 'a', limits), undefined, 'room: nobody goes');
  const a1 = p('a', 1);
  t.equal(handshakeToEvict([p('a', 5), a1, p('b', 0)], 'a', limits), a1, "a's own oldest, not b's older one");
  const b0 = p('b', 2);
  const full = [p('a', 1), p('b', 3), b0, p('c', 0)];
  const victim = handshakeToEvict(full, 'd', limits);
  t.equal(victim, b0, 'full: the oldest of the address holding the most slots (b), not the oldest overall (c)');
});

t.test('silent connections are bounded; a real viewer still gets through', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ls-tls-slots-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const identity = await loadOrCreateIdentity({ configDir: dir });
  const log = captureLogger('info');
  const accepted: tls.TLSSocket[] = [];
  const listener = new Listener({
    host: '127.0.0.1',
    port: 0,
    insecure: false,
    certPem: identity.certPem,
    keyPem: identity.keyPem,
    logger: log.logger,
    tlsHandshakeLimits: { total: 16, perAddress: 8 },
    onConnection: (socket) => accepted.push(socket as tls.TLSSocket),
  });
  const port = await listener.start();
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    for (const s of accepted) s.destroy();
    await listener.close();
  });
  const closedByServer = new Set<net.Socket>();
  const silent = async (localAddress: string): Promise<net.Socket> => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => undefined);
    s.on('close', () => closedByServer.add(s));
    await new Promise((resolve) => s.once('connect', resolve));
    sockets.push(s);
    return s;
  };

  // A neighbour with 4 stalled connections first, then a flood of 60 from another address.
  const neighbour: net.Socket[] = [];
  for (let i = 0; i < 4; i++) neighbour.push(await silent('127.0.0.2'));
  const flood: net.Socket[] = [];
  for (let i = 0; i < 60; i++) flood.push(await silent('127.0.0.3'));
  await waitFor(() => flood.filter((s) => closedByServer.has(s)).length >= 52, 3000, 20, 'flood sockets closed by the server');
  t.equal(
    flood.filter((s) => closedByServer.has(s)).length,
    52,
    '60 silent sockets from one address: all but the newest 8 closed at once (not after the 5 s timeout)',
  );
  t.ok(
    flood.slice(-8).every((s) => !closedByServer.has(s)),
    'the ones kept are the newest',
  );
  t.ok(
    neighbour.every((s) => !closedByServer.has(s)),
    "the neighbour's 4 were not touched by someone else's flood",
  );
  t.equal(listener.tlsHandshakesInProgress, 12, 'server holds 8 + 4 unfinished handshakes');

  // A real viewer from the flooding address itself: admitted (its own oldest stalled socket goes).
  const started = Date.now();
  const tcp = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
  const viewer = tls.connect({ socket: tcp, ALPNProtocols: [ALPN_PROTOCOL], rejectUnauthorized: false });
  viewer.on('error', () => undefined);
  t.teardown(() => viewer.destroy());
  await new Promise((resolve, reject) => {
    viewer.once('secureConnect', resolve);
    viewer.once('close', () => reject(new Error('viewer closed before TLS finished')));
  });
  await waitFor(() => accepted.length === 1, 2000, 10, 'the listener hands the TLS socket on');
  t.ok(Date.now() - started < 2000, `the viewer's handshake finished in ${Date.now() - started} ms during the flood`);
  await sleep(50);
  t.equal(listener.tlsHandshakesInProgress, 11, 'its slot was freed when TLS finished (one stalled socket made room)');
  const warned = log.matching('unfinished TLS handshake');
  t.ok(warned.length >= 1 && warned.length <= 2, `evictions logged as counts, not one line each (${warned.length} lines for 53 evictions)`);
});
