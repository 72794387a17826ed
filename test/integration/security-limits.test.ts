/**
 * Hostile clients against a real in-process server over TLS on 127.0.0.1: plain TCP, HTTP, wrong
 * ALPN, slowloris (silent and trickling, at the TLS and at the lanstream layer), more stalled
 * handshakes than there are slots, more viewers than --max-viewers, and a viewer that floods PINGs
 * without reading. Each ends that one connection with a reason; a good viewer keeps streaming.
 */
import t from 'tap';
import { encodeMessage } from '../../src/protocol/encoder.js';
import { DEFAULT_SESSION_LIMITS } from '../../src/server/session.js';
import { startTestServer, testViewer, type CountingViewer } from '../helpers/lanstream.js';
import { captureLogger } from '../helpers/log-capture.js';
import { RawClient } from '../helpers/raw-client.js';
import { sleep, waitFor } from '../helpers/process.js';

/** Frames a viewer received during `ms` (its frame rate × seconds). */
async function framesDuring(v: CountingViewer, ms: number): Promise<number> {
  const before = v.video.length;
  await sleep(ms);
  return v.video.length - before;
}

/**
 * The frames in 1 s a viewer must still get after the abuse: 24 (of the source's 30), or 80 % of what
 * it got before the abuse began on a machine too busy to capture that many (a full suite on 2 cores
 * next to other CPU-heavy files); the abuse must not be what slows it.
 */
function keepsStreaming(baseline: number): number {
  return Math.min(24, Math.floor(baseline * 0.8));
}

const helloBytes = encodeMessage({
  type: 'hello',
  body: { version: 1, agent: 'slow', clientNonce: 'ab'.repeat(32), wantVideo: true, wantAudio: true },
});

t.test('plain TCP, HTTP and other-ALPN clients are closed with a reason; a good viewer keeps streaming', async (t) => {
  const log = captureLogger('info');
  const ts = await startTestServer({ logger: log.logger });
  t.teardown(() => ts.close());
  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 5, 5000, 50, 'video for the good viewer');
  const baseline = await framesDuring(good, 1000);
  const port = ts.ready.port;

  const plainCase = async (label: string, bytes: Buffer | string) => {
    const c = await RawClient.connect({ port, plain: true, localAddress: '127.0.0.2' });
    c.send(bytes);
    const closed = await c.waitClosed(3000);
    t.ok(closed, `${label}: closed by the server (${closed?.afterMs} ms)`);
    c.destroy();
    return c;
  };
  const http = await plainCase('plain HTTP request', 'GET / HTTP/1.1\r\nHost: cam\r\n\r\n');
  t.equal(http.receivedBytes, 0, 'plain HTTP: not one byte of lanstream (nor of anything else)');
  const insecureViewer = await plainCase('an --insecure viewer (plain HELLO)', helloBytes);
  t.equal(insecureViewer.messages.length, 0, 'plain HELLO: no CHALLENGE, nothing');
  const tlsLooking = await plainCase('TLS-framed garbage', Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]));
  t.equal(tlsLooking.received[0]?.[0], 0x15, 'TLS-framed garbage gets a TLS alert record (0x15)');

  for (const alpn of [['http/1.1'], ['h2']]) {
    const err = await RawClient.connect({ port, alpn }).then(
      (c) => {
        c.destroy();
        return null;
      },
      (e: Error) => e,
    );
    t.match(err, { message: /no application protocol/ }, `ALPN ${alpn[0]}: the TLS handshake fails with alert no_application_protocol`);
  }

  const noAlpn = await RawClient.connect({ port, alpn: null });
  noAlpn.send('GET / HTTP/1.1\r\nHost: cam\r\n\r\n');
  t.ok(await noAlpn.waitClosed(3000), 'TLS without ALPN (an HTTPS client): closed');
  t.equal(noAlpn.receivedBytes, 0, 'TLS without ALPN: no lanstream byte');

  await sleep(1100); // failures are counted and logged at most once a second
  const handshakeFailures = log.matching('failed the TLS handshake');
  const counted = handshakeFailures.reduce((sum, l) => sum + Number(l.failed), 0);
  t.ok(counted >= 5, `every failed TLS handshake is counted in the log (${counted} in ${handshakeFailures.length} lines)`);
  t.ok(handshakeFailures.length <= 3, 'as a few summary lines, not one line each');
  t.ok(
    handshakeFailures.every((l) => Array.isArray(l.addresses) && typeof l.reasons === 'object'),
    'with the addresses and the reasons',
    { lines: handshakeFailures },
  );
  t.ok(
    handshakeFailures.some((l) => (l.addresses as string[]).includes('127.0.0.1')),
    "the address is the client's",
  );
  const reasons = handshakeFailures.flatMap((l) => Object.keys(l.reasons as Record<string, number>));
  t.ok(
    reasons.some((r) => /http.?request/i.test(r)),
    `the reasons say one was an HTTP request (${reasons.join('; ')})`,
  );
  t.equal(log.matching('does not speak lanstream').length, 1, 'the no-ALPN client is logged as not speaking lanstream');

  const fps = await framesDuring(good, 1000);
  t.ok(fps >= keepsStreaming(baseline), `the good viewer still gets ~30 fps after all that (${fps} frames in 1 s, ${baseline} before)`);
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 1, 'the good viewer is still live');
});

