/**
 * A server that runs for days while viewers come and go (a cron job's `watch --snapshot` every
 * minute, viewers on Wi-Fi that vanish without a FIN, port scanners, wrong keys) must hold nothing
 * for a viewer that left. One in-process server over real TLS on 127.0.0.1 and one good viewer that
 * stays; a few hundred short connections of every kind come and go around it; afterwards the server
 * must be back where it was: the same sessions, the same listeners on every emitter it owns, the
 * same sockets and timers, no Session (or client Viewer) object left on the heap — and the good
 * viewer was never starved meanwhile.
 *
 * Counts, not heap size: each per-viewer leak (a map entry, an uncleared timer, a listener) leaves
 * one more of something per connection, so the check fails deterministically after hundreds of them.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import v8 from 'node:v8';
import t from 'tap';
import { ALPN_PROTOCOL } from '../../src/protocol/constants.js';
import { nowUs } from '../../src/shared/clock.js';
import { Session } from '../../src/server/session.js';
import { ViewerConnection } from '../../src/client/connection.js';
import { takeSnapshot } from '../../src/client/snapshot.js';
import { Viewer } from '../../src/client/watch.js';
import { framesBetween, startTestServer, testViewer, type TestServer } from '../helpers/lanstream.js';
import { captureLogger } from '../helpers/log-capture.js';
import { sleep, waitFor } from '../helpers/process.js';
import { RawClient } from '../helpers/raw-client.js';
import { seededRandom } from '../helpers/hostile-streams.js';

const CONNECTIONS = Number(process.env.CHURN_CONNECTIONS ?? 300);
/** Connections in flight at once: enough to overlap every kind, few enough to stay a churn, not a flood. */
const CONCURRENCY = 6;
const SEED = Number(process.env.CHURN_SEED ?? 20240917);
/** Hostile and stalling connections come from their own loopback addresses (127.0.0.2…41), as another machine would. */
const HOSTILE_ADDRESSES = 40;

type Kind =
  | 'clean' // a Viewer goes live, gets media, closes (BYE)
  | 'snapshot' // watch --snapshot: a video-only Viewer takes one picture and leaves
  | 'close-connecting' // a Viewer closed before it was live
  | 'abrupt' // live, then the socket is destroyed (no BYE)
  | 'tcp-scan' // TCP connect, close (port scanner)
  | 'tls-abort' // TLS handshake started, socket destroyed in the middle
  | 'not-tls' // plain text to the TLS port
  | 'silent' // TLS done, never a HELLO, leaves after a while
  | 'garbage' // TLS done, random bytes
  | 'hello-only' // HELLO, never AUTH, leaves after a while
  | 'wrong-key'; // a wrong proof

const KIND_WEIGHTS: [Kind, number][] = [
  ['clean', 14],
  ['snapshot', 6],
  ['close-connecting', 4],
  ['abrupt', 10],
  ['tcp-scan', 12],
  ['tls-abort', 12],
  ['not-tls', 6],
  ['silent', 8],
  ['garbage', 8],
  ['hello-only', 6],
  ['wrong-key', 10],
];

function pickKind(rand: () => number): Kind {
  const total = KIND_WEIGHTS.reduce((n, [, w]) => n + w, 0);
  let r = rand() * total;
  for (const [kind, w] of KIND_WEIGHTS) if ((r -= w) < 0) return kind;
  return 'clean';
}

