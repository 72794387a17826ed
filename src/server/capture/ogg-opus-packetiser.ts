/**
 * Ogg Opus packetiser: turns ffmpeg's audio stdout (Ogg, one Opus packet per page thanks to
 * `-page_duration 1`, see opus-args.ts) into single Opus packets stamped on the server clock. Sits
 * between the audio FfmpegProcess and the hub when `serve --audio-codec opus`.
 *
 *  Ogg page (RFC 3533 §6), little-endian:
 *   0      4        5            6               14         18        22      26        27
 *  +------+--------+------------+---------------+----------+---------+-------+---------+-------------+------+
 *  | OggS | ver 0  | headerType | granule (i64) | serial   | seqNo   | crc   | nSegs   | lacing[nSegs] | data |
 *  +------+--------+------------+---------------+----------+---------+-------+---------+-------------+------+
 *  A packet is the run of lacing values up to one below 255; it may continue on the next page.
 *  The first packet is OpusHead (RFC 7845 §5.1), the second OpusTags; then audio.
 *
 * The CRC is not checked: the bytes come from our own ffmpeg over a local pipe. Each packet's PTS is
 * its start on the server clock: the granule position (48 kHz samples at the packet's end) mapped
 * through an anchor taken from the arrival time of the first packet, re-anchored like the PCM
 * packetiser when arrival and sample count disagree by more than maxDriftUs (earlier: at once; later:
 * only if it persists for lateWindowUs), with DISCONTINUITY on the packet that moved.
 */
import { MediaFlag } from '../../protocol/constants.js';

const CAPTURE_PATTERN = Buffer.from('OggS', 'latin1');
const PAGE_HEADER_BYTES = 27;
const OPUS_HEAD = Buffer.from('OpusHead', 'latin1');
const OPUS_TAGS = Buffer.from('OpusTags', 'latin1');
const GRANULE_RATE_HZ = 48_000;

export interface OggOpusPacketiserOptions {
  /** Packets above this are dropped (a packet is never buffered beyond it). */
  maxPacketBytes: number;
  clock: () => number;
  maxDriftUs?: number;
  lateWindowUs?: number;
  onPacket: (packet: Buffer, ptsUs: number, flags: number) => void;
  /** The stream is not Ogg Opus (called once; the packetiser then ignores input until reset()). */
  onCorrupt?: (reason: string) => void;
}

export interface OpusHead {
  channels: number;
  preSkip: number;
  inputSampleRateHz: number;
}

export class OggOpusPacketiser {
  readonly #o: OggOpusPacketiserOptions;
  readonly #maxDriftUs: number;
  readonly #lateWindowUs: number;
  #pending: Buffer = Buffer.alloc(0);
  #packet: Buffer[] = [];
  #packetBytes = 0;
  #packetTooLarge = false;
  #headersSeen = 0;
  #head: OpusHead | null = null;
  #failed = false;
  #anchorUs: number | null = null;
  #anchorGranule = 0;
  #lastGranule: number | null = null;
  #windowMinLateUs = Infinity;
  #windowStartGranule = 0;
  #discontinuityPending = false;
  /** Audio packets completed by the current push(), stamped together at its end. */
  #completed: Array<{ packet: Buffer; granule: number }> = [];
  #reanchors = 0;

  constructor(opts: OggOpusPacketiserOptions) {
    this.#o = opts;
    this.#maxDriftUs = opts.maxDriftUs ?? 20_000;
    this.#lateWindowUs = opts.lateWindowUs ?? 500_000;
  }

  /** The stream's OpusHead, once seen. */
  get head(): OpusHead | null {
    return this.#head;
  }

  get reanchors(): number {
    return this.#reanchors;
  }

  /** Start over at a new Ogg stream (capture restarted); the next packet is flagged DISCONTINUITY. */
  reset(): void {
    this.#pending = Buffer.alloc(0);
    this.#packet = [];
    this.#packetBytes = 0;
    this.#packetTooLarge = false;
    this.#headersSeen = 0;
    this.#failed = false;
    this.#anchorUs = null;
    this.#lastGranule = null;
    this.#discontinuityPending = true;
  }

  push(chunk: Buffer): void {
    if (this.#failed || chunk.length === 0) return;
    const arrivalUs = this.#o.clock();
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    for (;;) {
      if (buf.length < PAGE_HEADER_BYTES) break;
      if (!buf.subarray(0, 4).equals(CAPTURE_PATTERN) || buf[4] !== 0) {
        this.#fail(`not an Ogg page (starts with ${buf.subarray(0, 6).toString('hex')})`);
        return;
      }
      const segments = buf[26]!;
      if (buf.length < PAGE_HEADER_BYTES + segments) break;
      let bodyBytes = 0;
      for (let i = 0; i < segments; i++) bodyBytes += buf[PAGE_HEADER_BYTES + i]!;
      const pageBytes = PAGE_HEADER_BYTES + segments + bodyBytes;
      if (buf.length < pageBytes) break;
      this.#page(buf.subarray(0, pageBytes), segments);
      if (this.#failed) return;
      buf = buf.subarray(pageBytes);
    }
    // Copy the rest: it is at most one page (≤ 65 307 bytes), and the chunk may be large.
    this.#pending = Buffer.from(buf);
    // The newest packet ended about now; each earlier one of the same read is older by what follows it.
    const completed = this.#completed;
    this.#completed = [];
    const newestGranule = completed.at(-1)?.granule ?? 0;
    for (const { packet, granule } of completed) this.#stamp(packet, granule, arrivalUs - samplesToUs(newestGranule - granule));
  }

  #page(page: Buffer, segments: number): void {
    const granule = Number(page.readBigInt64LE(6));
    let at = PAGE_HEADER_BYTES + segments;
    for (let i = 0; i < segments; i++) {
      const lacing = page[PAGE_HEADER_BYTES + i]!;
      this.#append(page.subarray(at, at + lacing));
      at += lacing;
      if (lacing < 255) this.#endPacket(granule);
    }
  }

  #append(bytes: Buffer): void {
    this.#packetBytes += bytes.length;
    if (this.#packetBytes > this.#o.maxPacketBytes) {
      this.#packetTooLarge = true;
      this.#packet = [];
    } else if (bytes.length > 0) {
      this.#packet.push(bytes);
    }
  }

