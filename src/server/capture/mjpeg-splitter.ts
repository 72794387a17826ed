/**
 * MJPEG splitter: turns ffmpeg's video stdout (JPEGs back to back, no container) into whole frames.
 * Sits between the video FfmpegProcess and the hub.
 *
 * It walks the JPEG marker structure instead of searching for FFD9, because FFD9 also appears inside
 * marker segments (an EXIF thumbnail in APP1 is a whole JPEG of its own). Segments with a length are
 * skipped by that length; in entropy-coded data an FF is always followed by 00 (stuffing) or RSTn, so
 * any other marker there is real. A frame is emitted the moment its EOI arrives: waiting for the next
 * SOI would add a whole frame interval of latency. Each byte is looked at once (indexOf over
 * entropy data), and a frame is copied once, by Buffer.concat of the slices that hold it.
 *
 * push() takes ownership of the chunk: its bytes are referenced until the frame is complete.
 */

const SOI_BYTES = Buffer.from([0xff, 0xd8]);

const State = {
  /** Outside a frame, looking for FF. */
  SEEK_SOI: 0,
  /** Outside a frame, saw FF, next byte D8 starts a frame. */
  SEEK_SOI_FF: 1,
  /** In the header part of a frame, expecting FF of the next marker. */
  MARKER: 2,
  /** Saw FF in the header part, next byte is the marker code. */
  MARKER_CODE: 3,
  LENGTH_HI: 4,
  LENGTH_LO: 5,
  /** Skipping the body of a marker segment. */
  SKIP: 6,
  /** Entropy-coded data after SOS. */
  ENTROPY: 7,
  /** Saw FF in entropy-coded data. */
  ENTROPY_FF: 8,
} as const;
type State = (typeof State)[keyof typeof State];

const MARKER_SOI = 0xd8;
const MARKER_EOI = 0xd9;
const MARKER_SOS = 0xda;
const MARKER_TEM = 0x01;

function isRst(code: number): boolean {
  return code >= 0xd0 && code <= 0xd7;
}

export interface MjpegSplitterOptions {
  /** Frames larger than this are dropped (never buffered whole) and reported through onOversize. */
  maxFrameBytes: number;
  onFrame: (jpeg: Buffer) => void;
  onOversize?: (bytes: number) => void;
}

export class MjpegSplitter {
  readonly #maxFrameBytes: number;
  readonly #onFrame: (jpeg: Buffer) => void;
  readonly #onOversize: ((bytes: number) => void) | undefined;

  #state: State = State.SEEK_SOI;
  #pieces: Buffer[] = [];
  /** Bytes of the current frame seen so far, including dropped ones of an oversize frame. */
  #frameBytes = 0;
  #oversize = false;
  #segmentCode = 0;
  #lengthHi = 0;
  #skipBytes = 0;
  #garbageBytes = 0;

  constructor(opts: MjpegSplitterOptions) {
    if (!Number.isInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 4) {
      throw new RangeError(`maxFrameBytes must be an integer >= 4, got ${opts.maxFrameBytes}`);
    }
    this.#maxFrameBytes = opts.maxFrameBytes;
    this.#onFrame = opts.onFrame;
    this.#onOversize = opts.onOversize;
  }

  /** Bytes skipped outside frames (before an SOI, or of frames abandoned as corrupt). */
  /** Bytes of the frame in progress this splitter holds right now (0 while an oversize frame streams by). */
  get heldBytes(): number {
    return this.#pieces.reduce((n, p) => n + p.length, 0);
  }

  get garbageBytes(): number {
    return this.#garbageBytes;
  }

  /** Forget a partial frame (e.g. after a capture restart). */
  reset(): void {
    this.#abandonFrame();
    this.#state = State.SEEK_SOI;
  }

