import t from 'tap';
import { JitterBuffer } from '../../src/client/sinks/jitter-buffer.js';

const packet = (value: number) => {
  const b = Buffer.alloc(960);
  for (let i = 0; i < 480; i++) b.writeInt16LE(value, i * 2);
  return b;
};

t.test('silence until the target is buffered, then the audio in order', async (t) => {
  const jb = new JitterBuffer({ sampleRateHz: 48000, channels: 1, targetMs: 20 });
  const out = new Int16Array(480);
  jb.push(packet(1), 0);
  jb.pull(out);
  t.ok(out.every((x) => x === 0), 'primed with silence below the target');
  jb.push(packet(2), 10);
  jb.pull(out);
  t.ok(out.every((x) => x === 1), 'first packet once 20 ms are buffered');
  jb.pull(out);
  t.ok(out.every((x) => x === 2), 'then the next');
});

t.test('an underflow is one gap of silence, then it waits for the target again', async (t) => {
  const jb = new JitterBuffer({ sampleRateHz: 48000, channels: 1, targetMs: 20 });
  const out = new Int16Array(480);
  jb.push(packet(1), 0);
  jb.push(packet(1), 10);
  jb.pull(out);
  jb.pull(out);
  jb.pull(out);
  t.equal(jb.underruns, 1);
  t.ok(out.every((x) => x === 0));
  jb.push(packet(3), 40);
  jb.pull(out);
  t.ok(out.every((x) => x === 0), 'not playing yet at 10 ms buffered');
  jb.push(packet(4), 50);
  jb.pull(out);
  t.ok(out.every((x) => x === 3), 'plays again at the target');
});

t.test('a burst is cut back to the target at once; the level then holds', async (t) => {
  const jb = new JitterBuffer({ sampleRateHz: 48000, channels: 1, targetMs: 20, burstMarginMs: 40 });
  for (let i = 0; i < 30; i++) jb.push(packet(i), 0); // 300 ms at once (a stall that caught up)
  t.ok(jb.bufferedMs <= 60, `buffer cut to ${jb.bufferedMs} ms`);
  t.ok(jb.droppedMs >= 240, `${jb.droppedMs} ms of old audio dropped`);
});

t.test('a sender clock 0.3 % fast does not make the level creep', async (t) => {
  const jb = new JitterBuffer({ sampleRateHz: 48000, channels: 1, targetMs: 20 });
  const out = new Int16Array(480);
  let now = 0;
  let owed = 0;
  const lastMinute: number[] = [];
  for (let step = 0; step < 60_000; step++) {
    // The device pulls 10 ms every 10 ms; the sender delivers 10.03 ms in the same time.
    owed += 481.44;
    while (owed >= 480) {
      jb.push(packet(1), now);
      owed -= 480;
    }
    jb.pull(out);
    now += 10;
    if (step >= 54_000) lastMinute.push(jb.bufferedMs);
  }
  // The level saws by a packet between pushes and pulls; its mean is what the ear gets as delay.
  const mean = lastMinute.reduce((a, b) => a + b, 0) / lastMinute.length;
  t.ok(Math.abs(mean - 20) <= 8, `after 10 minutes the mean level is ${mean.toFixed(1)} ms (target 20; 0.3 % clock difference)`);
  t.ok(jb.trimmedFrames > 0, `drift trimmed ${jb.trimmedFrames} frames instead of dropping packets`);
  t.equal(jb.droppedMs, 0, 'no packet dropped');
});