  #endPacket(granule: number): void {
    const tooLarge = this.#packetTooLarge;
    const packet = tooLarge ? null : Buffer.concat(this.#packet, this.#packetBytes);
    this.#packet = [];
    this.#packetBytes = 0;
    this.#packetTooLarge = false;
    if (this.#headersSeen < 2) {
      this.#header(packet);
      return;
    }
    if (packet === null || packet.length === 0) {
      this.#discontinuityPending = true;
      return;
    }
    this.#completed.push({ packet, granule });
  }

  #header(packet: Buffer | null): void {
    const expected = this.#headersSeen === 0 ? OPUS_HEAD : OPUS_TAGS;
    if (packet === null || !packet.subarray(0, 8).equals(expected)) {
      this.#fail(`expected ${expected.toString('latin1')} as Ogg packet ${this.#headersSeen + 1}`);
      return;
    }
    if (this.#headersSeen === 0) {
      if (packet.length < 19) return this.#fail(`OpusHead of ${packet.length} bytes (expected at least 19)`);
      this.#head = { channels: packet[9]!, preSkip: packet.readUInt16LE(10), inputSampleRateHz: packet.readUInt32LE(12) };
    }
    this.#headersSeen++;
  }

  #stamp(packet: Buffer, granule: number, arrivalUs: number): void {
    if (this.#failed) return;
    let flags = 0;
    const samples = this.#lastGranule === null ? opusPacketSamples(packet) : granule - this.#lastGranule;
    this.#lastGranule = granule;
    // The packet's last sample was captured about when it arrived: its start is `samples` earlier.
    const measuredStartUs = arrivalUs - samplesToUs(samples);
    const startGranule = granule - samples;
    if (this.#anchorUs === null) {
      this.#anchor(measuredStartUs, startGranule);
      if (this.#discontinuityPending) flags |= MediaFlag.DISCONTINUITY;
    } else if (this.#correct(measuredStartUs, startGranule)) {
      this.#reanchors++;
      flags |= MediaFlag.DISCONTINUITY;
    } else if (this.#discontinuityPending) {
      flags |= MediaFlag.DISCONTINUITY;
    }
    this.#discontinuityPending = false;
    this.#o.onPacket(packet, Math.round(this.#expectedUs(startGranule)), flags);
  }

  #anchor(us: number, granule: number): void {
    this.#anchorUs = us;
    this.#anchorGranule = granule;
    this.#windowMinLateUs = Infinity;
    this.#windowStartGranule = granule;
  }

  #expectedUs(granule: number): number {
    return (this.#anchorUs ?? 0) + samplesToUs(granule - this.#anchorGranule);
  }

  /** Same asymmetric rule as PcmPacketiser: early is impossible (move now), late must persist. */
  #correct(measuredUs: number, granule: number): boolean {
    const lateUs = measuredUs - this.#expectedUs(granule);
    if (lateUs < -this.#maxDriftUs) {
      this.#anchor(measuredUs, granule);
      return true;
    }
    this.#windowMinLateUs = Math.min(this.#windowMinLateUs, lateUs);
    if (samplesToUs(granule - this.#windowStartGranule) < this.#lateWindowUs) return false;
    const persistentLateUs = this.#windowMinLateUs;
    this.#windowMinLateUs = Infinity;
    this.#windowStartGranule = granule;
    if (persistentLateUs <= this.#maxDriftUs) return false;
    this.#anchor(this.#expectedUs(granule) + persistentLateUs, granule);
    return true;
  }

  #fail(reason: string): void {
    this.#failed = true;
    this.#pending = Buffer.alloc(0);
    this.#o.onCorrupt?.(reason);
  }
}

function samplesToUs(samples: number): number {
  return (samples * 1_000_000) / GRANULE_RATE_HZ;
}

/** Samples (48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1). */
export function opusPacketSamples(packet: Buffer): number {
  if (packet.length === 0) return 0;
  const toc = packet[0]!;
  const config = toc >> 3;
  let frameSamples: number;
  if (config < 12) frameSamples = [480, 960, 1920, 2880][config & 3]!; // SILK 10/20/40/60 ms
  else if (config < 16) frameSamples = (config & 1) === 0 ? 480 : 960; // hybrid 10/20 ms
  else frameSamples = [120, 240, 480, 960][config & 3]!; // CELT 2.5/5/10/20 ms
  const code = toc & 3;
  const frames = code === 0 ? 1 : code === 1 || code === 2 ? 2 : packet.length > 1 ? packet[1]! & 0x3f : 0;
  return frameSamples * frames;
}