t.test('slowloris with the default limits: silent and trickling clients are closed after the hello timeout', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const port = ts.ready.port;
  const helloTimeoutMs = DEFAULT_SESSION_LIMITS.helloTimeoutMs;
  t.equal(helloTimeoutMs, 5000, 'documented hello timeout: 5 s');

  const silent = await RawClient.connect({ port });
  const trickle = await RawClient.connect({ port });
  t.teardown(() => (silent.destroy(), trickle.destroy()));
  let sent = 0;
  const timer = setInterval(() => trickle.send(helloBytes.subarray(sent, ++sent)), 1000);
  t.teardown(() => clearInterval(timer));
  // TLS layer: TCP connected, no ClientHello ever (the listener's 5 s handshake timeout).
  const tcpOnly = await RawClient.connect({ port, plain: true });
  t.teardown(() => tcpOnly.destroy());

  const [s, tr, tcp] = await Promise.all([silent.waitClosed(8000), trickle.waitClosed(8000), tcpOnly.waitClosed(8000)]);
  clearInterval(timer);
  t.ok(s && s.afterMs >= helloTimeoutMs - 300 && s.afterMs < helloTimeoutMs + 1500, `silent TLS client closed after ${s?.afterMs} ms`);
  t.equal(silent.bye()?.reason, 'timeout', 'with BYE timeout');
  t.ok(tr && tr.afterMs >= helloTimeoutMs - 300 && tr.afterMs < helloTimeoutMs + 1500, `1 byte/s client closed after ${tr?.afterMs} ms (sent ${sent} bytes)`);
  t.equal(trickle.bye()?.reason, 'timeout', 'with BYE timeout');
  t.ok(tcp && tcp.afterMs >= 4500 && tcp.afterMs < 7000, `TCP client that never starts TLS closed after ${tcp?.afterMs} ms`);
  await waitFor(() => ts.server.sessions().length === 0, 1000, 20, 'sessions gone after the timeout');
  t.pass('no session left behind');
});

t.test('more stalled handshakes than slots: the oldest stalled ones are dropped, a good viewer gets in', async (t) => {
  const log = captureLogger('info');
  const ts = await startTestServer({
    logger: log.logger,
    maxPendingHandshakes: 8,
    maxPendingPerAddress: 4,
    sessionLimits: { helloTimeoutMs: 10_000 },
  });
  t.teardown(() => ts.close());
  const port = ts.ready.port;
  const stalled: RawClient[] = [];
  t.teardown(() => stalled.forEach((c) => c.destroy()));
  const maxPending = () => ts.server.sessions().filter((s) => s.state === 'handshake').length;
  let peakPending = 0;
  const sampler = setInterval(() => (peakPending = Math.max(peakPending, maxPending())), 5);
  t.teardown(() => clearInterval(sampler));

  // One address opens 10 (per-address cap 4), then three more addresses 4 each (total cap 8).
  for (let i = 0; i < 10; i++) stalled.push(await RawClient.connect({ port, localAddress: '127.0.0.2' }));
  for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5']) {
    for (let i = 0; i < 4; i++) stalled.push(await RawClient.connect({ port, localAddress: a }));
  }
  await sleep(300);
  const dropped = stalled.filter((c) => c.bye()?.reason === 'server-full');
  t.ok(dropped.length >= 14, `the oldest stalled handshakes were dropped with BYE server-full (${dropped.length} of ${stalled.length})`);
  t.match(dropped[0]?.bye()?.message ?? '', /too many handshakes in progress/, 'the BYE says why');
  t.ok(peakPending <= 9, `pending handshakes stayed at the cap (peak ${peakPending}, cap 8 + the one being admitted)`);

  const startedMs = Date.now();
  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 0, 5000, 50, 'video for the good viewer');
  t.ok(Date.now() - startedMs < 3000, `the good viewer got in while the stalls hold every slot (${Date.now() - startedMs} ms)`);
  t.ok(log.matching('stalled handshake').length <= 2, 'the drops are logged in summary, not once per connection');
});