/** Node's own list of the handles keeping the loop alive, as objects (sockets, servers, child processes). */
function activeHandles(): unknown[] {
  return (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
}

/** Listener count per event on every emitter the process holds open (the TLS server, sockets, ffmpeg's pipes) plus these. */
function listenerCounts(extra: EventEmitter[]): Map<EventEmitter, Record<string, number>> {
  const out = new Map<EventEmitter, Record<string, number>>();
  for (const e of [...extra, ...activeHandles()]) {
    if (!(e instanceof EventEmitter) || out.has(e)) continue;
    out.set(e, Object.fromEntries(e.eventNames().map((name) => [String(name), e.listenerCount(name)])));
  }
  return out;
}

function describeEmitter(e: EventEmitter): string {
  if (e === process) return 'process';
  if (e instanceof tls.Server) return 'the TLS server';
  if (e instanceof Viewer) return 'the good Viewer';
  if (e instanceof ViewerConnection) return 'the good ViewerConnection';
  if (e instanceof net.Socket) return `socket ${e.localPort ?? 'pipe'}→${e.remotePort ?? ''}`;
  return e.constructor.name;
}

/** The emitters present before and after whose listener count for some event grew. */
function grownListeners(before: Map<EventEmitter, Record<string, number>>, after: Map<EventEmitter, Record<string, number>>): string[] {
  const grown: string[] = [];
  for (const [e, counts] of after) {
    const was = before.get(e);
    if (!was) continue;
    for (const [name, n] of Object.entries(counts)) if (n > (was[name] ?? 0)) grown.push(`${describeEmitter(e)} '${name}': ${was[name] ?? 0} → ${n}`);
  }
  return grown;
}

/** process.getActiveResourcesInfo() as counts per type (Timeout, TCPSocketWrap, TLSWrap …). */
function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Types whose count is above the baseline: [type, before, now]. */
function grownResources(before: Record<string, number>, now: Record<string, number>): [string, number, number][] {
  return Object.entries(now)
    .filter(([type, n]) => n > (before[type] ?? 0))
    .map(([type, n]) => [type, before[type] ?? 0, n]);
}

/**
 * Live instances of a class on the heap, after a full GC (v8.queryObjects, Node ≥ 20.13; null where
 * unavailable). It stops the process for about a second: done only while no viewer is live, or at
 * the end, or the good viewer's dead-link timer would count the pause as a dead link.
 */
function heapCount(ctor: abstract new (...args: never[]) => unknown): number | null {
  const query = (v8 as { queryObjects?: (c: unknown, o: { format: 'count' }) => number }).queryObjects;
  return typeof query === 'function' ? query(ctor, { format: 'count' }) : null;
}

/** Node's Timeout class (not exported): every setTimeout/setInterval, unref'd or not, until it is cleared or has fired. */
const Timeout = (() => {
  const timer = setTimeout(() => undefined, 0);
  clearTimeout(timer);
  return timer.constructor as abstract new (...args: never[]) => unknown;
})();

/**
 * Socket objects on the heap that are not open (not an active handle): the prototypes, the stdio
 * streams' — and any closed socket something still refers to (a map entry never deleted).
 */
function closedSocketsOnHeap(): number | null {
  const onHeap = heapCount(net.Socket);
  return onHeap === null ? null : onHeap - activeHandles().filter((h) => h instanceof net.Socket).length;
}

interface Tally {
  kinds: Partial<Record<Kind, number>>;
  /** Honest connections that did not get what a user would (live + media, or a picture). */
  honestFailures: string[];
  /** Hostile connections that were welcomed or got media. */
  hostileWelcomed: string[];
}

/** Resolves when the socket is closed, or after timeoutMs (then destroyed by us). */
function closedWithin(socket: net.Socket, timeoutMs: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** One short-lived connection of `kind`; never throws (what went wrong goes into the tally). */
async function churnOne(ts: TestServer, kind: Kind, rand: () => number, tally: Tally, dir: string, n: number): Promise<void> {
  const port = ts.ready.port;
  const hostile = `127.0.0.${2 + Math.floor(rand() * HOSTILE_ADDRESSES)}`;
  const delay = (maxMs: number) => sleep(Math.floor(rand() * maxMs));
  const honest = async (what: () => Promise<void>) => {
    try {
      await what();
    } catch (err) {
      tally.honestFailures.push(`${kind} #${n}: ${(err as Error).message}`);
    }
  };
  switch (kind) {
    case 'clean':
      return honest(async () => {
        const audioOnly = rand() < 0.1;
        const v = testViewer(ts, { video: !audioOnly, audio: audioOnly || rand() < 0.7 });
        try {
          await v.viewer.start();
          await waitFor(() => v.video.length + v.audio.length > 0, 5000, 10, 'media for a churn viewer');
          await delay(150);
        } finally {
          await v.viewer.close();
        }
      });
    case 'snapshot':
      return honest(async () => {
        const v = testViewer(ts, { audio: false });
        try {
          await v.viewer.start();
          const shot = await takeSnapshot(v.viewer, { file: path.join(dir, `pic-${n}.jpg`), timeoutMs: 5000 });
          if (shot.width !== 320) throw new Error(`snapshot ${shot.width}x${shot.height}`);
        } finally {
          await v.viewer.close();
        }
      });
    case 'close-connecting': {
      const v = testViewer(ts);
      const started = v.viewer.start().then(
        () => 'live',
        () => 'refused',
      );
      await delay(20);
      await v.viewer.close();
      await started;
      return;
    }
    case 'abrupt':
      return honest(async () => {
        const c = await RawClient.connect({ port });
        try {
          c.hello({ wantAudio: rand() < 0.7 });
          if (!(await c.waitFor('challenge', 5000))) throw new Error('no CHALLENGE');
          c.auth(ts.ready.accessKey);
          if (!(await c.waitFor('welcome', 5000))) throw new Error(`no WELCOME (${JSON.stringify(c.bye())})`);
          await waitFor(() => c.mediaCount() > 0, 5000, 10, 'media for an abrupt viewer');
          await delay(200);
        } finally {
          c.destroy(); // no BYE: the viewer's process crashed, or its laptop lid closed
        }
      });
    case 'tcp-scan': {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: hostile });
      s.on('error', () => undefined);
      await new Promise((resolve) => (s.once('connect', resolve), s.once('close', resolve)));
      await delay(100);
      s.destroy();
      return;
    }
    case 'tls-abort': {
      const raw = net.connect({ host: '127.0.0.1', port, localAddress: hostile });
      const s = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: [ALPN_PROTOCOL] });
      s.on('error', () => undefined);
      raw.on('error', () => undefined);
      await new Promise((resolve) => raw.once('connect', resolve).once('close', resolve));
      await delay(6); // the ClientHello is out; the server is somewhere in its part of the handshake
      raw.destroy();
      s.destroy();
      return;
    }
    case 'not-tls': {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: hostile });
      s.on('error', () => undefined);
      s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: camera\r\n\r\n'));
      await closedWithin(s, 3000);
      return;
    }
    case 'silent':
    case 'garbage':
    case 'hello-only':
    case 'wrong-key': {
      let c: RawClient;
      try {
        c = await RawClient.connect({ port, localAddress: hostile });
      } catch {
        return; // evicted while still in the TLS handshake (another hostile one from this address): allowed
      }
      try {
        if (kind === 'silent') await delay(400);
        else if (kind === 'garbage') {
          c.send(randomBytes(1 + Math.floor(rand() * 200)));
          await c.waitClosed(3000);
        } else {
          c.hello();
          if (await c.waitFor('challenge', 3000)) {
            if (kind === 'hello-only') await delay(400);
            else {
              c.auth(randomBytes(16).toString('base64url'));
              await c.waitClosed(3000);
            }
          }
        }
        if (c.messages.some((m) => m.type === 'welcome') || c.mediaCount() > 0) tally.hostileWelcomed.push(`${kind} #${n}`);
      } finally {
        c.destroy();
      }
      return;
    }
  }
}

