/**
 * QualityAdapter on synthetic 2 s windows (60 frames offered at 30 fps, some replaced while
 * waiting for the flow window): when a viewer gets a lower level, and when it gets the full
 * stream back, without oscillating on a link that stays a little too slow.
 */
import t from 'tap';
import { levelSize, QUALITY_LEVELS, QualityAdapter } from '../../src/server/quality-adapter.js';

const FPS = 30;
const FRAME_BYTES = 52_000; // ~12.6 Mbit/s at 30 fps: the bench's 720p q5 stream

/** Feeds whole 2 s windows; `blocked` is the share replaced in each; returns each window's result. */
function run(a: QualityAdapter, clock: { us: number }, blocked: number[]): (number | null)[] {
  return blocked.map((share) => {
    for (let i = 0; i < FPS * 2; i++) a.onOffered(FRAME_BYTES);
    for (let i = 0; i < Math.round(share * FPS * 2); i++) a.onBlocked();
    clock.us += 2_000_000;
    return a.evaluate(clock.us, null, FPS);
  });
}

function adapter(): { a: QualityAdapter; clock: { us: number } } {
  const a = new QualityAdapter();
  const clock = { us: 1_000_000 };
  a.evaluate(clock.us, null, FPS); // starts the first window
  return { a, clock };
}

t.test('the first step is full size at a lower JPEG quality, about half the bytes', async (t) => {
  t.same([QUALITY_LEVELS[1]!.scale, levelSize(1, 1280, 720)], [1, { width: 1280, height: 720 }]);
  t.ok(QUALITY_LEVELS[1]!.jpegQuality > 0 && QUALITY_LEVELS[1]!.sizeRatio <= 0.6, 'lower quality, ≤ 60 % of the bytes');
  t.same(levelSize(2, 1280, 720), { width: 640, height: 360 });
  t.same(levelSize(3, 1280, 720), { width: 320, height: 180 });
});

t.test('a link a little too slow (25 % replaced, sustained) steps down one level after two windows', async (t) => {
  const { a, clock } = adapter();
  t.same(run(a, clock, [0.25]), [null], 'one window is not yet a link');
  t.same(run(a, clock, [0.25]), [1], 'the second in a row steps down');
  t.equal(a.level, 1, 'to full size at lower quality, not half size');
  t.same(run(a, clock, [0, 0]), [null, null], 'calm at the new level: stays');
});

t.test('a single burst does not step down; neither does blocking below the threshold', async (t) => {
  const { a, clock } = adapter();
  t.same(run(a, clock, [0.35, 0, 0.3, 0.02, 0.35, 0.1]), [null, null, null, null, null, null]);
  t.same(run(a, clock, [0.12, 0.12, 0.12, 0.12]), [null, null, null, null], '12 % sustained: stays at full quality');
  t.equal(a.level, 0);
});

t.test('a link far too slow steps at once, as far as the delivered share says', async (t) => {
  const half = adapter();
  t.same(run(half.a, half.clock, [0.42]), [1], '42 % replaced: one window is enough; half the bytes fit the 58 % that got through');
  const quarter = adapter();
  t.same(run(quarter.a, quarter.clock, [0.7]), [2], '70 % replaced: half size (22 %) fits the 30 % that got through');
  const tiny = adapter();
  t.same(run(tiny.a, tiny.clock, [0.92]), [3], '92 % replaced (1 Mbit/s): quarter size at once');
  t.same(run(tiny.a, tiny.clock, [0.95, 0.95]), [null, null], 'nothing below the lowest level');
});

t.test('probes up after three calm windows and recovers to full quality', async (t) => {
  const { a, clock } = adapter();
  run(a, clock, [0.25, 0.25]);
  t.equal(a.level, 1);
  t.same(run(a, clock, [0, 0, 0]), [null, null, 0], 'three calm windows: back to full quality');
});

t.test('recovering from the lowest level climbs one level per calm window once a probe held', async (t) => {
  const { a, clock } = adapter();
  run(a, clock, [0.92]);
  t.equal(a.level, 3);
  t.same(run(a, clock, [0, 0, 0, 0, 0]), [null, null, 2, 1, 0], 'quarter → full in 5 windows (10 s)');
});

t.test('a failed probe steps straight back and backs off the next one, capped', async (t) => {
  const { a, clock } = adapter();
  run(a, clock, [0.25, 0.25]);
  t.same(run(a, clock, [0, 0, 0]), [null, null, 0], 'first probe after 3 calm windows');
  t.same(run(a, clock, [0.25]), [1], 'the probe fails: back down after one window, not two');
  t.equal(a.probeAfterWindows, 6, 'the next probe waits twice as long');
  t.same(run(a, clock, [0, 0, 0, 0, 0]), [null, null, null, null, null], 'no probe after 3 (nor 5) calm windows');
  t.same(run(a, clock, [0]), [0], 'probes after 6');
  t.same(run(a, clock, [0.25]), [1]);
  t.equal(a.probeAfterWindows, 12);
  run(a, clock, Array<number>(12).fill(0));
  run(a, clock, [0.25]);
  t.equal(a.probeAfterWindows, 24);
  run(a, clock, Array<number>(24).fill(0));
  t.equal(a.level, 0, 'probed after 24');
  run(a, clock, [0.25]);
  t.equal(a.probeAfterWindows, 24, 'capped at 24 windows (48 s)');
});

