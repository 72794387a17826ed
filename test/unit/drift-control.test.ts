import t from 'tap';
import { DriftControl } from '../../src/client/sinks/drift-control.js';

t.test('no correction at or below the target', async (t) => {
  const d = new DriftControl({ targetMs: 40 });
  for (let ms = 0; ms < 2000; ms += 10) d.observe(40 + ((ms / 10) % 2 ? 3 : -3), ms);
  t.equal(d.strideFrames(), 0, 'jitter inside the dead band is left alone');
  const pcm = Buffer.alloc(960);
  t.equal(d.apply(pcm, 2), pcm, 'same buffer back, nothing copied');
});

t.test('a level above the target is pulled back gently, then stops', async (t) => {
  const d = new DriftControl({ targetMs: 40 });
  let level = 70;
  let now = 0;
  const frameBytes = 2;
  const packet = Buffer.alloc(960); // 10 ms of 48 kHz mono
  while (now < 20_000) {
    d.observe(level, now);
    const out = d.apply(packet, frameBytes);
    // Removing frames means the device plays this packet faster: the level drops by what was removed.
    level -= (packet.length - out.length) / frameBytes / 48;
    now += 10;
  }
  t.ok(level <= 46, `level came back near the target (${level.toFixed(1)} ms)`);
  t.ok(level >= 40, 'without undershooting below it');
  t.ok(d.removedFrames > 0, `${d.removedFrames} frames removed in all`);
});

t.test('the strongest correction stays at or under 0.5 % of the samples', async (t) => {
  const d = new DriftControl({ targetMs: 40 });
  d.observe(500, 0);
  const packet = Buffer.alloc(96000); // 1 s
  const out = d.apply(packet, 2);
  const removed = (packet.length - out.length) / 2;
  t.ok(removed > 0 && removed <= 48000 * 0.005, `removed ${removed} of 48000 frames`);
});

t.test('frames are removed whole, never half a sample (stereo)', async (t) => {
  const d = new DriftControl({ targetMs: 10 });
  d.observe(100, 0);
  const frames = 4000;
  const pcm = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    pcm.writeInt16LE(i % 30000, i * 4);
    pcm.writeInt16LE(-(i % 30000), i * 4 + 2);
  }
  const out = d.apply(pcm, 4);
  t.ok(out.length < pcm.length, `frames were removed (${(pcm.length - out.length) / 4} of ${frames})`);
  t.equal(out.length % 4, 0);
  for (let i = 0; i < out.length / 4; i++) {
    if (out.readInt16LE(i * 4) !== -out.readInt16LE(i * 4 + 2)) {
      t.fail(`channels out of step at frame ${i}`);
      return;
    }
  }
  t.pass('left and right stay paired');
});

t.test('with stretch, a level under the target is brought back by playing frames twice, whole, ≤ 0.5 %, then stops', async (t) => {
  const plain = new DriftControl({ targetMs: 40 });
  plain.observe(10, 0);
  const probe = Buffer.alloc(960);
  t.equal(plain.apply(probe, 2), probe, 'without stretch, nothing under the target');

  const d = new DriftControl({ targetMs: 40, deadBandMs: 2 });
  d.setStretch(true);
  d.observe(0, 0);
  const frames = 48_000; // 1 s of stereo, each frame numbered in both channels
  const pcm = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    pcm.writeInt16LE(i % 30000, i * 4);
    pcm.writeInt16LE(-(i % 30000), i * 4 + 2);
  }
  const out = d.apply(pcm, 4);
  const added = (out.length - pcm.length) / 4;
  t.ok(added > 0 && added <= frames * 0.005, `${added} of ${frames} frames played twice`);
  t.equal(d.addedFrames, added);
  // Read back: every frame in order, each repeated frame right after itself, the channels paired.
  let expect = 0;
  let repeats = 0;
  for (let i = 0; i < out.length / 4; i++) {
    const l = out.readInt16LE(i * 4);
    if (l !== -out.readInt16LE(i * 4 + 2)) return t.fail(`channels out of step at frame ${i}`);
    if (l === (expect - 1) % 30000 && i > 0) repeats++;
    else if (l !== expect % 30000) return t.fail(`frame ${i} is ${l}, expected ${expect % 30000}`);
    else expect++;
  }
  t.equal(expect, frames, 'every frame, in order');
  t.equal(repeats, added, 'each added frame is a copy of the one before it');

  let level = 30;
  let now = 10;
  const packet = Buffer.alloc(960);
  while (now < 20_000) {
    d.observe(level, now);
    level += (d.apply(packet, 2).length - packet.length) / 2 / 48;
    now += 10;
  }
  t.ok(level >= 40 && level <= 42, `level came back into the band (${level.toFixed(1)} ms, target 40)`);
});