t.test(`${CONNECTIONS} viewers come and go around one that stays: the server ends up holding only the one that stays`, async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-churn-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const log = captureLogger('info');
  // Room for the good viewer, the churn's honest ones and the vanishing ones: a refusal is not what is tested here.
  const ts = await startTestServer({ logger: log.logger, maxViewers: 16 });
  t.teardown(() => ts.close());
  // Before any viewer: the pause harms no one.
  const closedSocketsBefore = closedSocketsOnHeap();
  const timersBefore = heapCount(Timeout);
  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 10 && good.audio.length > 10, 8000, 20, 'media for the good viewer');

  // Baseline: the good viewer live and steady; a first churn connection of each honest kind has run
  // (a module's lazy import, sharp's thread pool, a one-off timer are not per viewer).
  const rand = seededRandom(SEED);
  const tally: Tally = { kinds: {}, honestFailures: [], hostileWelcomed: [] };
  for (const kind of ['clean', 'snapshot', 'abrupt', 'wrong-key'] as const) await churnOne(ts, kind, seededRandom(SEED), tally, dir, -1);
  // (Not a failure here if they stay: what is left after the churn is asserted below.)
  await waitFor(() => ts.server.sessions().length === 1, 5000, 20, 'warm-up connections gone').catch(() => undefined);
  await sleep(1500); // the BYE linger (1 s) and the client's 500 ms end timers of the warm-up ones
  const fpsFromUs = nowUs();
  await sleep(1500);
  const beforeUs = nowUs();
  const videoBefore = framesBetween(good.video, fpsFromUs, beforeUs).length / ((beforeUs - fpsFromUs) / 1e6);
  const audioBefore = framesBetween(good.audio, fpsFromUs, beforeUs).length / ((beforeUs - fpsFromUs) / 1e6);
  const goodId = ts.server.sessions().find((s) => s.state === 'live')!.id;
  const emittersBefore = listenerCounts([ts.server, process, good.viewer, good.viewer.connection]);
  const resourcesBefore = resourceCounts();

  // The churn: CONCURRENCY workers, each starting the next connection of a seeded random kind.
  const churnStartUs = nowUs();
  const startedMs = Date.now();
  // Each connection draws its kind and its delays from its own seed: the same churn for the same seed, whatever the timing.
  const kinds = Array.from({ length: CONNECTIONS }, () => pickKind(rand));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < CONNECTIONS) {
      const n = next++;
      const kind = kinds[n]!;
      tally.kinds[kind] = (tally.kinds[kind] ?? 0) + 1;
      await churnOne(ts, kind, seededRandom(SEED + n + 1), tally, dir, n);
    }
  };
  // Connections that go quiet and never close, left for the server to end by itself while the churn
  // goes on: viewers that vanish without a FIN once live (Wi-Fi gone: the dead-link timer), and
  // handshakes that stall and never close (the handshake timer).
  // (They keep reading, or the server's FIN would wait unread behind the media and 'close' never come.)
  const leftToServer = (['silent', 'hello', 'silent', 'live', 'live', 'live'] as const).map(async (what, i) => {
    await sleep(i * 500);
    const c = await RawClient.connect({ port: ts.ready.port, ...(what === 'live' ? {} : { localAddress: '127.0.0.50' }) });
    let welcomed = false;
    if (what !== 'silent') c.hello();
    if (what === 'live') {
      await c.waitFor('challenge', 5000);
      c.auth(ts.ready.accessKey);
      welcomed = (await c.waitFor('welcome', 5000)) !== null;
    }
    const closedByServer = (await c.waitClosed(10_000)) !== null;
    c.destroy();
    return `${what}: ${welcomed ? 'welcomed, ' : ''}${closedByServer ? 'closed by the server' : 'still open after 10 s'}`;
  });
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const leftResults = await Promise.all(leftToServer);
  const churnEndUs = nowUs();
  const churnEndMs = Date.now();
  const churnMs = churnEndMs - startedMs;
  t.comment(`seed ${SEED}: ${CONNECTIONS} connections in ${churnMs} ms: ${JSON.stringify(tally.kinds)}`);

  t.same(tally.honestFailures, [], 'every honest churn viewer went live and got media (or its picture)');
  t.same(tally.hostileWelcomed, [], 'no scan, garbage, silent or wrong-key connection was welcomed');
  t.same(
    leftResults,
    ['silent: ', 'hello: ', 'silent: ', 'live: welcomed, ', 'live: welcomed, ', 'live: welcomed, '].map((x) => `${x}closed by the server`),
    'each viewer that vanished once live, and each handshake that stalled and never closed, was ended by the server within 10 s',
  );

  // The good viewer was served all along, at its normal rate and without a gap.
  const churnS = (churnEndUs - churnStartUs) / 1e6;
  const duringVideo = framesBetween(good.video, churnStartUs, churnEndUs);
  const videoDuring = duringVideo.length / churnS;
  const audioDuring = framesBetween(good.audio, churnStartUs, churnEndUs).length / churnS;
  const maxGapMs = duringVideo.reduce((gap, f, i) => (i === 0 ? gap : Math.max(gap, (f.arrivalUs - duringVideo[i - 1]!.arrivalUs) / 1000)), 0);
  t.ok(videoDuring >= videoBefore * 0.7, `video during the churn ${videoDuring.toFixed(1)} fps ≥ 70% of before (${videoBefore.toFixed(1)} fps)`);
  t.ok(audioDuring >= audioBefore * 0.8, `audio during the churn ${audioDuring.toFixed(0)} packets/s ≥ 80% of before (${audioBefore.toFixed(0)}/s)`);
  t.ok(maxGapMs < 1000, `no gap of a second in the good viewer's video (longest ${maxGapMs.toFixed(0)} ms)`);
  t.equal(good.viewer.connection.connections, 1, 'the good viewer never had to reconnect');

  // Settled: every departed connection is gone from the server's books.
  await waitFor(() => ts.server.sessions().length === 1, 10_000, 50, 'departed sessions gone').catch(() => undefined);
  const sessions = ts.server.sessions();
  t.same(
    sessions.map((s) => [s.id, s.state]),
    [[goodId, 'live']],
    `server.sessions() holds only the good viewer (${sessions.length}: ${sessions
      .slice(0, 5)
      .map((s) => `${s.id} ${s.state} ${s.address}`)
      .join(', ')}${sessions.length > 5 ? ' …' : ''})`,
  );

  // Timers and sockets back to the baseline. Some end up to 1.5 s after their viewer (the BYE linger,
  // the client's end timer), and a server-side socket closes only once its peer's FIN is read.
  let resourcesAfter = resourceCounts();
  const settleBy = Date.now() + 6000;
  while (grownResources(resourcesBefore, resourcesAfter).length > 0 && Date.now() < settleBy) {
    await sleep(100);
    resourcesAfter = resourceCounts();
  }
  t.same(
    grownResources(resourcesBefore, resourcesAfter),
    [],
    `active timers and handles back at the baseline: ${JSON.stringify(resourcesBefore)} → ${JSON.stringify(resourcesAfter)}`,
  );

  const grown = grownListeners(emittersBefore, listenerCounts([ts.server, process, good.viewer, good.viewer.connection]));
  t.same(grown, [], 'no emitter (server, process, TLS server, sockets, ffmpeg pipes, the good viewer) gained a listener');

  // Last: the pause of the heap queries may cost the good viewer its link (nothing is checked after).
  // A session that said BYE is held by its linger timer for 1 s (BYE_LINGER_MS), the client's end timer 0.5 s.
  await sleep(Math.max(0, churnEndMs + 1500 - Date.now()));
  const sessionsOnHeap = heapCount(Session);
  if (sessionsOnHeap === null) {
    t.comment('v8.queryObjects is not available (Node < 20.13): the heap counts are not checked');
  } else {
    t.equal(sessionsOnHeap, 1, 'one Session on the heap, the good viewer’s: nothing still refers to a departed one');
    t.equal(heapCount(Viewer), 1, 'one Viewer on the heap, the good one: the departed viewers were freed on the client side too');
    const closedSockets = closedSocketsOnHeap()!;
    // + 2: the raw TCP socket under each end of the good viewer's TLS link (not a handle of its own).
    t.ok(
      closedSockets <= closedSocketsBefore! + 2,
      `closed sockets still on the heap: ${closedSockets} (before any viewer: ${closedSocketsBefore}, + 2 for the good viewer's link)`,
    );
    // Unref'd timers too (getActiveResourcesInfo() lists only those that keep the process alive). The
    // good viewer's own on both ends (heartbeats, stats, the capture's stall timers) came after the
    // baseline: 7 in the runs here; one per departed viewer would be hundreds.
    const timers = heapCount(Timeout)!;
    t.ok(timers <= timersBefore! + 16, `timers on the heap: ${timers} (before any viewer: ${timersBefore}, + 16 for the good viewer and capture)`);
  }
  t.same(unhandled, [], 'no unhandled rejection');
  t.same(
    log.lines.filter((l) => l.level >= 50).map((l) => l.msg),
    [],
    'no error-level line in the server log',
  );
  if (t.passing()) return;
  t.comment(`the good viewer: ${goodId}, states ${JSON.stringify(good.states)}`);
  for (const l of log.lines.filter((x) => x.session === goodId || x.component === 'capture-video' || x.component === 'capture-audio'))
    t.comment(JSON.stringify(l));
});
