import { readFileSync } from 'node:fs';
import t from 'tap';
import { MediaFlag } from '../../src/protocol/constants.js';
import { OggOpusPacketiser, opusPacketSamples } from '../../src/server/capture/ogg-opus-packetiser.js';
import { opusEncoderArgs } from '../../src/server/capture/opus-args.js';

// 0.5 s of a 440 Hz sine, written by ffmpeg with the arguments opusEncoderArgs() builds
// (libopus lowdelay, 10 ms frames, 64k, mono, -page_duration 1 -f ogg).
const FIXTURE = readFileSync(new URL('../fixtures/opus/sine-440-10ms.ogg', import.meta.url));

interface Out { packet: Buffer; ptsUs: number; flags: number }

function run(pieces: Buffer[], clock: () => number = () => 1_000_000, maxPacketBytes = 4000) {
  const out: Out[] = [];
  const corrupt: string[] = [];
  const p = new OggOpusPacketiser({
    maxPacketBytes, clock,
    onPacket: (packet, ptsUs, flags) => out.push({ packet: Buffer.from(packet), ptsUs, flags }),
    onCorrupt: (r) => corrupt.push(r),
  });
  for (const piece of pieces) p.push(piece);
  return { out, corrupt, p };
}

t.test('real ffmpeg Ogg Opus comes out as one 10 ms packet per chunk', async (t) => {
  const { out, corrupt, p } = run([FIXTURE]);
  t.same(corrupt, []);
  t.match(p.head, { channels: 1, preSkip: 120, inputSampleRateHz: 48000 }); // lowdelay: 2.5 ms look-ahead
  t.ok(out.length >= 50 && out.length <= 52, `${out.length} packets for 0.5 s`);
  t.ok(out.every((o) => opusPacketSamples(o.packet) === 480), 'every packet is 10 ms (TOC)');
  t.ok(out.every((o) => o.packet.length > 0 && o.packet.length < 200), 'sizes of a 64 kbit/s 10 ms packet');
  const steps = out.slice(1).map((o, i) => o.ptsUs - out[i]!.ptsUs);
  t.ok(steps.every((s) => Math.abs(s - 10_000) <= 1), 'PTS advance by 10 ms per packet (sample count)');
});

t.test('split at every byte boundary gives the same packets', async (t) => {
  const expected = run([FIXTURE]).out.map((o) => o.packet.toString('hex')).join();
  let bad = 0;
  for (let cut = 1; cut < FIXTURE.length; cut++) {
    if (run([FIXTURE.subarray(0, cut), FIXTURE.subarray(cut)]).out.map((o) => o.packet.toString('hex')).join() !== expected) bad++;
  }
  t.equal(bad, 0);
  t.equal(run([...FIXTURE].map((b) => Buffer.from([b]))).out.map((o) => o.packet.toString('hex')).join(), expected, 'byte by byte');
});

t.test('PTS are anchored to arrival and re-anchored (DISCONTINUITY) when the clock disagrees', async (t) => {
  // Feed page by page with a clock that runs at real pace, then jumps 200 ms ahead of the samples
  // for good (lost samples): the packetiser must follow after its lateness window.
  const pages = splitPages(FIXTURE);
  let nowUs = 5_000_000;
  const out: Out[] = [];
  const p = new OggOpusPacketiser({ maxPacketBytes: 4000, lateWindowUs: 100_000, clock: () => nowUs, onPacket: (packet, ptsUs, flags) => out.push({ packet, ptsUs, flags }) });
  for (const [i, page] of pages.entries()) {
    if (i >= 2) nowUs += 10_000;
    if (i === 20) nowUs += 200_000;
    p.push(page);
  }
  t.equal(out[0]!.ptsUs, 5_000_000, 'first packet starts 10 ms before it arrived');
  t.equal(out[0]!.flags, 0);
  const moved = out.findIndex((o) => (o.flags & MediaFlag.DISCONTINUITY) !== 0);
  t.ok(moved > 18, `re-anchored after the jump (packet ${moved})`);
  t.ok(Math.abs(out.at(-1)!.ptsUs + 10_000 - nowUs) < 2_000, 'PTS follow the clock again');
  t.equal(p.reanchors, 1);
});

