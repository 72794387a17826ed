import t from 'tap';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import fc from 'fast-check';
import { MjpegSplitter } from '../../src/server/capture/mjpeg-splitter.js';

// Real JPEGs made by ffmpeg's MJPEG encoder (testsrc2 160x120, -q:v 5).
const fixture = (n: number): Buffer => readFileSync(new URL(`../fixtures/jpeg/frame${n}.jpg`, import.meta.url));
const f1 = fixture(1);
const f2 = fixture(2);
const f3 = fixture(3);

function collect(maxFrameBytes = 1 << 20): { splitter: MjpegSplitter; frames: Buffer[]; oversize: number[] } {
  const frames: Buffer[] = [];
  const oversize: number[] = [];
  const splitter = new MjpegSplitter({ maxFrameBytes, onFrame: (f) => frames.push(f), onOversize: (b) => oversize.push(b) });
  return { splitter, frames, oversize };
}

/** APP1 "Exif" segment carrying a whole JPEG (as a camera's EXIF thumbnail does): FFD8…FFD9 inside a header. */
function withExifThumbnail(jpeg: Buffer, thumbnail: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), thumbnail]);
  const header = Buffer.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 0xff]);
  return Buffer.concat([jpeg.subarray(0, 2), header, body, jpeg.subarray(2)]);
}

t.test('fixtures are what the tests assume', async (t) => {
  for (const f of [f1, f2, f3]) {
    t.same([...f.subarray(0, 2)], [0xff, 0xd8]);
    t.same([...f.subarray(-2)], [0xff, 0xd9]);
  }
  t.not(Buffer.compare(f1, f2), 0, 'frames differ');
});

t.test('splits concatenated frames exactly, in one push', async (t) => {
  const { splitter, frames } = collect();
  splitter.push(Buffer.concat([f1, f2, f3]));
  t.equal(frames.length, 3);
  t.ok(frames[0]!.equals(f1) && frames[1]!.equals(f2) && frames[2]!.equals(f3), 'byte-exact frames');
});

t.test('emits a frame the moment its EOI arrives, without waiting for the next SOI', async (t) => {
  const { splitter, frames } = collect();
  splitter.push(f1.subarray(0, f1.length - 1));
  t.equal(frames.length, 0, 'not before the last byte');
  splitter.push(f1.subarray(f1.length - 1));
  t.equal(frames.length, 1, 'right at the EOI byte');
  t.ok(frames[0]!.equals(f1));
});

t.test('every split point of a two-frame stream with garbage gives the same frames', async (t) => {
  const stream = Buffer.concat([Buffer.from([0x00, 0xff, 0x12, 0xff]), f1, Buffer.from([0xff, 0xff, 0xd9, 0x42]), f2]);
  let bad = 0;
  for (let k = 0; k <= stream.length; k++) {
    const { splitter, frames } = collect();
    splitter.push(stream.subarray(0, k));
    splitter.push(stream.subarray(k));
    if (frames.length !== 2 || !frames[0]!.equals(f1) || !frames[1]!.equals(f2)) bad++;
  }
  t.equal(bad, 0, `all ${stream.length + 1} split points`);
});

t.test('one byte at a time', async (t) => {
  const { splitter, frames } = collect();
  const stream = Buffer.concat([f1, f2]);
  for (let i = 0; i < stream.length; i++) splitter.push(stream.subarray(i, i + 1));
  t.equal(frames.length, 2);
  t.ok(frames[0]!.equals(f1) && frames[1]!.equals(f2));
});

t.test('random chunking (property)', async (t) => {
  const stream = Buffer.concat([f1, f2, f3]);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 40 }), (sizes) => {
      const { splitter, frames } = collect();
      let at = 0;
      for (let k = 0; at < stream.length; k++) {
        const n = sizes[k % sizes.length]!;
        splitter.push(stream.subarray(at, at + n));
        at += n;
      }
      return frames.length === 3 && frames[0]!.equals(f1) && frames[1]!.equals(f2) && frames[2]!.equals(f3);
    }),
    { numRuns: 300 },
  );
  t.pass('property held');
});

