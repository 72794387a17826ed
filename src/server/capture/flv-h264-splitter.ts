/**
 * H.264 splitter: turns ffmpeg's video stdout, an FLV stream of H.264 (`-f flv`), into complete
 * access units in Annex-B byte format for the hub. Sits between the video FfmpegProcess and the hub
 * when `serve --video-codec h264`.
 *
 * Why FLV and not raw Annex-B (`-f h264`): a raw H.264 stream has no lengths, so the end of an access
 * unit is only known when the next one starts (an AUD or the next slice), which holds every frame
 * back by one frame interval. Measured on 1280x720 testsrc2 at 30 fps, libx264 ultrafast/zerolatency:
 * write of a raw frame → access unit complete in Node, p50 39 ms with `-f h264` + AUD split, 4–7 ms
 * with `-f flv` (see docs/codecs.md). An FLV tag carries its size up front (like our own chunks), so
 * a frame is emitted the moment its last byte arrives.
 *
 *  FLV header  "FLV" | version | flags | headerBytes u32 (= 9) | previousTagBytes0 u32 (= 0)
 *  tag         type u8 | dataBytes u24 | timestamp u24 + ext u8 | streamId u24 | data | prevTagBytes u32
 *  video data  frameType(4) codecId(4) = 7 (AVC) | avcPacketType u8 | compositionTime s24 | payload
 *              avcPacketType 0: AVCDecoderConfigurationRecord (SPS/PPS), 1: NAL units, each
 *              prefixed with a big-endian length of lengthSizeMinusOne + 1 bytes.
 *
 * Each access unit is re-emitted as `00 00 00 01 NAL …` without AUDs; an IDR access unit (NAL type 5)
 * gets the SPS and PPS of the latest configuration record in front unless it carries its own, so a
 * viewer can start decoding at any keyframe. Tags other than video (script data) are skipped.
 * Everything is checked from headers before buffering: a tag above maxFrameBytes is skipped and
 * reported, never held whole. ffmpeg's own output cannot resync once the structure is wrong, so a
 * malformed stream fails the splitter for good (onCorrupt, once) until reset().
 */

const FLV_HEADER_BYTES = 9;
const PREVIOUS_TAG_BYTES = 4;
const TAG_HEADER_BYTES = 11;
const TAG_VIDEO = 9;
const CODEC_AVC = 7;
const AVC_SEQUENCE_HEADER = 0;
const AVC_NALU = 1;
const VIDEO_DATA_HEADER_BYTES = 5;

export const NalType = { IDR: 5, SEI: 6, SPS: 7, PPS: 8, AUD: 9 } as const;
export const START_CODE: Buffer = Buffer.from([0, 0, 0, 1]);

export interface FlvH264SplitterOptions {
  /** Access units above this are dropped (never buffered whole) and reported through onOversize. */
  maxFrameBytes: number;
  onAccessUnit: (annexB: Buffer, keyframe: boolean) => void;
  onOversize?: (bytes: number) => void;
  /** The stream is not what ffmpeg writes with `-f flv` (called once; the splitter then ignores input). */
  onCorrupt?: (reason: string) => void;
}