t.test('on a link that stays a little too slow, probes get rare: a steady picture, not a flapping one', async (t) => {
  const { a, clock } = adapter();
  // The link carries 75 % of the full stream and all of level 1 (half the bytes).
  const levels: number[] = [];
  for (let w = 0; w < 150; w++) {
    run(a, clock, [a.level === 0 ? 0.25 : 0]);
    levels.push(a.level);
  }
  const atFull = levels.filter((l) => l === 0).length;
  const probesLast200s = levels.filter((l, i) => i >= 50 && l === 0 && levels[i - 1] !== 0).length;
  t.comment(`5 min: ${atFull} of 150 windows at full quality (25 % of frames lost in those), ${probesLast200s} probes in the last 200 s`);
  t.ok(probesLast200s <= 4, 'once backed off, about one 2 s probe every 50 s');
  t.ok(atFull <= 10, `${atFull} of 150 windows lost frames`);
  t.ok(levels.slice(-30).filter((l) => l === 1).length >= 28, 'the last minute is at full size, lower quality');
});

t.test('the probe back-off resets after a long calm period', async (t) => {
  const { a, clock } = adapter();
  run(a, clock, [0.25, 0.25, 0, 0, 0, 0.25]);
  t.equal(a.level, 1);
  t.equal(a.probeAfterWindows, 6);
  t.same(run(a, clock, [0, 0, 0, 0, 0, 0]), [null, null, null, null, null, 0], 'the link recovered: the probe holds');
  run(a, clock, Array<number>(30).fill(0));
  t.equal(a.level, 0);
  t.equal(a.probeAfterWindows, 3, 'after 60 s without a step down, probes are quick again');
  t.same(run(a, clock, [0.25, 0.25, 0, 0, 0]), [null, 1, null, null, 0]);
});

t.test('a step down that is not right after a probe does not count as a failed probe', async (t) => {
  const { a, clock } = adapter();
  run(a, clock, [0.25, 0.25, 0, 0, 0]);
  t.equal(a.level, 0);
  run(a, clock, [0, 0, 0.25, 0.25]);
  t.equal(a.level, 1);
  t.equal(a.probeAfterWindows, 3);
});

t.test('a window with too few frames offered (capture stalled) is not judged', async (t) => {
  const a = new QualityAdapter();
  a.evaluate(0, null, FPS);
  for (let i = 0; i < 10; i++) {
    a.onOffered(FRAME_BYTES);
    a.onBlocked();
  }
  t.equal(a.evaluate(2_000_000, null, FPS), null);
  t.equal(a.evaluate(4_000_000, null, FPS), null);
  t.equal(a.level, 0);
});

t.test('the step that starts re-encoding waits for the server to allow it; the others do not ask', async (t) => {
  const { a, clock } = adapter();
  let allow = false;
  let asked = 0;
  const mayReencode = (): boolean => {
    asked++;
    return allow;
  };
  const windows = (blocked: number[]): (number | null)[] =>
    blocked.map((share) => {
      for (let i = 0; i < FPS * 2; i++) a.onOffered(FRAME_BYTES);
      for (let i = 0; i < Math.round(share * FPS * 2); i++) a.onBlocked();
      clock.us += 2_000_000;
      return a.evaluate(clock.us, null, FPS, mayReencode);
    });
  t.same(windows([0.5, 0.5]), [null, null], 'refused twice: stays at full quality');
  t.equal(asked, 2, 'asked at each window that called for the step');
  t.equal(a.level, 0);
  t.same(windows([0.02]), [null], 'a calm window in between forgives the refused ones');
  t.same(windows([0.25]), [null], 'one window over the threshold is not yet a link');
  t.equal(asked, 2, 'so it did not ask');
  allow = true;
  t.same(windows([0.25]), [1], 'allowed: the second window in a row steps down');
  allow = false;
  t.same(windows([0.25, 0.25]), [null, 2], 'a further step down re-encodes anyway and does not ask');
  t.equal(asked, 3);
});

t.test('frames replaced while the frames that went out were acknowledged at once: not the link, no step', async (t) => {
  /** Windows where the delivered frames took `deliveryMs` each to be acknowledged. */
  const windows = (a: QualityAdapter, clock: { us: number }, blocked: number[], deliveryMs: number): (number | null)[] =>
    blocked.map((share) => {
      for (let i = 0; i < FPS * 2; i++) a.onOffered(FRAME_BYTES);
      const replaced = Math.round(share * FPS * 2);
      for (let i = 0; i < replaced; i++) a.onBlocked();
      for (let i = 0; i < FPS * 2 - replaced; i++) a.onDelivered(deliveryMs * 1000);
      clock.us += 2_000_000;
      return a.evaluate(clock.us, null, FPS);
    });
  const busy = adapter();
  t.same(windows(busy.a, busy.clock, [0.25, 0.25, 0.5, 0.5], 1.5), [null, null, null, null], 'a busy machine (ACKs in 1.5 ms, some late): full quality kept');
  const slow = adapter();
  t.same(windows(slow.a, slow.clock, [0.25, 0.25], 42), [null, 1], 'a link too slow (42 ms a frame): steps down as before');
  const edge = adapter();
  t.same(windows(edge.a, edge.clock, [0.5], 8.4), [2], 'a quarter of the frame interval (8.3 ms) is enough to call it the link');
  t.same(windows(edge.a, edge.clock, [0, 0, 0, 0], 1), [null, null, 1, 0], 'and it probes back up when calm');
  t.same(windows(edge.a, edge.clock, [0.5, 0.5], 1), [null, null], 'a probe that meets a busy machine, not a slow link, does not fail');
});
