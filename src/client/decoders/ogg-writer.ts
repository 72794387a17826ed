/**
 * Minimal Ogg Opus writer (RFC 3533 pages, RFC 7845 headers): wraps the Opus packets the viewer
 * receives so an ffmpeg child can decode them (OpusDecoder). One packet per page, so ffmpeg's Ogg
 * demuxer gets each packet the moment it is written. Pure; no I/O.
 */

const CRC_TABLE = (() => {
  // Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value 0, no final XOR.
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

export function oggCrc(page: Buffer): number {
  let crc = 0;
  for (const b of page) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]!) >>> 0;
  return crc;
}

const HEADER_TYPE_BOS = 0x02;

export class OggOpusWriter {
  readonly #serial: number;
  #pageSeq = 0;
  #granule = 0n;

  constructor(serial = 0x6c616e73) {
    this.#serial = serial;
  }

  /** OpusHead + OpusTags pages. Pre-skip 0: the viewer keeps every decoded sample, so decoded bytes map 1:1 onto packets. */
  headers(channels: number): Buffer {
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1; // version
    head[9] = channels;
    head.writeUInt16LE(0, 10); // pre-skip
    head.writeUInt32LE(48_000, 12);
    head.writeInt16LE(0, 16); // output gain
    head[18] = 0; // mapping family 0: mono or stereo
    const vendor = Buffer.from('lanstream', 'latin1');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    tags.writeUInt32LE(0, 12 + vendor.length);
    return Buffer.concat([this.#page(head, HEADER_TYPE_BOS, 0n), this.#page(tags, 0, 0n)]);
  }

  /** One page holding one audio packet of `samples` (48 kHz) samples. */
  packet(packet: Buffer, samples: number): Buffer {
    this.#granule += BigInt(samples);
    return this.#page(packet, 0, this.#granule);
  }

  #page(body: Buffer, headerType: number, granule: bigint): Buffer {
    const lacing: number[] = [];
    let left = body.length;
    while (left >= 255) {
      lacing.push(255);
      left -= 255;
    }
    lacing.push(left);
    if (lacing.length > 255) throw new RangeError(`Opus packet of ${body.length} bytes does not fit one Ogg page`);
    const header = Buffer.alloc(27 + lacing.length);
    header.write('OggS', 0, 'latin1');
    header[5] = headerType;
    header.writeBigInt64LE(granule, 6);
    header.writeUInt32LE(this.#serial, 14);
    header.writeUInt32LE(this.#pageSeq++, 18);
    header[26] = lacing.length;
    lacing.forEach((l, i) => (header[27 + i] = l));
    const page = Buffer.concat([header, body]);
    page.writeUInt32LE(oggCrc(page), 22);
    return page;
  }
}