t.test('a packet that continues over pages is reassembled; oversize ones are dropped', async (t) => {
  const head = splitPages(FIXTURE).slice(0, 2);
  const big = Buffer.alloc(600, 0x55);
  big[0] = 0xb8; // TOC config 23: CELT 20 ms, one frame
  const pageA = oggPage([255, 255], big.subarray(0, 510), 0);
  const pageB = oggPage([90], big.subarray(510), 960, 0x01);
  const ok = run([...head, pageA, pageB]);
  t.equal(ok.out.length, 1);
  t.ok(ok.out[0]!.packet.equals(big));
  const dropped = run([...head, pageA, pageB], () => 0, 500);
  t.equal(dropped.out.length, 0, 'above maxPacketBytes');
});

t.test('malformed streams fail once; reset() starts over', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['not Ogg', Buffer.from('RIFF0000WAVEfmt 0000000000000000'), /not an Ogg page/],
    ['Vorbis, not Opus', oggPage([30], Buffer.from('\x01vorbis'.padEnd(30, '\0'), 'latin1'), 0), /expected OpusHead/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const { out, corrupt, p } = run([bytes, FIXTURE]);
    t.equal(corrupt.length, 1, name);
    t.match(corrupt[0], pattern);
    t.equal(out.length, 0);
    p.reset();
    p.push(FIXTURE);
    t.ok(out.length >= 50, `${name}: parses again after reset`);
  }
});

t.test('TOC durations (RFC 6716 §3.1)', async (t) => {
  t.equal(opusPacketSamples(Buffer.from([0x00])), 480, 'SILK NB 10 ms');
  t.equal(opusPacketSamples(Buffer.from([0x08 | 1])), 1920, 'SILK 20 ms, code 1: two frames');
  t.equal(opusPacketSamples(Buffer.from([(16 << 3) | 3, 4])), 480, 'CELT 2.5 ms, code 3: four frames');
  t.equal(opusPacketSamples(Buffer.from([(31 << 3) | 0])), 960, 'CELT FB 20 ms');
  t.equal(opusPacketSamples(Buffer.alloc(0)), 0);
});

t.test('encoder arguments', async (t) => {
  const args = opusEncoderArgs({ bitrateKbps: 64, frameMs: 10, sampleRateHz: 48000, channels: 1 });
  t.same(args.slice(0, 2), ['-c:a', 'libopus']);
  t.match(args.join(' '), /-application lowdelay -frame_duration 10 -b:a 64k -ac 1 -ar 48000 -page_duration 1 -f ogg/);
  t.throws(() => opusEncoderArgs({ bitrateKbps: 64, frameMs: 7, sampleRateHz: 48000, channels: 1 }), /frameMs/);
  t.throws(() => opusEncoderArgs({ bitrateKbps: 1, frameMs: 10, sampleRateHz: 48000, channels: 1 }), /bitrateKbps/);
  t.throws(() => opusEncoderArgs({ bitrateKbps: 64, frameMs: 10, sampleRateHz: 48000, channels: 6 }), /1 or 2 channels/);
});

function splitPages(ogg: Buffer): Buffer[] {
  const pages: Buffer[] = [];
  let at = 0;
  while (at < ogg.length) {
    const n = ogg[at + 26]!;
    let body = 0;
    for (let i = 0; i < n; i++) body += ogg[at + 27 + i]!;
    pages.push(ogg.subarray(at, at + 27 + n + body));
    at += 27 + n + body;
  }
  return pages;
}

function oggPage(lacing: number[], body: Buffer, granule: number, headerType = 0): Buffer {
  const h = Buffer.alloc(27 + lacing.length);
  h.write('OggS', 0, 'latin1');
  h[5] = headerType;
  h.writeBigInt64LE(BigInt(granule), 6);
  h[26] = lacing.length;
  lacing.forEach((l, i) => (h[27 + i] = l));
  return Buffer.concat([h, body]);
}
