/**
 * 1000 hostile byte streams from 20 concurrent connections (20 loopback addresses) against a real
 * in-process server over TLS while a good viewer watches: its frame rate must not drop, the
 * server's memory must stay bounded, and nothing may escape as an unhandled error.
 */
import t from 'tap';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { hostileStream, seededRandom, type HostileKind } from '../helpers/hostile-streams.js';
import { captureLogger } from '../helpers/log-capture.js';
import { RawClient } from '../helpers/raw-client.js';
import { sleep, waitFor } from '../helpers/process.js';

const STREAMS = Number(process.env.FLOOD_STREAMS ?? 1000);
const LANES = 20;

t.test(`${STREAMS} hostile streams from ${LANES} connections: the good viewer keeps its frame rate`, async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));

  const log = captureLogger('warn');
  const ts = await startTestServer({ logger: log.logger, maxPendingHandshakes: 32 });
  t.teardown(() => ts.close());
  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 10, 5000, 50, 'video for the good viewer');

  let beforeFrames = good.video.length;
  await sleep(2000);
  const fpsBefore = (good.video.length - beforeFrames) / 2;
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  t.teardown(() => clearInterval(rssTimer));

  const rand = seededRandom(Number(process.env.FLOOD_SEED ?? 20240601));
  const kinds = new Map<HostileKind, number>();
  const outcomes = { closedByServer: 0, media: 0, welcomed: 0, connectFailed: 0 };
  const openKinds = new Map<string, number>();
  let next = 0;
  const startedMs = Date.now();
  beforeFrames = good.video.length;
  const lane = async (i: number) => {
    while (next < STREAMS) {
      next++;
      const s = hostileStream(rand);
      kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + 1);
      let c: RawClient;
      try {
        c = await RawClient.connect({ port: ts.ready.port, localAddress: `127.0.0.${10 + i}` });
      } catch {
        outcomes.connectFailed++;
        continue;
      }
      c.send(s.bytes);
      const closed = await c.waitClosed(300);
      if (closed) {
        outcomes.closedByServer++;
      } else {
        // A valid prefix (e.g. a HELLO with extra fields, or < 8 bytes) is waited on until the hello timeout.
        const seen = `${s.kind}:${c.messages.map((m) => m.type).join('+') || 'nothing'}`;
        openKinds.set(seen, (openKinds.get(seen) ?? 0) + 1);
      }
      outcomes.media += c.mediaCount();
      if (c.messages.some((m) => m.type === 'welcome')) outcomes.welcomed++;
      c.destroy();
    }
  };
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
  const floodMs = Date.now() - startedMs;
  const fpsDuring = (good.video.length - beforeFrames) / (floodMs / 1000);
  clearInterval(rssTimer);

  t.comment(
    `kinds: ${JSON.stringify(Object.fromEntries(kinds))}; outcomes: ${JSON.stringify(outcomes)}; still open after 300 ms: ${JSON.stringify(Object.fromEntries(openKinds))}; ${floodMs} ms`,
  );
  t.equal(outcomes.welcomed + outcomes.media, 0, 'no hostile stream was welcomed or got a media byte');
  const mustClose: HostileKind[] = ['huge-length', 'oversized-json', 'wrong-proof'];
  const openMalformed = [...openKinds.keys()].filter((k) => mustClose.some((m) => k.startsWith(`${m}:`)));
  t.same(openMalformed, [], 'every huge length, oversized JSON and wrong proof was closed by the server within 300 ms');
  const openSaw = [...openKinds.keys()].map((k) => k.split(':')[1]);
  t.ok(
    openSaw.every((x) => x === 'nothing' || x === 'challenge'),
    `connections still open (valid prefixes) got at most a CHALLENGE: ${JSON.stringify(Object.fromEntries(openKinds))}`,
  );
  // 70 %: here the 20 attacking TLS clients and the good viewer run on the server's own thread, which a
  // real attack's clients do not. Full runs on 2 cores read 26.0–28.6 fps of 30 (87–95 %), and once 23.8
  // (79 %) in a clean-clone CI run; a server that stalls on hostile streams loses far more.
  t.ok(fpsDuring >= fpsBefore * 0.7, `frame rate during the flood ${fpsDuring.toFixed(1)} fps ≥ 70% of before (${fpsBefore.toFixed(1)} fps)`);
  const growthMb = (rssPeak - rssBefore) / 1e6;
  t.ok(growthMb < 150, `RSS grew by ${growthMb.toFixed(0)} MB at most during the flood`);
  t.same(unhandled, [], 'no unhandled rejection');
  t.equal(log.lines.filter((l) => l.level >= 50).length, 0, 'no error-level log line on the server');
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 1, 'the good viewer is still live');
  await waitFor(() => ts.server.sessions().length === 1, 3000, 50, 'hostile sessions all gone');
  t.pass('every hostile session was cleaned up');
});
