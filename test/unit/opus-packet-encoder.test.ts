import t, { type Test } from 'tap';
import { MediaFlag } from '../../src/protocol/constants.js';
import { OpusPacketEncoder, OPUS_SAMPLE_RATE_HZ } from '../../src/server/capture/opus-packet-encoder.js';
import type { CapturedChunk } from '../../src/server/capture/capture-types.js';
// The viewer's decoder: what serve's packets must decode with (a test may use both sides).
import { OpusDecoder, opusSamples } from '../../src/client/decoders/opus-decoder.js';
import { silentLogger } from '../../src/shared/logger.js';
import { dominantFrequencyHz, sineS16le } from '../helpers/tone.js';

const PACKET_SAMPLES = 480; // 10 ms at 48 kHz

function encoder(t: Test, o: { channels?: number; bitrateKbps?: number } = {}): OpusPacketEncoder {
  const enc = new OpusPacketEncoder({ channels: o.channels ?? 1, bitrateKbps: o.bitrateKbps ?? 64, packetMs: 10 });
  t.teardown(() => enc.destroy());
  return enc;
}

/** Packet n of a continuous tone, stamped as capture would (10 ms apart). */
function pcmPacket(frequenciesHz: number[], n: number, flags = 0): CapturedChunk {
  return { data: sineS16le(frequenciesHz, OPUS_SAMPLE_RATE_HZ, PACKET_SAMPLES, n * PACKET_SAMPLES), ptsUs: 1_000_000 + n * 10_000, flags };
}

async function viewerDecoder(t: Test, channels: number): Promise<{ dec: OpusDecoder; pcm: Buffer[] }> {
  const pcm: Buffer[] = [];
  const dec = new OpusDecoder({ channels, logger: silentLogger(), onPcm: (p) => pcm.push(p), onError: (e) => t.fail(e.message) });
  await dec.start();
  t.teardown(() => dec.destroy());
  return { dec, pcm };
}

function channelOf(pcm: Buffer, channel: number): Buffer {
  const out = Buffer.alloc(pcm.length / 2);
  for (let i = 0; i < out.length / 2; i++) out.writeInt16LE(pcm.readInt16LE(4 * i + 2 * channel), 2 * i);
  return out;
}

function peak(pcm: Buffer): number {
  let max = 0;
  for (let i = 0; i < pcm.length; i += 2) max = Math.max(max, Math.abs(pcm.readInt16LE(i)));
  return max;
}

t.test('a 440 Hz tone in 10 ms packets: one Opus packet each, same PTS and flags, decodes to the tone', async (t) => {
  const enc = encoder(t);
  t.equal(enc.pcmBytes, 960, '10 ms of s16 mono');
  const { dec, pcm } = await viewerDecoder(t, 1);
  const flagsOf = (n: number) => (n === 0 ? MediaFlag.DISCONTINUITY : 0);
  for (let n = 0; n < 50; n++) {
    const input = pcmPacket([440], n, flagsOf(n));
    const out = enc.encode(input);
    t.equal(out.ptsUs, input.ptsUs, `packet ${n}: PTS kept`);
    t.equal(out.flags, input.flags, `packet ${n}: flags kept`);
    t.equal(opusSamples(out.data), PACKET_SAMPLES, `packet ${n}: one valid 10 ms Opus packet`);
    t.ok(out.data.length < 200, `packet ${n}: compressed (${out.data.length} bytes, PCM is 960)`);
    dec.push(out.data, out.ptsUs, false);
    t.equal(pcm.length, n + 1, `packet ${n} decoded`);
    t.equal(pcm[n]!.length, PACKET_SAMPLES * 2, `packet ${n}: 480 samples`);
  }
  t.equal(dec.malformedPackets, 0);
  // Skip the first packets: the 2.5 ms look-ahead ramps in there.
  const tone = Buffer.concat(pcm.slice(2));
  const hz = dominantFrequencyHz(tone, OPUS_SAMPLE_RATE_HZ);
  t.ok(Math.abs(hz - 440) < 5, `tone at ${hz.toFixed(1)} Hz`);
  t.ok(peak(tone) > 12_000 && peak(tone) < 20_000, `tone at about the input level (peak ${peak(tone)}, input 16000)`);
});

t.test('stereo keeps left and right apart', async (t) => {
  const enc = encoder(t, { channels: 2, bitrateKbps: 128 });
  t.equal(enc.pcmBytes, 1920);
  const { dec, pcm } = await viewerDecoder(t, 2);
  for (let n = 0; n < 40; n++) dec.push(enc.encode(pcmPacket([440, 1000], n)).data, n * 10_000, false);
  t.equal(pcm.length, 40);
  const both = Buffer.concat(pcm.slice(2));
  const left = dominantFrequencyHz(channelOf(both, 0), OPUS_SAMPLE_RATE_HZ);
  const right = dominantFrequencyHz(channelOf(both, 1), OPUS_SAMPLE_RATE_HZ);
  t.ok(Math.abs(left - 440) < 5, `left at ${left.toFixed(1)} Hz`);
  t.ok(Math.abs(right - 1000) < 10, `right at ${right.toFixed(1)} Hz`);
});