  push(chunk: Buffer): void {
    const len = chunk.length;
    let i = 0;
    // Start of the not-yet-stored part of the current frame inside this chunk (-1: not in a frame).
    let pieceStart = this.#inFrame() ? 0 : -1;

    while (i < len) {
      switch (this.#state) {
        case State.SEEK_SOI: {
          const j = chunk.indexOf(0xff, i);
          if (j === -1) {
            this.#garbageBytes += len - i;
            i = len;
          } else {
            this.#garbageBytes += j - i;
            this.#state = State.SEEK_SOI_FF;
            i = j + 1;
          }
          break;
        }
        case State.SEEK_SOI_FF: {
          const b = chunk[i++]!;
          if (b === MARKER_SOI) {
            pieceStart = this.#beginFrame(i);
          } else if (b !== 0xff) {
            this.#garbageBytes += 2;
            this.#state = State.SEEK_SOI;
          } else {
            this.#garbageBytes += 1;
          }
          break;
        }
        case State.MARKER: {
          const b = chunk[i++]!;
          if (b === 0xff) {
            this.#state = State.MARKER_CODE;
          } else {
            pieceStart = this.#corrupt(chunk, pieceStart, i);
          }
          break;
        }
        case State.MARKER_CODE:
        case State.ENTROPY_FF: {
          const b = chunk[i++]!;
          if (b === 0xff) break; // fill byte: the marker code is still to come
          if (this.#state === State.ENTROPY_FF && (b === 0x00 || isRst(b))) {
            this.#state = State.ENTROPY;
          } else if (b === MARKER_EOI) {
            this.#endFrame(chunk, pieceStart, i);
            pieceStart = -1;
          } else if (b === MARKER_SOI) {
            // A new frame starts before this one ended: the old one was truncated.
            this.#garbageBytes += this.#frameBytes + Math.max(0, i - 2 - pieceStart);
            this.#abandonFrame();
            pieceStart = this.#beginFrame(i);
          } else if (isRst(b) || b === MARKER_TEM) {
            this.#state = State.MARKER;
          } else if (b === 0x00) {
            pieceStart = this.#corrupt(chunk, pieceStart, i);
          } else {
            this.#segmentCode = b;
            this.#state = State.LENGTH_HI;
          }
          break;
        }
        case State.LENGTH_HI:
          this.#lengthHi = chunk[i++]!;
          this.#state = State.LENGTH_LO;
          break;
        case State.LENGTH_LO: {
          const segmentBytes = (this.#lengthHi << 8) | chunk[i++]!;
          if (segmentBytes < 2) {
            pieceStart = this.#corrupt(chunk, pieceStart, i);
          } else {
            this.#skipBytes = segmentBytes - 2;
            this.#state = this.#skipBytes > 0 ? State.SKIP : this.#afterSegment();
          }
          break;
        }
        case State.SKIP: {
          const n = Math.min(this.#skipBytes, len - i);
          this.#skipBytes -= n;
          i += n;
          if (this.#skipBytes === 0) this.#state = this.#afterSegment();
          break;
        }
        case State.ENTROPY: {
          const j = chunk.indexOf(0xff, i);
          if (j === -1) {
            i = len;
          } else {
            this.#state = State.ENTROPY_FF;
            i = j + 1;
          }
          break;
        }
      }
      // Check the limit as we go so a runaway frame is never held whole.
      if (pieceStart !== -1 && !this.#oversize && this.#frameBytes + (i - pieceStart) > this.#maxFrameBytes) {
        this.#oversize = true;
        this.#pieces = [];
      }
    }

    if (pieceStart !== -1 && pieceStart < len) this.#store(chunk, pieceStart, len);
  }

  #inFrame(): boolean {
    return this.#state !== State.SEEK_SOI && this.#state !== State.SEEK_SOI_FF;
  }

  /** Starts a frame whose SOI ended just before `at`; returns the new piece start. */
  #beginFrame(at: number): number {
    this.#pieces = [SOI_BYTES];
    this.#frameBytes = SOI_BYTES.length;
    this.#oversize = false;
    this.#state = State.MARKER;
    return at;
  }

  #afterSegment(): State {
    return this.#segmentCode === MARKER_SOS ? State.ENTROPY : State.MARKER;
  }

  #store(chunk: Buffer, from: number, to: number): void {
    this.#frameBytes += to - from;
    if (!this.#oversize) this.#pieces.push(chunk.subarray(from, to));
  }

  #endFrame(chunk: Buffer, pieceStart: number, end: number): void {
    this.#store(chunk, pieceStart, end);
    const bytes = this.#frameBytes;
    const oversize = this.#oversize || bytes > this.#maxFrameBytes;
    const frame = oversize ? null : Buffer.concat(this.#pieces, bytes);
    this.#pieces = [];
    this.#frameBytes = 0;
    this.#oversize = false;
    this.#state = State.SEEK_SOI;
    if (frame) this.#onFrame(frame);
    else this.#onOversize?.(bytes);
  }

  /** Bytes that break the JPEG structure: drop the frame and look for the next SOI. */
  #corrupt(chunk: Buffer, pieceStart: number, at: number): number {
    this.#store(chunk, pieceStart, at);
    this.#garbageBytes += this.#frameBytes;
    this.#abandonFrame();
    this.#state = State.SEEK_SOI;
    return -1;
  }

  #abandonFrame(): void {
    this.#pieces = [];
    this.#frameBytes = 0;
    this.#oversize = false;
  }
}
