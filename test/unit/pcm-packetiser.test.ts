import t from 'tap';
import { PcmPacketiser, SLEW_DEADBAND_US, SLEW_STEP_US } from '../../src/server/capture/pcm-packetiser.js';
import { MediaFlag } from '../../src/protocol/constants.js';

interface Packet {
  pcm: Buffer;
  ptsUs: number;
  flags: number;
}

function make(opts: { sampleRateHz?: number; channels?: number; packetMs?: number; maxDriftUs?: number } = {}) {
  let fakeNowUs = 1_000_000;
  const packets: Packet[] = [];
  const p = new PcmPacketiser({
    sampleRateHz: opts.sampleRateHz ?? 48_000,
    channels: opts.channels ?? 1,
    packetMs: opts.packetMs ?? 10,
    ...(opts.maxDriftUs === undefined ? {} : { maxDriftUs: opts.maxDriftUs }),
    clock: () => fakeNowUs,
    onPacket: (pcm, ptsUs, flags) => packets.push({ pcm, ptsUs, flags }),
  });
  return {
    p,
    packets,
    setNow: (us: number) => {
      fakeNowUs = us;
    },
  };
}

/** Bytes 0,1,2,… so reassembly order is checkable. */
function ramp(bytes: number, start = 0): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (start + i) & 0xff;
  return b;
}

t.test('10 ms at 48 kHz mono s16 is 960 bytes; stereo 1920', async (t) => {
  t.equal(make().p.packetBytes, 960);
  t.equal(make({ channels: 2 }).p.packetBytes, 1920);
  t.equal(make({ sampleRateHz: 44_100 }).p.packetBytes, 882);
  t.throws(() => make({ sampleRateHz: 44_100, packetMs: 5 }), RangeError, '220.5 samples is refused');
});

t.test('emits only whole packets and keeps the rest, byte-exact across odd splits', async (t) => {
  const { p, packets } = make();
  const data = ramp(960 * 5 + 333);
  // Odd sizes split samples across chunks.
  const sizes = [1, 959, 3, 1001, 7, 1500, 1, 1];
  let at = 0;
  for (let k = 0; at < data.length; k++) {
    const n = sizes[k % sizes.length]!;
    p.push(data.subarray(at, at + n));
    at += n;
  }
  t.equal(packets.length, 5);
  t.ok(packets.every((x) => x.pcm.length === 960));
  t.ok(Buffer.concat(packets.map((x) => x.pcm)).equals(data.subarray(0, 960 * 5)), 'no byte lost or reordered');
});

t.test('PTS advance by sample count, anchored at arrival minus buffered duration', async (t) => {
  const { p, packets, setNow } = make();
  setNow(5_000_000);
  p.push(Buffer.alloc(960 * 3)); // 30 ms arrive at once at t=5 s: they started at 4.97 s
  t.same(
    packets.map((x) => x.ptsUs),
    [4_970_000, 4_980_000, 4_990_000],
  );
  // Next arrives a bit late (jitter under the limit): PTS keep the sample-count cadence.
  setNow(5_012_000);
  p.push(Buffer.alloc(960));
  t.equal(packets[3]!.ptsUs, 5_000_000);
  t.ok(
    packets.every((x) => x.flags === 0),
    'no discontinuity',
  );
});

t.test('partial packet buffered before the anchor counts toward the anchor', async (t) => {
  const { p, packets, setNow } = make();
  setNow(2_000_000);
  p.push(Buffer.alloc(480)); // 5 ms, no packet yet
  setNow(2_010_000);
  p.push(Buffer.alloc(960)); // now 15 ms buffered, newest byte at 2.010 s → first sample at 1.995 s
  t.equal(packets.length, 1);
  t.equal(packets[0]!.ptsUs, 1_995_000);
});

t.test('a slow card clock: persistent lateness re-anchors forward, by the smallest lateness', async (t) => {
  const { p, packets, setNow } = make({ maxDriftUs: 20_000 });
  let now = 0;
  // A card running 3 % slow relative to the server clock: each 10 ms packet arrives 10.3 ms later.
  for (let i = 0; i < 300; i++) {
    now += 10_300;
    setNow(now);
    p.push(Buffer.alloc(960));
  }
  const flagged = packets.map((x, i) => ((x.flags & MediaFlag.DISCONTINUITY) !== 0 ? i : -1)).filter((i) => i >= 0);
  t.ok(flagged.length >= 2, `re-anchored at packets ${flagged.join(',')}`);
  t.equal(p.reanchors, flagged.length);
  for (let i = 1; i < packets.length; i++) {
    const step = packets[i]!.ptsUs - packets[i - 1]!.ptsUs;
    if (flagged.includes(i)) t.ok(step > 10_000, `forward jump at ${i} (${step} µs)`);
    else if (step !== 10_000 && step !== 10_000 + SLEW_STEP_US) t.fail(`step ${step} µs at unflagged packet ${i}`);
  }
  // Never later than arrival allows, never more than limit + one window of drift behind it.
  for (let i = 0; i < packets.length; i++) {
    const arrivalStart = (i + 1) * 10_300 - 10_000;
    const lag = arrivalStart - packets[i]!.ptsUs;
    if (lag < 0 || lag > 20_000 + 0.03 * 1_000_000) t.fail(`packet ${i} lags its arrival by ${lag} µs`);
  }
});

