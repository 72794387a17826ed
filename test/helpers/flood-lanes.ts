/**
 * Test helper: the attacking side of the flood test, run as its own process (fork) so the hostile
 * TLS clients do not share the server's thread, as a real attack's clients would not. Each of
 * `lanes` connections (from its own loopback address) sends one seed-reproducible hostile stream,
 * waits for the server to close it (300 ms; MUST_CLOSE_KINDS up to MUST_CLOSE_WAIT_MS), and starts the next,
 * until `streams` have gone.
 *
 * As a child: `fork(this file, [port, streams, lanes, seed])` with LANSTREAM_FLOOD_CHILD=1 in its
 * environment; it sends `{ started: true }` as it
 * begins, then `{ summary }` (or `{ error }`) on IPC, and exits.
 */
import { hostileStream, MUST_CLOSE_KINDS, seededRandom, type HostileKind } from './hostile-streams.js';
import { RawClient } from './raw-client.js';

/**
 * How long a stream the server must refuse on its bytes may take to be closed: well under the hello
 * timeout (5 s), which is what a server that missed it would close it with, and long enough for a
 * loaded 2-core machine (300 ms was missed once by one stream of 1000 at a load average of 6).
 */
export const MUST_CLOSE_WAIT_MS = 1500;

export interface FloodSummary {
  kinds: Partial<Record<HostileKind, number>>;
  outcomes: { closedByServer: number; media: number; welcomed: number; connectFailed: number };
  /** `kind:what the server sent` of the connections still open after their wait (valid prefixes the server waits on). */
  openKinds: Record<string, number>;
  floodMs: number;
}

export async function runFloodLanes(o: { port: number; streams: number; lanes: number; seed: number }): Promise<FloodSummary> {
  const rand = seededRandom(o.seed);
  const kinds = new Map<HostileKind, number>();
  const outcomes = { closedByServer: 0, media: 0, welcomed: 0, connectFailed: 0 };
  const openKinds = new Map<string, number>();
  let next = 0;
  const startedMs = Date.now();
  const lane = async (i: number) => {
    while (next < o.streams) {
      next++;
      const s = hostileStream(rand);
      kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + 1);
      let c: RawClient;
      try {
        c = await RawClient.connect({ port: o.port, localAddress: `127.0.0.${10 + i}` });
      } catch {
        outcomes.connectFailed++;
        continue;
      }
      c.send(s.bytes);
      const closed = await c.waitClosed(MUST_CLOSE_KINDS.includes(s.kind) ? MUST_CLOSE_WAIT_MS : 300);
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
  await Promise.all(Array.from({ length: o.lanes }, (_, i) => lane(i)));
  return { kinds: Object.fromEntries(kinds), outcomes, openKinds: Object.fromEntries(openKinds), floodMs: Date.now() - startedMs };
}

if (process.env.LANSTREAM_FLOOD_CHILD === '1' && process.send) {
  const [port, streams, lanes, seed] = process.argv.slice(2).map(Number);
  const send = process.send.bind(process);
  send({ started: true });
  runFloodLanes({ port: port!, streams: streams!, lanes: lanes!, seed: seed! }).then(
    (summary) => send({ summary }, () => process.exit(0)),
    (err: unknown) => send({ error: String((err as Error)?.stack ?? err) }, () => process.exit(1)),
  );
}
