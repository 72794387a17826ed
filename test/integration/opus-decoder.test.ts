import t from 'tap';
import { OpusPacketEncoder } from '../../src/server/capture/opus-packet-encoder.js';
import { OpusDecoder, opusSamples } from '../../src/client/decoders/opus-decoder.js';
import { silentLogger } from '../../src/shared/logger.js';
import { captureLogger } from '../helpers/log-capture.js';
import { dominantFrequencyHz, sineS16le } from '../helpers/tone.js';

/** 0.5 s of a sine per channel as serve sends it: 10 ms Opus packets from serve's own encoder. */
function tonePackets(frequenciesHz: number[], bitrateKbps: number): Buffer[] {
  const enc = new OpusPacketEncoder({ channels: frequenciesHz.length, bitrateKbps, packetMs: 10 });
  try {
    return Array.from({ length: 50 }, (_, n) => enc.encode({ data: sineS16le(frequenciesHz, 48_000, 480, n * 480), ptsUs: 0, flags: 0 }).data);
  } finally {
    enc.destroy();
  }
}
const TONE = tonePackets([440], 64);

interface Piece {
  pcm: Buffer;
  ptsUs: number;
  discontinuity: boolean;
}

async function started(channels: number, logger = silentLogger()): Promise<{ dec: OpusDecoder; pieces: Piece[]; errors: Error[] }> {
  const pieces: Piece[] = [];
  const errors: Error[] = [];
  const dec = new OpusDecoder({
    channels,
    logger,
    onPcm: (pcm, ptsUs, discontinuity) => pieces.push({ pcm, ptsUs, discontinuity }),
    onError: (e) => errors.push(e),
  });
  await dec.start();
  return { dec, pieces, errors };
}

/** Every other s16 sample of interleaved stereo, as mono s16le. */
function channelOf(pcm: Buffer, channel: number): Buffer {
  const out = Buffer.alloc(pcm.length / 2);
  for (let i = 0; i < out.length / 2; i++) out.writeInt16LE(pcm.readInt16LE(4 * i + 2 * channel), 2 * i);
  return out;
}

t.test('each packet comes out as its PCM before push() returns, with its PTS, and the tone is 440 Hz', async (t) => {
  const packets = TONE;
  t.ok(packets.length >= 50, `${packets.length} packets in the fixture`);
  const { dec, pieces, errors } = await started(1);
  t.teardown(() => dec.destroy());
  for (const [i, p] of packets.entries()) {
    dec.push(p, 1_000_000 + i * 10_000, false);
    t.equal(pieces.length, i + 1, `packet ${i} decoded synchronously`);
    const piece = pieces[i]!;
    t.equal(piece.pcm.length, opusSamples(p) * 2, `packet ${i}: one s16 sample per packet sample`);
    t.equal(piece.ptsUs, 1_000_000 + i * 10_000);
    t.equal(piece.discontinuity, false);
  }
  t.same(errors, []);
  // Not the codec's first and last packets (its 2.5 ms delay ramps in and out there).
  const hz = dominantFrequencyHz(Buffer.concat(pieces.slice(2, -2).map((p) => p.pcm)), 48_000);
  t.ok(Math.abs(hz - 440) < 5, `tone at ${hz.toFixed(1)} Hz`);
});

t.test('DISCONTINUITY is passed through, and the tone is back right after the gap', async (t) => {
  const packets = TONE;
  const { dec, pieces } = await started(1);
  t.teardown(() => dec.destroy());
  for (let i = 0; i < 10; i++) dec.push(packets[i]!, i * 10_000, false);
  // 20 packets lost on the way: the next one arrives flagged.
  for (let i = 30; i < 48; i++) dec.push(packets[i]!, i * 10_000, i === 30);
  t.same(
    pieces.map((p) => p.discontinuity),
    [...Array(10).fill(false), true, ...Array(17).fill(false)],
  );
  t.same(
    pieces.slice(10).map((p) => p.ptsUs),
    Array.from({ length: 18 }, (_, k) => (30 + k) * 10_000),
  );
  const after = Buffer.concat(pieces.slice(11).map((p) => p.pcm));
  const hz = dominantFrequencyHz(after, 48_000);
  t.ok(Math.abs(hz - 440) < 5, `tone at ${hz.toFixed(1)} Hz after the gap`);
  let peak = 0;
  for (let i = 0; i < after.length; i += 2) peak = Math.max(peak, Math.abs(after.readInt16LE(i)));
  t.ok(peak > 3000, `the tone is audible after the gap, not concealment fading out (peak ${peak})`);
});

t.test('stereo comes out interleaved, left and right kept apart', async (t) => {
  const packets = tonePackets([440, 1000], 128);
  const { dec, pieces } = await started(2);
  t.teardown(() => dec.destroy());
  for (const [i, p] of packets.entries()) dec.push(p, i * 10_000, false);
  t.equal(pieces.length, packets.length);
  t.equal(pieces[5]!.pcm.length, 480 * 2 * 2, '10 ms of s16 stereo per packet');
  const pcm = Buffer.concat(pieces.slice(2, -2).map((p) => p.pcm));
  const left = dominantFrequencyHz(channelOf(pcm, 0), 48_000);
  const right = dominantFrequencyHz(channelOf(pcm, 1), 48_000);
  t.ok(Math.abs(left - 440) < 5, `left at ${left.toFixed(1)} Hz`);
  t.ok(Math.abs(right - 1000) < 10, `right at ${right.toFixed(1)} Hz`);
});

