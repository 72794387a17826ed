/**
 * 1000 hostile byte streams from 20 concurrent connections (20 loopback addresses, from a child
 * process) against a real in-process server over TLS while a good viewer watches: its frame rate must not drop, the
 * server's memory must stay bounded, and nothing may escape as an unhandled error.
 */
import t, { type Test } from 'tap';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { fork } from 'node:child_process';
import { HOSTILE_KINDS, MUST_CLOSE_KINDS } from '../helpers/hostile-streams.js';
import { MUST_CLOSE_WAIT_MS, type FloodSummary } from '../helpers/flood-lanes.js';
import { captureLogger } from '../helpers/log-capture.js';
import { sleep, waitFor } from '../helpers/process.js';

const STREAMS = Number(process.env.FLOOD_STREAMS ?? 1000);
const LANES = 20;

/**
 * Runs the attackers in their own process (test/helpers/flood-lanes.ts) and returns what they saw;
 * onStart runs when its first connection is about to go out (after the child has loaded).
 */
function floodFromChild(t: Test, port: number, onStart: () => void): Promise<FloodSummary> {
  const seed = Number(process.env.FLOOD_SEED ?? 20240601);
  const child = fork(new URL('../helpers/flood-lanes.ts', import.meta.url), [String(port), String(STREAMS), String(LANES), String(seed)], {
    env: { ...process.env, LANSTREAM_FLOOD_CHILD: '1' },
  });
  t.teardown(() => void child.kill());
  return new Promise((resolve, reject) => {
    let answer: { summary?: FloodSummary; error?: string } | undefined;
    child.on('message', (m: { started?: true; summary?: FloodSummary; error?: string }) => {
      if (m.started) onStart();
      else answer = m;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (answer?.summary) resolve(answer.summary);
      else reject(new Error(`flood process exited (${code ?? signal}): ${answer?.error ?? 'no summary'}`));
    });
  });
}

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

  let startedMs = 0;
  const { kinds, outcomes, openKinds } = await floodFromChild(t, ts.ready.port, () => {
    beforeFrames = good.video.length;
    startedMs = Date.now();
  });
  const floodMs = Date.now() - startedMs;
  const fpsDuring = (good.video.length - beforeFrames) / (floodMs / 1000);
  clearInterval(rssTimer);

  t.comment(`kinds: ${JSON.stringify(kinds)}; outcomes: ${JSON.stringify(outcomes)}; still open after their wait: ${JSON.stringify(openKinds)}; ${floodMs} ms`);
  // The attacks must have reached the server: if every connect failed, nothing below could fail.
  t.equal(outcomes.connectFailed, 0, 'every hostile connection got through TLS to the server');
  const stillOpen = Object.values(openKinds).reduce((a, b) => a + b, 0);
  t.equal(outcomes.closedByServer + stillOpen, STREAMS, `every stream was sent: ${outcomes.closedByServer} closed by the server + ${stillOpen} still open`);
  t.equal(
    Object.values(kinds).reduce((a, b) => a + b, 0),
    STREAMS,
    `${STREAMS} streams were generated`,
  );
  t.same(
    HOSTILE_KINDS.filter((k) => !kinds[k]),
    [],
    'every hostile kind was generated',
  );
  t.equal(outcomes.welcomed + outcomes.media, 0, 'no hostile stream was welcomed or got a media byte');
  const openMalformed = Object.keys(openKinds).filter((k) => MUST_CLOSE_KINDS.some((m) => k.startsWith(`${m}:`)));
  t.same(
    openMalformed,
    [],
    `every huge length, oversized JSON and wrong proof was closed by the server within ${MUST_CLOSE_WAIT_MS} ms, not at its hello timeout`,
  );
  const openSaw = Object.keys(openKinds).map((k) => k.split(':')[1]);
  t.ok(
    openSaw.every((x) => x === 'nothing' || x === 'challenge'),
    `connections still open (valid prefixes) got at most a CHALLENGE: ${JSON.stringify(openKinds)}`,
  );
  // The attackers run in their own process, so this measures the server. 80 %: runs on 2 cores read
  // 28.4–30.2 fps of 30 (95–100 %), also under 3 busy loops. (With the attackers on the server's own
  // thread, as before, full runs read 87–95 % and a clean-clone CI run once 79 %.)
  t.ok(fpsDuring >= fpsBefore * 0.8, `frame rate during the flood ${fpsDuring.toFixed(1)} fps ≥ 80% of before (${fpsBefore.toFixed(1)} fps)`);
  const growthMb = (rssPeak - rssBefore) / 1e6;
  t.ok(growthMb < 150, `RSS grew by ${growthMb.toFixed(0)} MB at most during the flood`);
  t.same(unhandled, [], 'no unhandled rejection');
  t.equal(log.lines.filter((l) => l.level >= 50).length, 0, 'no error-level log line on the server');
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 1, 'the good viewer is still live');
  await waitFor(() => ts.server.sessions().length === 1, 3000, 50, 'hostile sessions all gone');
  t.pass('every hostile session was cleaned up');
});
