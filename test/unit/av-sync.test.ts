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

t.test('only the newest held frame is shown', async (t) => {
  const s = make();
  const shown: number[] = [];
  s.schedule(30, () => shown.push(1));
  s.schedule(30, () => shown.push(2));
  s.schedule(0, () => shown.push(3));
  await new Promise((r) => setTimeout(r, 60));
  t.same(shown, [3], 'frames 1 and 2 were replaced before their time came');
  s.schedule(10, () => shown.push(4));
  await new Promise((r) => setTimeout(r, 40));
  t.same(shown, [3, 4]);
  s.close();
});