t.test('--max-viewers 2: the third viewer gets BYE server-full, the first two keep streaming', async (t) => {
  const ts = await startTestServer({ maxViewers: 2 });
  t.teardown(() => ts.close());
  const a = testViewer(ts);
  const b = testViewer(ts);
  t.teardown(() => Promise.all([a.viewer.close(), b.viewer.close()]));
  await Promise.all([a.viewer.start(), b.viewer.start()]);
  await waitFor(() => a.video.length > 3 && b.video.length > 3, 5000, 50, 'video for the first two');
  const [ba, bb] = await Promise.all([framesDuring(a, 1000), framesDuring(b, 1000)]);

  const c = testViewer(ts);
  const states: string[] = [];
  c.viewer.on('state', (s) => states.push(s));
  const err = await c.viewer.start().then(
    () => null,
    (e: unknown) => e as Error & { details: Record<string, unknown> },
  );
  await c.viewer.close();
  t.match(err, { code: 'LS_ERR_SERVER_CLOSED', message: /server-full.*already has 2 viewers \(--max-viewers\)/ }, 'a clear refusal');
  t.equal(err?.details.reason, 'server-full', 'with the stable reason');
  t.notOk(states.includes('live'), 'the third viewer never looked live');
  t.equal(c.video.length + c.audio.length, 0, 'and got no media');

  const [fa, fb] = await Promise.all([framesDuring(a, 1000), framesDuring(b, 1000)]);
  t.ok(fa >= keepsStreaming(ba) && fb >= keepsStreaming(bb), `the first two keep streaming (${fa} and ${fb} frames in 1 s, ${ba} and ${bb} before)`);
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 2);
});

t.test('a client that says BYE first and keeps the connection open is closed anyway', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  // Half-open clients: the server's end of the connection is not answered with theirs.
  const clients = await Promise.all(
    Array.from({ length: 10 }, () => RawClient.connect({ port: ts.ready.port, localAddress: '127.0.0.3', allowHalfOpen: true })),
  );
  t.teardown(() => clients.forEach((c) => c.destroy()));
  await waitFor(() => ts.server.sessions().length === 10, 2000, 20, 'ten sessions on the server');
  for (const c of clients) c.sendMessage({ type: 'bye', body: { reason: 'client-quit', message: 'bye first' } });
  // The sessions end when the server's socket closes: none may hold one without a key.
  await waitFor(() => ts.server.sessions().length === 0, 3000, 20, 'every BYE-first session closed by the server');
  t.pass('all 10 closed within 3 s');
});

t.test('a viewer that floods PINGs and never reads is closed; the server stays bounded', async (t) => {
  // The default byte limit (9 MiB): PONGs are small, and what each queued write costs beyond its
  // bytes must not let a non-reader grow the server by ~100 MB before that limit is reached.
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 3, 5000, 50, 'video for the good viewer');
  const baseline = await framesDuring(good, 1000);

  const rogue = await RawClient.connect({ port: ts.ready.port, localAddress: '127.0.0.2' });
  t.teardown(() => rogue.destroy());
  rogue.hello({ wantVideo: false, wantAudio: false });
  await rogue.waitFor('challenge', 2000);
  rogue.auth(ts.ready.accessKey);
  t.ok(await rogue.waitFor('welcome', 2000), 'the rogue viewer has the key');
  rogue.socket.pause(); // never read again
  const rssBefore = process.memoryUsage().rss;
  const ping = encodeMessage({ type: 'ping', id: 1, sendTimeUs: 1 });
  const batch = Buffer.concat(Array.from({ length: 10_000 }, () => ping)); // 200 kB of PINGs
  let sentBytes = 0;
  let peakRss = rssBefore;
  while (!rogue.isClosed && sentBytes < 200 * 1024 * 1024) {
    if (!rogue.socket.write(batch)) await new Promise((r) => setTimeout(r, 5));
    sentBytes += batch.length;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    await new Promise((r) => setImmediate(r));
  }
  const closed = await rogue.waitClosed(5000);
  t.ok(closed, `the server closed the non-reading viewer (after ${(sentBytes / 1e6).toFixed(1)} MB of PINGs)`);
  // An absolute bound on purpose: memory does not vary with machine load as speed does, and 25 MB is
  // the 9 MiB byte limit (maxQueuedBytes) with room. Measured 0 MB (closed after 0.4 MB of PINGs);
  // +55 MB without MAX_PONGS_QUEUED (closed by the byte limit after 10 MB). Relative to the bytes sent
  // it would compare 0.4 MB with the test process's own RSS noise.
  const growthMb = (peakRss - rssBefore) / 1e6;
  t.ok(growthMb < 25, `RSS grew by ${growthMb.toFixed(0)} MB at most`);
  const fps = await framesDuring(good, 1000);
  t.ok(fps >= keepsStreaming(baseline), `the good viewer kept ~30 fps (${fps} frames in 1 s, ${baseline} before)`);
});