t.test('a malformed packet is dropped and logged, the stream goes on, nothing throws or hits stderr', async (t) => {
  const packets = TONE;
  const log = captureLogger('warn');
  const { dec, pieces } = await started(1, log.logger);
  t.teardown(() => dec.destroy());
  const stderr: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void stderr.push(args);
  t.teardown(() => void (console.error = consoleError));
  dec.push(packets[0]!, 0, false);
  // A code-3 packet claiming 63 frames of 20 ms (R5), garbage, an empty one, and one valid by
  // RFC 6716 but larger than the decoder's input buffer (4 CBR frames of 1000 bytes).
  const big = Buffer.alloc(2 + 4000, 0x55);
  big[0] = (31 << 3) | 3;
  big[1] = 4;
  t.equal(opusSamples(big), 4 * 960, 'the big packet is valid Opus');
  for (const bad of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from('not opus at all, really not'), Buffer.alloc(0), big]) {
    t.doesNotThrow(() => dec.push(bad, 10_000, false));
  }
  t.equal(dec.malformedPackets, 4);
  t.equal(pieces.length, 1, 'no PCM from malformed packets');
  dec.push(packets[1]!, 20_000, false);
  t.equal(pieces.length, 2);
  t.equal(pieces[1]!.discontinuity, true, 'the PCM after a dropped packet is flagged DISCONTINUITY');
  t.equal(pieces[1]!.pcm.length, 960);
  t.same(stderr, [], 'libopus did not print to stderr');
  const warned = log.matching('malformed Opus packet');
  t.equal(warned.length, 1, 'logged once, not once per packet');
});

t.test('packets before start() finished are dropped; the first PCM is then flagged; close() stops it', async (t) => {
  const packets = TONE;
  const pieces: Piece[] = [];
  const dec = new OpusDecoder({ channels: 1, logger: silentLogger(), onPcm: (pcm, ptsUs, discontinuity) => pieces.push({ pcm, ptsUs, discontinuity }) });
  dec.push(packets[0]!, 0, false);
  const ready = dec.start();
  dec.push(packets[1]!, 10_000, false);
  t.equal(pieces.length, 0);
  await ready;
  dec.push(packets[2]!, 20_000, false);
  t.same(
    pieces.map((p) => [p.ptsUs, p.discontinuity]),
    [[20_000, true]],
  );
  await dec.close();
  await dec.close();
  dec.push(packets[3]!, 30_000, false);
  t.equal(pieces.length, 1, 'a closed decoder ignores input');
});

t.test('opusSamples: durations from the TOC, 0 for packets that break RFC 6716 §3.4', async (t) => {
  const celt10 = (16 + 14) << 3; // config 30: CELT FB 10 ms
  const silk60 = 3 << 3; // config 3: SILK NB 60 ms
  t.equal(opusSamples(Buffer.from([celt10, 1, 2, 3])), 480, 'code 0');
  t.equal(opusSamples(Buffer.from([celt10 | 1, 1, 2])), 960, 'code 1');
  t.equal(opusSamples(Buffer.from([celt10 | 2, 1, 9, 8, 7])), 960, 'code 2');
  t.equal(opusSamples(Buffer.from([celt10 | 3, 3, 1, 2, 3])), 1440, 'code 3 CBR');
  t.equal(opusSamples(Buffer.from([celt10 | 3, 0x80 | 2, 1, 9, 8])), 960, 'code 3 VBR');
  t.equal(opusSamples(Buffer.from([celt10 | 3, 0x40 | 2, 2, 1, 2, 0, 0])), 960, 'code 3 with padding');
  t.equal(opusSamples(Buffer.from([silk60 | 3, 2, 1, 2])), 5760, '120 ms is the most');
  const bad: Array<[string, Buffer]> = [
    ['R1 empty', Buffer.alloc(0)],
    ['R2 frame over 1275 bytes', Buffer.alloc(1277, celt10)],
    ['R3 code 1 with an odd payload', Buffer.from([celt10 | 1, 1, 2, 3])],
    ['R4 code 2 length past the end', Buffer.from([celt10 | 2, 9, 1])],
    ['R4 code 2 two-byte length cut off', Buffer.from([celt10 | 2, 252])],
    ['R5 code 3 with no frames', Buffer.from([celt10 | 3, 0])],
    ['R5 code 3 over 120 ms', Buffer.from([silk60 | 3, 3, 1, 2, 3])],
    ['R6 code 3 CBR not divisible', Buffer.from([celt10 | 3, 2, 1, 2, 3])],
    ['R6 padding longer than the packet', Buffer.from([celt10 | 3, 0x40 | 1, 9, 1])],
    ['R6 padding length cut off', Buffer.from([celt10 | 3, 0x40 | 1, 255])],
    ['R7 VBR lengths past the end', Buffer.from([celt10 | 3, 0x80 | 3, 5, 5, 1, 2])],
    ['R7 VBR length bytes missing', Buffer.from([celt10 | 3, 0x80 | 2])],
  ];
  for (const [name, packet] of bad) t.equal(opusSamples(packet), 0, name);
});
