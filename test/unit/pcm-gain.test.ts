import t from 'tap';
import { PcmGain, volumeToGain } from '../../src/client/sinks/pcm-gain.js';

const RATE = 48_000;

function constant(value: number, frames: number, channels = 1): Buffer {
  const b = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames * channels; i++) b.writeInt16LE(value, i * 2);
  return b;
}

function samples(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) out.push(b.readInt16LE(i));
  return out;
}

t.test('volume curve: 100 is unity, 0 is silence, cubic in between, clamped', async (t) => {
  t.equal(volumeToGain(100), 1);
  t.equal(volumeToGain(0), 0);
  t.equal(volumeToGain(50), 0.125);
  t.equal(volumeToGain(250), 1);
  t.equal(volumeToGain(-5), 0);
});

t.test('full volume passes the very same buffer through (no copy, no change)', async (t) => {
  const g = new PcmGain({ sampleRateHz: RATE, channels: 2 });
  const pcm = constant(1234, 480, 2);
  t.equal(g.apply(pcm), pcm);
});

t.test('volume 0 from the start gives digital silence', async (t) => {
  const g = new PcmGain({ sampleRateHz: RATE, channels: 1, volume: 0 });
  const out = g.apply(constant(20_000, 480));
  t.ok(samples(out).every((s) => s === 0));
});

t.test('a volume change ramps over rampMs instead of stepping (no click), then holds', async (t) => {
  const g = new PcmGain({ sampleRateHz: RATE, channels: 2, rampMs: 10 });
  g.setVolume(0);
  const out = samples(g.apply(constant(10_000, 960, 2)));
  const left = out.filter((_, i) => i % 2 === 0);
  const right = out.filter((_, i) => i % 2 === 1);
  t.same(left, right, 'both channels get the same gain');
  t.ok(left[0]! > 9_900, `starts near full (${left[0]})`);
  t.ok(Math.abs(left[240]! - 5_000) < 100, `halfway down after 5 ms (${left[240]})`);
  let maxStep = 0;
  for (let i = 1; i < left.length; i++) maxStep = Math.max(maxStep, Math.abs(left[i]! - left[i - 1]!));
  t.ok(maxStep < 50, `no jump larger than ${maxStep}`);
  t.ok(
    left.slice(480).every((s) => s === 0),
    'silent after the 10 ms ramp',
  );
  t.ok(
    samples(g.apply(constant(10_000, 100, 2))).every((s) => s === 0),
    'stays silent on the next packet',
  );
});

t.test('the ramp continues across packets', async (t) => {
  const g = new PcmGain({ sampleRateHz: RATE, channels: 1, volume: 0, rampMs: 10 });
  g.setVolume(100);
  const a = samples(g.apply(constant(10_000, 240)));
  const b = samples(g.apply(constant(10_000, 480)));
  t.ok(a[239]! > 4_800 && a[239]! < 5_200, `half way after the first 5 ms packet (${a[239]})`);
  t.ok(b[0]! > a[239]!, 'keeps rising in the next packet');
  t.equal(b[479], 10_000, 'reaches unity');
});

t.test('clamps instead of wrapping around', async (t) => {
  const g = new PcmGain({ sampleRateHz: RATE, channels: 1, volume: 100 });
  g.setVolume(Number.NaN);
  t.equal(g.volume, 100, 'NaN ignored');
  g.setVolume(50);
  const out = samples(g.apply(constant(-32768, 1000)));
  t.ok(
    out.every((s) => s <= 0),
    'negative stays negative',
  );
  t.equal(out[999], -4096, 'settles at 0.125 gain');
});