t.test('the bitrate asked for is what goes out over 1 s (±25 %)', async (t) => {
  for (const kbps of [24, 64, 128]) {
    const enc = encoder(t, { bitrateKbps: kbps });
    let bytes = 0;
    for (let n = 0; n < 100; n++) bytes += enc.encode(pcmPacket([440], n)).data.length;
    const measuredKbps = (bytes * 8) / 1000;
    t.ok(Math.abs(measuredKbps - kbps) <= kbps * 0.25, `${kbps} kbit/s asked, ${measuredKbps.toFixed(1)} kbit/s out`);
  }
});

t.test('each returned packet is its own copy, not a view the next encode overwrites', async (t) => {
  const enc = encoder(t);
  const first = enc.encode(pcmPacket([440], 0)).data;
  const saved = Buffer.from(first);
  enc.encode(pcmPacket([3000], 1));
  enc.encode(pcmPacket([200], 2));
  t.same(first, saved);
});

t.test('a PCM packet of the wrong size is refused with a RangeError; the encoder goes on', async (t) => {
  const enc = encoder(t);
  const { dec, pcm } = await viewerDecoder(t, 1);
  for (let n = 0; n < 5; n++) dec.push(enc.encode(pcmPacket([440], n)).data, 0, false);
  for (const bytes of [0, 958, 961, 1920, 10_000]) {
    t.throws(() => enc.encode({ data: Buffer.alloc(bytes, 1), ptsUs: 0, flags: 0 }), {
      name: 'RangeError',
      message: `expects 960-byte PCM packets, got ${bytes} bytes`,
    });
  }
  for (let n = 5; n < 20; n++) dec.push(enc.encode(pcmPacket([440], n)).data, 0, false);
  t.equal(pcm.length, 20, 'every good packet still decodes');
  const hz = dominantFrequencyHz(Buffer.concat(pcm.slice(5)), OPUS_SAMPLE_RATE_HZ);
  t.ok(Math.abs(hz - 440) < 5, `the tone goes on at ${hz.toFixed(1)} Hz`);
});

t.test('reset() after a capture restart, destroy() twice, encode after destroy', async (t) => {
  const enc = new OpusPacketEncoder({ channels: 1, bitrateKbps: 64, packetMs: 10 });
  const fresh = encoder(t);
  const continued = encoder(t); // the same history as enc, never reset
  for (let n = 0; n < 10; n++) {
    enc.encode(pcmPacket([440], n));
    continued.encode(pcmPacket([440], n));
  }
  enc.reset();
  // After reset() the encoder starts over: the same packets out as a new encoder's, byte for byte.
  const after = [10, 11, 12, 13, 14].map((n) => enc.encode(pcmPacket([660], n)).data);
  t.same(
    after,
    [10, 11, 12, 13, 14].map((n) => fresh.encode(pcmPacket([660], n)).data),
    'after reset(): the same bytes as a new encoder for the same input',
  );
  // Control: without reset() the history shows in the bytes, so the comparison above can fail.
  t.notSame(
    [10, 11, 12, 13, 14].map((n) => continued.encode(pcmPacket([660], n)).data),
    after,
    'an encoder with the same history, not reset, gives other bytes',
  );
  t.equal(opusSamples(after[0]!), PACKET_SAMPLES);
  enc.destroy();
  enc.destroy();
  t.throws(() => enc.encode(pcmPacket([440], 2)), /after destroy/);
  t.doesNotThrow(() => enc.reset());
});

t.test('settings outside what libopus and the viewer take are refused', async (t) => {
  t.throws(() => new OpusPacketEncoder({ channels: 1, bitrateKbps: 64, packetMs: 7 }), /packetMs/);
  t.throws(() => new OpusPacketEncoder({ channels: 1, bitrateKbps: 5, packetMs: 10 }), /bitrateKbps/);
  t.throws(() => new OpusPacketEncoder({ channels: 1, bitrateKbps: 64.5, packetMs: 10 }), /bitrateKbps/);
  t.throws(() => new OpusPacketEncoder({ channels: 6, bitrateKbps: 64, packetMs: 10 }), /1 or 2 channels/);
});

t.test('two encoders at once do not disturb each other (one WASM module, separate state)', async (t) => {
  const a = encoder(t);
  const b = encoder(t);
  const solo = encoder(t);
  for (let n = 0; n < 20; n++) {
    const fromA = a.encode(pcmPacket([440], n)).data;
    b.encode(pcmPacket([1000], n));
    t.same(fromA, solo.encode(pcmPacket([440], n)).data, `packet ${n} as from an encoder alone`);
  }
});
