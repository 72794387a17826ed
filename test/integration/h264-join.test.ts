/**
 * A viewer that joins a running H.264 stream gets a decodable start at once (the hub's GOP cache)
 * instead of waiting for the next IDR. The GOP is 3 s here and the joiner comes 1.2 s in, so without
 * the cache its first frame would come ≥ 1.8 s after it went live. The bound of 1200 ms from connect
 * only has to separate the two (with the cache: the TLS handshake plus loopback transport of the
 * cached ~36 units, typically well under 400 ms); how fast a join is belongs in the benchmarks, and a
 * loaded 2-core machine must not fail it.
 */
import t from 'tap';
import { MediaFlag } from '../../src/protocol/constants.js';
import { nowUs } from '../../src/shared/clock.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { decodeAnnexB } from '../helpers/h264-decode.js';
import { NullVideoSink } from '../../src/client/sinks/null-sink.js';
import { waitFor } from '../helpers/process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FIRST_FRAME_BOUND_MS = 1200;

t.test('a late H.264 joiner starts at the cached IDR at once and decodes everything from there', { timeout: 30_000 }, async (t) => {
  const ts = await startTestServer({ videoCodec: 'h264', audio: false, gopFrames: 90, videoBitrateKbps: 500, encoder: 'libx264' });
  t.teardown(() => ts.close());
  const a = testViewer(ts, { audio: false });
  t.teardown(() => a.viewer.close());
  await a.viewer.start();
  await sleep(1200);

  const b = testViewer(ts, { audio: false });
  t.teardown(() => b.viewer.close());
  const joinUs = nowUs();
  await b.viewer.start();
  // Wait past the next IDR (≥ 1.8 s away) for the first frame, so the bound below decides, not this wait.
  await waitFor(() => b.video.length > 0, 3000, 10, "the late joiner's first frame");
  await sleep(800);
  await Promise.all([a.viewer.close(), b.viewer.close()]);

  t.ok(b.video.length > 0, 'late joiner got video');
  const firstMs = (b.video[0]!.arrivalUs - joinUs) / 1000;
  t.comment(`late joiner: first frame ${firstMs.toFixed(0)} ms after it started connecting, ${b.video.length} units`);
  t.ok((b.video[0]!.flags & MediaFlag.KEYFRAME) !== 0, 'its first unit is a keyframe');
  t.ok(
    firstMs <= FIRST_FRAME_BOUND_MS,
    `first frame ${firstMs.toFixed(0)} ms after connecting (bound ${FIRST_FRAME_BOUND_MS} ms; next IDR was ≥ 1800 ms away)`,
  );
  const keyframesA = a.video.filter((v) => (v.flags & MediaFlag.KEYFRAME) !== 0).length;
  t.equal(keyframesA, 1, 'no new IDR happened while b joined (GOP 3 s): b started from the cached one');
  t.ok(b.video.length >= 50, `the cached GOP (~36 units) and live units behind it: ${b.video.length}`);
  t.same(
    b.video.map((v) => v.seq),
    b.video.map((_, i) => i),
    'in order, none skipped',
  );
  // Both close at once, so either may get the unit in flight at that moment and the other not.
  const aLast = a.video[a.video.length - 1]!.ptsUs;
  const bLastInA = a.video.findIndex((v) => v.ptsUs === b.video[b.video.length - 1]!.ptsUs);
  t.ok(
    b.video.some((v) => v.ptsUs === aLast) || bLastInA === a.video.length - 2,
    "caught up: b ends on a's last unit (or the one before, if a got one more at close)",
  );
  const decoded = await decodeAnnexB(Buffer.concat(b.video.map((v) => v.data)));
  t.equal(decoded.frames, b.video.length, 'every unit b got decodes to a picture');
  t.equal(decoded.stderr.trim(), '', 'without decoder errors');
});

t.test('repaint() of an H.264 stream shows its last IDR again, never a P-frame (which would smear)', { timeout: 30_000 }, async (t) => {
  const ts = await startTestServer({ videoCodec: 'h264', audio: false, gopFrames: 90, videoBitrateKbps: 500, encoder: 'libx264' });
  t.teardown(() => ts.close());
  const sink = new NullVideoSink();
  const v = testViewer(ts, { audio: false, openVideoSink: async (params) => (await sink.start(params), sink) });
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  await sleep(1000);
  v.viewer.disconnect(); // no more frames: what repaint() pushes is all the sink gets from here
  await sleep(100);
  const last = v.video[v.video.length - 1]!;
  const lastIdr = [...v.video].reverse().find((f) => (f.flags & MediaFlag.KEYFRAME) !== 0)!;
  t.ok(lastIdr && (last.flags & MediaFlag.KEYFRAME) === 0, 'the stream ended on a P-frame after its IDR (GOP 3 s, ~1 s received)');
  const shownBefore = sink.stats().framesShown;
  v.viewer.repaint();
  t.equal(sink.stats().framesShown, shownBefore + 1, 'repaint pushed one unit');
  t.same(sink.lastFrame, lastIdr.data, 'the unit repainted is the last IDR');
  t.equal(sink.lastPtsUs, lastIdr.ptsUs, 'with its own PTS');
});