const Stage = { FILE_HEADER: 0, TAG_HEADER: 1, TAG_BODY: 2, SKIP: 3, FAILED: 4 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

export class FlvH264Splitter {
  readonly #o: FlvH264SplitterOptions;
  #stage: Stage = Stage.FILE_HEADER;
  #pieces: Buffer[] = [];
  #buffered = 0;
  /** Bytes the current stage waits for (header sizes, tag body + trailing previousTagBytes). */
  #need = FLV_HEADER_BYTES + PREVIOUS_TAG_BYTES;
  #tagType = 0;
  #skipBytes = 0;
  #lengthBytes = 4;
  #parameterSets: Buffer[] = [];
  #accessUnits = 0;
  /** After a skipped (oversize) frame the frames that reference it cannot decode: wait for an IDR. */
  #waitKeyframe = false;

  constructor(opts: FlvH264SplitterOptions) {
    if (!Number.isInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 16) {
      throw new RangeError(`maxFrameBytes must be an integer >= 16, got ${opts.maxFrameBytes}`);
    }
    this.#o = opts;
  }

  /** Access units emitted so far (tests, diagnostics). */
  get accessUnits(): number {
    return this.#accessUnits;
  }

  get failed(): boolean {
    return this.#stage === Stage.FAILED;
  }

  /** Start over at an FLV file header (a new ffmpeg after a capture restart writes one). */
  reset(): void {
    this.#stage = Stage.FILE_HEADER;
    this.#need = FLV_HEADER_BYTES + PREVIOUS_TAG_BYTES;
    this.#pieces = [];
    this.#buffered = 0;
    this.#parameterSets = [];
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.#stage !== Stage.FAILED) {
      if (this.#stage === Stage.SKIP) {
        const n = Math.min(this.#skipBytes, chunk.length - at);
        this.#skipBytes -= n;
        at += n;
        if (this.#skipBytes === 0) this.#expectTag();
        continue;
      }
      const n = Math.min(this.#need - this.#buffered, chunk.length - at);
      this.#pieces.push(chunk.subarray(at, at + n));
      this.#buffered += n;
      at += n;
      if (this.#buffered < this.#need) break;
      const whole = this.#pieces.length === 1 ? this.#pieces[0]! : Buffer.concat(this.#pieces, this.#buffered);
      this.#pieces = [];
      this.#buffered = 0;
      this.#step(whole);
    }
  }

  #step(b: Buffer): void {
    switch (this.#stage) {
      case Stage.FILE_HEADER:
        if (b.toString('latin1', 0, 3) !== 'FLV' || b.readUInt32BE(5) !== FLV_HEADER_BYTES) {
          this.#fail(`not an FLV stream (starts with ${b.subarray(0, 8).toString('hex')})`);
          return;
        }
        this.#expectTag();
        return;
      case Stage.TAG_HEADER: {
        this.#tagType = b[0]!;
        const dataBytes = b.readUIntBE(1, 3);
        if (b.readUIntBE(8, 3) !== 0) {
          this.#fail(`FLV tag with stream id ${b.readUIntBE(8, 3)} (expected 0)`);
          return;
        }
        const bodyBytes = dataBytes + PREVIOUS_TAG_BYTES;
        if (this.#tagType !== TAG_VIDEO || dataBytes > this.#o.maxFrameBytes) {
          if (this.#tagType === TAG_VIDEO) {
            this.#waitKeyframe = true;
            this.#o.onOversize?.(dataBytes);
          }
          this.#stage = Stage.SKIP;
          this.#skipBytes = bodyBytes;
          return;
        }
        this.#stage = Stage.TAG_BODY;
        this.#need = bodyBytes;
        return;
      }
      case Stage.TAG_BODY:
        this.#videoTag(b.subarray(0, b.length - PREVIOUS_TAG_BYTES));
        if (this.#stage === Stage.TAG_BODY) this.#expectTag();
        return;
    }
  }

  #expectTag(): void {
    this.#stage = Stage.TAG_HEADER;
    this.#need = TAG_HEADER_BYTES;
  }

  #videoTag(data: Buffer): void {
    if (data.length < VIDEO_DATA_HEADER_BYTES) return; // an empty tag carries nothing to show
    if ((data[0]! & 0x0f) !== CODEC_AVC) {
      this.#fail(`FLV video codec id ${data[0]! & 0x0f} (expected 7, H.264)`);
      return;
    }
    const packetType = data[1]!;
    const payload = data.subarray(VIDEO_DATA_HEADER_BYTES);
    if (packetType === AVC_SEQUENCE_HEADER) this.#configuration(payload);
    else if (packetType === AVC_NALU) this.#accessUnit(payload);
  }

  /** AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1): NAL length size, SPS and PPS. */
  #configuration(p: Buffer): void {
    if (p.length < 7) {
      this.#fail(`AVC configuration record of ${p.length} bytes (expected at least 7)`);
      return;
    }
    this.#lengthBytes = (p[4]! & 0x03) + 1;
    const sets: Buffer[] = [];
    let at = 5;
    for (const countMask of [0x1f, 0xff]) {
      if (at >= p.length) break;
      const count = p[at++]! & countMask;
      for (let i = 0; i < count; i++) {
        if (at + 2 > p.length) return this.#fail('truncated AVC configuration record');
        const len = p.readUInt16BE(at);
        at += 2;
        if (at + len > p.length) return this.#fail('truncated AVC configuration record');
        sets.push(Buffer.from(p.subarray(at, at + len)));
        at += len;
      }
    }
    this.#parameterSets = sets;
  }

  #accessUnit(p: Buffer): void {
    const nals: Buffer[] = [];
    let keyframe = false;
    let hasSps = false;
    let at = 0;
    while (at < p.length) {
      if (at + this.#lengthBytes > p.length) return this.#fail('truncated NAL length in an FLV video tag');
      const len = p.readUIntBE(at, this.#lengthBytes);
      at += this.#lengthBytes;
      if (len === 0 || at + len > p.length) return this.#fail(`NAL of ${len} bytes does not fit its FLV tag`);
      const nal = p.subarray(at, at + len);
      at += len;
      const type = nal[0]! & 0x1f;
      if (type === NalType.AUD) continue;
      if (type === NalType.IDR) keyframe = true;
      if (type === NalType.SPS) hasSps = true;
      nals.push(nal);
    }
    if (nals.length === 0 || (this.#waitKeyframe && !keyframe)) return;
    this.#waitKeyframe = false;
    const withSets = keyframe && !hasSps ? [...this.#parameterSets, ...nals] : nals;
    // The limit holds for what is sent, not for the tag: the parameter sets added to an IDR and
    // 4-byte start codes in place of shorter NAL lengths can take a tag just under it over.
    const bytes = withSets.reduce((n, nal) => n + START_CODE.length + nal.length, 0);
    if (bytes > this.#o.maxFrameBytes) {
      this.#waitKeyframe = true;
      this.#o.onOversize?.(bytes);
      return;
    }
    const parts: Buffer[] = [];
    for (const nal of withSets) parts.push(START_CODE, nal);
    this.#accessUnits++;
    this.#o.onAccessUnit(Buffer.concat(parts), keyframe);
  }

  #fail(reason: string): void {
    this.#stage = Stage.FAILED;
    this.#pieces = [];
    this.#buffered = 0;
    this.#o.onCorrupt?.(reason);
  }
}

/** NAL unit types of an Annex-B buffer in order (tests, viewer checks). */
export function annexBNalTypes(annexB: Buffer): number[] {
  const types: number[] = [];
  let i = 0;
  for (;;) {
    const j = annexB.indexOf(START_CODE.subarray(1), i);
    if (j === -1 || j + 3 >= annexB.length) return types;
    types.push(annexB[j + 3]! & 0x1f);
    i = j + 3;
  }
}