t.test('a fast card clock: data earlier than its PTS re-anchors backward at once', async (t) => {
  const { p, packets, setNow } = make({ maxDriftUs: 20_000 });
  let now = 0;
  for (let i = 0; i < 100; i++) {
    now += 9_700;
    setNow(now);
    p.push(Buffer.alloc(960));
  }
  const flagged = packets.map((x, i) => ((x.flags & MediaFlag.DISCONTINUITY) !== 0 ? i : -1)).filter((i) => i >= 0);
  t.ok(flagged.length >= 1, `re-anchored at ${flagged.join(',')}`);
  for (let i = 0; i < packets.length; i++) {
    const arrivalStart = (i + 1) * 9_700 - 10_000;
    if (packets[i]!.ptsUs - arrivalStart > 20_000) t.fail(`packet ${i} is ${packets[i]!.ptsUs - arrivalStart} µs ahead of the clock`);
  }
  const first = flagged[0]!;
  t.equal(packets[first]!.ptsUs, (first + 1) * 9_700 - 10_000, 'set to the arrival-based time');
});

t.test('a device clock tens of ppm off the server clock: PTS follows it for 30 minutes, without a jump', async (t) => {
  for (const ppm of [33, -33, 150, -150]) {
    const { p, packets, setNow } = make({ packetMs: 5 });
    // 5 ms packets as pulse delivers them, each late by 0–3 ms (a fixed pseudo-random sequence, at
    // least one on time in every 20), on a device clock `ppm` fast (> 0) or slow.
    let seed = 7;
    const delayUs = (k: number) => (k % 20 === 0 ? 0 : (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 3000);
    const periodUs = 5_000 * (1 - ppm * 1e-6);
    const n = (30 * 60 * 1000) / 5;
    let worstUs = 0;
    for (let k = 0; k < n; k++) {
      setNow(1_000_000 + (k + 1) * periodUs + delayUs(k));
      p.push(Buffer.alloc(480));
      // Once settled (the first second), how far the PTS is from when the packet's first sample was captured.
      if (k > 200) worstUs = Math.max(worstUs, Math.abs(packets[k]!.ptsUs - (1_000_000 + k * periodUs)));
    }
    t.equal(packets.length, n, `${ppm} ppm: every packet out`);
    t.equal(p.reanchors, 0, `${ppm} ppm: no re-anchor (a ${Math.abs(ppm * 1.8).toFixed(0)} ms drift over 30 min before)`);
    t.equal(packets.filter((x) => x.flags & MediaFlag.DISCONTINUITY).length, 0, `${ppm} ppm: no DISCONTINUITY`);
    t.ok(worstUs <= SLEW_DEADBAND_US + SLEW_STEP_US + 100, `${ppm} ppm: PTS within ${(worstUs / 1000).toFixed(2)} ms of capture`);
    t.ok(Math.abs(p.slewedUs + ppm * 1e-6 * n * 5_000) < 2_000, `${ppm} ppm: slewed ${(p.slewedUs / 1000).toFixed(1)} ms in all`);
  }
});

t.test('jitter below the limit does not re-anchor', async (t) => {
  const { p, packets, setNow } = make({ maxDriftUs: 20_000 });
  const jitterUs = [0, 8_000, 2_000, 15_000, 500, 12_000];
  for (let i = 0; i < 200; i++) {
    setNow(1_000_000 + (i + 1) * 10_000 + jitterUs[i % jitterUs.length]!);
    p.push(Buffer.alloc(960));
  }
  t.equal(p.reanchors, 0);
  t.ok(packets.every((x, i) => x.ptsUs === packets[0]!.ptsUs + i * 10_000));
});

t.test('a 130 ms stall followed by a catch-up burst keeps the timeline (no discontinuity)', async (t) => {
  const { p, packets, setNow } = make();
  let i = 0;
  const deliver = (atUs: number) => {
    setNow(atUs);
    p.push(Buffer.alloc(960));
    i++;
  };
  while (i < 50) deliver((i + 1) * 10_000);
  const stalledUntil = (i + 1) * 10_000 + 130_000;
  while (i < 63) deliver(stalledUntil); // 13 packets at once
  while (i < 200) deliver((i + 1) * 10_000);
  t.equal(p.reanchors, 0);
  t.ok(
    packets.every((x, k) => x.ptsUs === k * 10_000),
    'PTS stayed on the sample clock',
  );
});

t.test('lost samples (a lasting 100 ms gap) re-anchor forward once, within a second', async (t) => {
  const { p, packets, setNow } = make();
  for (let i = 0; i < 50; i++) {
    setNow((i + 1) * 10_000);
    p.push(Buffer.alloc(960));
  }
  for (let i = 50; i < 200; i++) {
    setNow((i + 1) * 10_000 + 100_000);
    p.push(Buffer.alloc(960));
  }
  t.equal(p.reanchors, 1);
  const k = packets.findIndex((x) => x.flags === MediaFlag.DISCONTINUITY);
  t.ok(k >= 50 && k < 150, `corrected at packet ${k}`);
  t.equal(packets[k]!.ptsUs, k * 10_000 + 100_000, 'by exactly the gap');
  t.equal(packets.at(-1)!.ptsUs, 199 * 10_000 + 100_000);
});

t.test('reset drops a partial packet and flags the next packet DISCONTINUITY', async (t) => {
  const { p, packets, setNow } = make();
  setNow(100_000);
  p.push(Buffer.alloc(960));
  t.equal(packets[0]!.flags, 0, 'the very first packet is not a discontinuity');
  p.push(ramp(500));
  p.reset();
  setNow(900_000);
  p.push(ramp(960, 7));
  t.equal(packets.length, 2);
  t.ok(packets[1]!.pcm.equals(ramp(960, 7)), 'stale half packet was dropped');
  t.equal(packets[1]!.flags, MediaFlag.DISCONTINUITY);
  t.equal(packets[1]!.ptsUs, 890_000, 'fresh anchor');
  setNow(910_000);
  p.push(Buffer.alloc(960));
  t.equal(packets[2]!.flags, 0);
});

function pushAll(p: PcmPacketiser, chunks: number[]): void {
  for (const n of chunks) p.push(Buffer.alloc(n));
}

const fragments = (n: number, bytes = 960): number[] => Array<number>(n).fill(bytes);

t.test('a first chunk of odd size (pulse) no longer makes every later packet wait for the next chunk', async (t) => {
  const { p, packets, setNow } = make();
  let now = 1_000_000;
  const sizes = [1680, ...fragments(100)]; // as captured: 1.75 packets, then 10 ms fragments
  let arrived = 0;
  const leftover: number[] = [];
  for (const n of sizes) {
    now += 10_000;
    setNow(now);
    p.push(ramp(n, arrived));
    arrived += n;
    // Bytes of this chunk still waiting for the next one: they make the whole stream that much later.
    const emitted = packets.reduce((s, x) => s + x.pcm.length, 0);
    leftover.push(arrived - emitted - p.alignedFrames * 2);
  }
  t.same(leftover.slice(0, 3), [720, 720, 720], 'out of phase at first');
  const tail = leftover.slice(-50);
  t.ok(
    tail.every((x) => x === 0),
    `leftover after each of the last 50 chunks: ${[...new Set(tail)].join(',')} bytes`,
  );
  t.equal(p.alignedFrames, 360, 'dropped once: the 720-byte leftover (7.5 ms)');
  const steps = packets.slice(1).map((x, i) => x.ptsUs - packets[i]!.ptsUs);
  t.ok(
    steps.every((s) => s === 10_000 || s === 17_500),
    'PTS stay on the sample clock',
  );
  t.equal(steps.filter((s) => s === 17_500).length, 1, 'one 7.5 ms skip where the bytes were dropped');
  t.ok(
    packets.every((x) => x.pcm.length === 960 && x.flags === 0),
    'whole packets, no discontinuity',
  );
});

t.test('5 ms chunks out of phase are aligned too; aligned chunks are never touched', async (t) => {
  const odd = make();
  pushAll(odd.p, [240, ...fragments(60, 480)]);
  t.equal(odd.p.alignedFrames, 120, '2.5 ms dropped once');
  const even = make();
  pushAll(even.p, fragments(2000, 480));
  t.equal(even.p.alignedFrames, 0, 'nothing dropped when packets already end on chunk ends');
  const alsa = make();
  pushAll(alsa.p, fragments(400, 2048)); // 1024-frame periods: some chunk always ends on a packet end
  t.equal(alsa.p.alignedFrames, 0);
});

t.test('alignment drops at most once per cooldown, and never a leftover of 1 ms or less', async (t) => {
  const twice = make();
  // Out of phase at start, aligned, then out of phase again 2 s later: the second stays (cooldown).
  pushAll(twice.p, [1680, ...fragments(200), 500, ...fragments(200)]);
  t.equal(twice.p.alignedFrames, 360);
  const small = make();
  pushAll(small.p, [96, ...fragments(100)]); // 1 ms out of phase
  t.equal(small.p.alignedFrames, 0);
  const off = new PcmPacketiser({ sampleRateHz: 48_000, channels: 1, packetMs: 10, clock: () => 0, alignToChunks: false, onPacket: () => undefined });
  pushAll(off, [1680, ...fragments(100)]);
  t.equal(off.alignedFrames, 0, 'alignToChunks: false keeps every byte');
});

t.test('a restarted capture (reset) may align again at once', async (t) => {
  const { p } = make();
  pushAll(p, [1680, ...fragments(50)]);
  p.reset();
  pushAll(p, [500, ...fragments(50)]);
  t.equal(p.alignedFrames, 360 + 250);
});