t.test('an FFD9 inside an APP1 (EXIF thumbnail) does not cut the frame', async (t) => {
  const withThumb = withExifThumbnail(f1, f3);
  const { splitter, frames } = collect();
  splitter.push(Buffer.concat([withThumb, f2]));
  t.equal(frames.length, 2);
  t.ok(frames[0]!.equals(withThumb), 'whole frame including the thumbnail');
  t.ok(frames[1]!.equals(f2));
  const meta = await sharp(frames[0]!).metadata();
  t.equal(meta.width, 160, 'still decodes');
});

t.test('progressive JPEG (several SOS, DHT between scans) from sharp', async (t) => {
  const progressive = await sharp(f1).jpeg({ progressive: true, quality: 70 }).toBuffer();
  const { splitter, frames } = collect();
  for (let i = 0; i < progressive.length; i += 7) splitter.push(progressive.subarray(i, i + 7));
  splitter.push(f2);
  t.equal(frames.length, 2);
  t.ok(frames[0]!.equals(progressive));
  t.ok(frames[1]!.equals(f2));
});

t.test('garbage before and between frames is skipped and counted', async (t) => {
  const junk = Buffer.from('not a jpeg \xff\x00 \xff', 'latin1');
  const { splitter, frames } = collect();
  splitter.push(Buffer.concat([junk, f1, junk, f2, junk]));
  t.equal(frames.length, 2);
  t.ok(frames[0]!.equals(f1) && frames[1]!.equals(f2));
  t.ok(splitter.garbageBytes >= junk.length * 2, `garbage counted: ${splitter.garbageBytes}`);
});

t.test('a truncated frame followed by a new SOI resyncs to the new frame', async (t) => {
  const { splitter, frames } = collect();
  // Cut inside the entropy-coded data: the next FFD8 there cannot be stuffing, so it is a new frame.
  splitter.push(Buffer.concat([f1.subarray(0, f1.length - 200), f2]));
  t.equal(frames.length, 1);
  t.ok(frames[0]!.equals(f2));
});

t.test('a broken header resyncs to the next SOI', async (t) => {
  const broken = Buffer.from(f1);
  broken[2] = 0x12; // the header must continue with a marker (FF xx)
  const { splitter, frames } = collect();
  splitter.push(Buffer.concat([broken, f2]));
  t.equal(frames.length, 1);
  t.ok(frames[0]!.equals(f2));
});

t.test('oversize frames are dropped, reported with their size, and the next fits', async (t) => {
  const big = withExifThumbnail(f1, Buffer.alloc(20_000, 0x55));
  const { splitter, frames, oversize } = collect(10_000);
  splitter.push(f2);
  for (let i = 0; i < big.length; i += 1000) splitter.push(big.subarray(i, i + 1000));
  splitter.push(f3);
  t.equal(frames.length, 2);
  t.ok(frames[0]!.equals(f2) && frames[1]!.equals(f3));
  t.same(oversize, [big.length]);
});

t.test('an oversize frame is not held in memory while it streams in', async (t) => {
  const huge = 50 * 1024 * 1024;
  const { splitter, oversize } = collect(64 * 1024);
  // SOI, then a long APP segment repeated: at 64 KiB per segment, 50 MiB of header.
  splitter.push(Buffer.from([0xff, 0xd8]));
  const segment = Buffer.alloc(65_535 + 2, 0x41);
  segment[0] = 0xff;
  segment[1] = 0xe2;
  segment[2] = 0xff;
  segment[3] = 0xff;
  let sent = 2;
  let mostHeld = 0;
  while (sent < huge) {
    splitter.push(Buffer.from(segment)); // fresh memory each time, as from a pipe
    sent += segment.length;
    mostHeld = Math.max(mostHeld, splitter.heldBytes);
  }
  splitter.push(Buffer.from([0xff, 0xd9]));
  t.same(oversize, [sent + 2]);
  // What the splitter holds, not process memory: the garbage collector's timing made that flaky.
  t.ok(mostHeld <= 64 * 1024 + segment.length, `held at most ${mostHeld} bytes while ${sent} bytes streamed`);
});

t.test('rejects a nonsensical limit', async (t) => {
  t.throws(() => new MjpegSplitter({ maxFrameBytes: 0, onFrame: () => {} }), RangeError);
});
