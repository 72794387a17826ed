/**
 * GopCache and the hub's replay of it: a joiner is handed exactly the units since the last keyframe,
 * never a start without its keyframe, never units from a capture that has stopped.
 */
import t from 'tap';
import { MediaFlag } from '../../src/protocol/constants.js';
import type { CapturedChunk } from '../../src/server/capture/capture-types.js';
import { GopCache } from '../../src/server/gop-cache.js';
import { Hub, type HubSubscriber } from '../../src/server/hub.js';

const unit = (n: number, key: boolean, bytes = 10): CapturedChunk => ({ data: Buffer.alloc(bytes, n), ptsUs: n * 33_333, flags: key ? MediaFlag.KEYFRAME : 0 });
const ids = (frames: readonly CapturedChunk[]) => frames.map((f) => f.data[0]);

t.test('keeps the units from the last keyframe on; a new keyframe starts over', async (t) => {
  const c = new GopCache();
  t.same(ids(c.frames()), [], 'empty at first');
  c.push(unit(1, false), false);
  t.same(ids(c.frames()), [], 'a unit before any keyframe is no start: not kept');
  c.push(unit(2, true), true);
  c.push(unit(3, false), false);
  c.push(unit(4, false), false);
  t.same(ids(c.frames()), [2, 3, 4]);
  t.equal(c.bytes, 30);
  c.push(unit(5, true), true);
  c.push(unit(6, false), false);
  t.same(ids(c.frames()), [5, 6], 'reset on the next keyframe');
  t.equal(c.bytes, 20);
});

t.test('a GOP beyond the frame or byte bound is dropped whole until the next keyframe', async (t) => {
  const byFrames = new GopCache({ maxFrames: 3 });
  for (let i = 0; i < 3; i++) byFrames.push(unit(i, i === 0), i === 0);
  t.same(ids(byFrames.frames()), [0, 1, 2], 'at the bound: kept');
  byFrames.push(unit(3, false), false);
  t.same(ids(byFrames.frames()), [], 'past it: nothing (a partial GOP would not decode)');
  byFrames.push(unit(4, false), false);
  t.same(ids(byFrames.frames()), [], 'and stays empty without a keyframe');
  byFrames.push(unit(5, true), true);
  t.same(ids(byFrames.frames()), [5], 'a keyframe starts it again');

  const byBytes = new GopCache({ maxBytes: 100 });
  byBytes.push(unit(1, true, 60), true);
  byBytes.push(unit(2, false, 41), false);
  t.same(ids(byBytes.frames()), [], '101 bytes > 100: dropped');
  byBytes.push(unit(3, true, 101), true);
  t.same(ids(byBytes.frames()), [], 'a keyframe alone above the bound is not kept either');
  t.equal(byBytes.bytes, 0);
});

t.test('frames() is a copy: later pushes do not change what a joiner was given', async (t) => {
  const c = new GopCache();
  c.push(unit(1, true), true);
  const given = c.frames();
  c.push(unit(2, false), false);
  t.same(ids(given), [1]);
});

t.test('rejects bad bounds', async (t) => {
  t.throws(() => new GopCache({ maxFrames: 0 }), RangeError);
  t.throws(() => new GopCache({ maxBytes: 1.5 }), RangeError);
});

function subscriber(id: string): HubSubscriber & { backlog: number[][]; live: number[] } {
  const s = {
    id,
    backlog: [] as number[][],
    live: [] as number[],
    offer: (_kind: string, chunk: CapturedChunk) => void s.live.push(chunk.data[0]!),
    offerBacklog: (frames: readonly CapturedChunk[]) => void s.backlog.push(ids(frames) as number[]),
  };
  return s;
}

t.test('hub: a joiner gets the cached GOP once, before live units; nothing after capture stopped', async (t) => {
  let idle = 0;
  const hub = new Hub({ lingerMs: 1, onActive: () => undefined, onIdle: () => void idle++ });
  t.teardown(() => hub.close());
  const a = subscriber('a');
  hub.subscribe(a);
  t.same(a.backlog, [], 'the first viewer starts capture: nothing cached to give');
  hub.publish('video', unit(1, false));
  hub.publish('video', unit(2, true));
  hub.publish('video', unit(3, false));
  hub.publish('audio', unit(99, false));
  const b = subscriber('b');
  hub.subscribe(b);
  t.same(b.backlog, [[2, 3]], 'late joiner: keyframe 2 and unit 3, no audio');
  hub.publish('video', unit(4, false));
  t.same(b.live, [4], 'then live units');
  t.same(a.backlog, [], 'the viewer already there is not given it again');

  hub.unsubscribe('a');
  hub.unsubscribe('b');
  await new Promise((r) => setTimeout(r, 20));
  t.equal(idle, 1, 'capture stopped after the linger');
  const c = subscriber('c');
  hub.subscribe(c);
  t.same(c.backlog, [], 'a viewer after a capture restart gets nothing from the old capture');
});
