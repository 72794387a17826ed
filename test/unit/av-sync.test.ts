import t from 'tap';
import { AvSync } from '../../src/client/av-sync.js';

const make = (enabled = true) => new AvSync({ enabled, displayDelayMs: 30, maxHoldMs: 150 });

t.test('video that would appear before its sound is held by the difference', async (t) => {
  const s = make();
  for (let i = 0; i < 20; i++) s.onAudioArrival(15);
  // audio path 15 + 40 buffered = 55 ms; video path 5 + 30 display = 35 ms → hold 20 ms
  t.equal(s.holdMs(5, 40), 20);
  t.equal(s.holdMs(30, 40), 0, 'video already later than audio: shown at once (audio is never delayed)');
  t.equal(s.holdMs(5, 2000), 150, 'capped: a broken audio clock cannot freeze the picture');
});

t.test('no hold without enough audio, without an audio sink, or when disabled', async (t) => {
  const s = make();
  s.onAudioArrival(15);
  t.equal(s.holdMs(5, 40), 0, 'too few audio samples to know the audio path');
  for (let i = 0; i < 20; i++) s.onAudioArrival(15);
  t.equal(s.holdMs(5, null), 0, 'no audio output');
  const off = make(false);
  for (let i = 0; i < 20; i++) off.onAudioArrival(15);
  t.equal(off.holdMs(5, 40), 0, '--no-av-sync');
});

t.test('held frames keep their own due times: a hold longer than a frame interval does not eat frames', async (t) => {
  const s = make();
  const shown: number[] = [];
  // 30 fps, each held 60 ms (two frame intervals): every frame must still be shown, in order.
  for (let i = 0; i < 6; i++) {
    s.schedule(60, () => shown.push(i));
    await new Promise((r) => setTimeout(r, 33));
  }
  await new Promise((r) => setTimeout(r, 100));
  t.same(shown, [0, 1, 2, 3, 4, 5], 'all six shown');
  t.equal(s.skippedFrames, 0);
  s.close();
});

t.test('frames that fall due together: only the newest is shown, in order with later ones', async (t) => {
  const s = make();
  const shown: number[] = [];
  const now = performance.now();
  s.schedule(20, () => shown.push(1), now);
  s.schedule(20, () => shown.push(2), now);
  s.schedule(0, () => shown.push(3), now); // not before the frames that came earlier
  await new Promise((r) => setTimeout(r, 60));
  t.same(shown, [3], 'due together: the newest wins');
  t.equal(s.skippedFrames, 2);
  s.schedule(0, () => shown.push(4));
  t.same(shown, [3, 4], 'nothing held: shown at once');
  s.close();
});
