import { readFileSync } from 'node:fs';
import t from 'tap';
import { FlvH264Splitter, NalType, annexBNalTypes } from '../../src/server/capture/flv-h264-splitter.js';

// 30 frames of 320x240 testsrc2, libx264 ultrafast/zerolatency, GOP 10, as `ffmpeg -f flv` writes it
// (regenerate: see docs/codecs.md).
const FIXTURE = readFileSync(new URL('../fixtures/h264/testsrc2-320x240-g10.flv', import.meta.url));

interface Au {
  data: Buffer;
  keyframe: boolean;
}

function split(pieces: Buffer[], maxFrameBytes = 1 << 20): { aus: Au[]; oversize: number[]; corrupt: string[] } {
  const aus: Au[] = [];
  const oversize: number[] = [];
  const corrupt: string[] = [];
  const s = new FlvH264Splitter({
    maxFrameBytes,
    onAccessUnit: (data, keyframe) => aus.push({ data: Buffer.from(data), keyframe }),
    onOversize: (bytes) => oversize.push(bytes),
    onCorrupt: (reason) => corrupt.push(reason),
  });
  for (const p of pieces) s.push(p);
  return { aus, oversize, corrupt };
}

const whole = split([FIXTURE]);

t.test('every frame of real ffmpeg output comes out as one Annex-B access unit', async (t) => {
  t.equal(whole.corrupt.length, 0);
  t.equal(whole.aus.length, 30);
  t.same(
    whole.aus.map((a, i) => (a.keyframe ? i : -1)).filter((i) => i >= 0),
    [0, 10, 20],
    'IDR every 10 frames',
  );
  for (const [i, au] of whole.aus.entries()) {
    const types = annexBNalTypes(au.data);
    t.ok(au.data.subarray(0, 4).equals(Buffer.from([0, 0, 0, 1])), `AU ${i} starts with a start code`);
    t.notOk(types.includes(NalType.AUD), `AU ${i} has no AUD`);
    if (au.keyframe) {
      t.same(types.slice(0, 2), [NalType.SPS, NalType.PPS], `keyframe ${i} starts with SPS, PPS so a joining viewer can decode`);
      t.ok(types.includes(NalType.IDR));
    } else {
      t.notOk(types.includes(NalType.IDR), `AU ${i} is not an IDR`);
    }
  }
});

t.test('the stream split at every byte boundary gives the same access units', async (t) => {
  const expected = Buffer.concat(whole.aus.map((a) => a.data));
  let bad = 0;
  for (let cut = 1; cut < FIXTURE.length; cut++) {
    const { aus } = split([FIXTURE.subarray(0, cut), FIXTURE.subarray(cut)]);
    if (aus.length !== 30 || !Buffer.concat(aus.map((a) => a.data)).equals(expected)) bad++;
  }
  t.equal(bad, 0, 'no split point changes the output');
  const bytewise = split([...FIXTURE].map((b) => Buffer.from([b])));
  t.same(bytewise.aus, whole.aus, 'fed one byte at a time');
});

t.test('an access unit is emitted as soon as its tag is complete, not at the next one', async (t) => {
  // Find the end of the first video tag after the sequence header by feeding until one AU appears.
  const aus: Au[] = [];
  const s = new FlvH264Splitter({ maxFrameBytes: 1 << 20, onAccessUnit: (data, keyframe) => aus.push({ data, keyframe }) });
  let fed = 0;
  while (aus.length === 0 && fed < FIXTURE.length) s.push(FIXTURE.subarray(fed, ++fed));
  // The next byte would be the next tag's type: the AU came out with its own last byte.
  t.equal(FIXTURE[fed], 9, 'the byte after the emitting one starts the next video tag');
});

t.test('an oversize frame is skipped with the frames that depend on it, up to the next IDR', async (t) => {
  const { aus, oversize } = split([FIXTURE], 6000);
  t.ok(oversize.length >= 1 && oversize[0]! > 6000, 'reported with its size');
  t.ok(aus.length > 0 && aus[0]!.keyframe, 'first emitted AU is a keyframe');
  t.equal(aus.length, 20, 'frames 1–9 reference the skipped IDR and are dropped');
});

t.test('the size limit holds for the access unit sent, not only for its FLV tag', async (t) => {
  // The IDR goes out with the SPS and PPS of the sequence header in front: bigger than its tag.
  const idr = whole.aus[0]!.data.length;
  const { aus, oversize } = split([FIXTURE], idr - 1);
  t.ok(
    aus.every((a) => a.data.length <= idr - 1),
    `no access unit above the limit (largest ${Math.max(...aus.map((a) => a.data.length))} of ${idr - 1})`,
  );
  t.equal(oversize[0], idr, 'the IDR is reported with the size it would have been sent at');
  t.ok(aus.length > 0 && aus[0]!.keyframe, 'the stream resumes at a later IDR that fits');
});

t.test('malformed streams fail once and stay failed until reset', async (t) => {
  const flvHeader = FIXTURE.subarray(0, 13);
  const tag = (type: number, data: Buffer, streamId = 0) => {
    const h = Buffer.alloc(11);
    h[0] = type;
    h.writeUIntBE(data.length, 1, 3);
    h.writeUIntBE(streamId, 8, 3);
    const prev = Buffer.alloc(4);
    prev.writeUInt32BE(11 + data.length);
    return Buffer.concat([h, data, prev]);
  };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['not FLV', Buffer.from('RIFF\0\0\0\0WAVEfmt '), /not an FLV stream/],
    ['stream id', Buffer.concat([flvHeader, tag(9, Buffer.from([0x17, 1, 0, 0, 0]), 5)]), /stream id 5/],
    ['codec id', Buffer.concat([flvHeader, tag(9, Buffer.from([0x12, 1, 0, 0, 0, 1, 2]))]), /codec id 2/],
    ['NAL too long', Buffer.concat([flvHeader, tag(9, Buffer.from([0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x41]))]), /NAL of 9 bytes/],
    ['short config', Buffer.concat([flvHeader, tag(9, Buffer.from([0x17, 0, 0, 0, 0, 1, 2]))]), /configuration record of 2 bytes/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const corrupt: string[] = [];
    let emitted = 0;
    const s = new FlvH264Splitter({ maxFrameBytes: 1 << 20, onAccessUnit: () => emitted++, onCorrupt: (r) => corrupt.push(r) });
    s.push(bytes);
    s.push(FIXTURE); // ignored: failed for good
    t.equal(corrupt.length, 1, `${name}: reported once`);
    t.match(corrupt[0], pattern, name);
    t.equal(emitted, 0, `${name}: nothing emitted after failing`);
    t.ok(s.failed);
    s.reset();
    s.push(FIXTURE);
    t.equal(emitted, 30, `${name}: reset() starts over at a new FLV header`);
  }
  t.throws(() => new FlvH264Splitter({ maxFrameBytes: 3, onAccessUnit: () => undefined }), RangeError);
});
