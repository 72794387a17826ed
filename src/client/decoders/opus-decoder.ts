/**
 * Opus → PCM on the viewer, between the connection and the audio sink (speaker/pacat/null), so the
 * sinks and their jitter buffer stay PCM-only. Each packet is decoded in this process, synchronously,
 * by libopus compiled to WebAssembly (the `opus-decoder` package, WASM embedded in its JS: nothing is
 * downloaded at install): packet in → its s16le PCM out with the same PTS and DISCONTINUITY flag.
 *
 * Why: this replaced an ffmpeg child fed Ogg pages (OggOpusWriter), which held the newest packet
 * until the next one arrived. Measured on the 2-core dev machine, 10 s of 10 ms mono 64 kb/s packets
 * pushed 10 ms apart, packet in → its PCM out: ffmpeg child p50 10.4 ms / p99 12–18 ms (20 ms apart:
 * p50 20.2 ms, i.e. one packet spacing), WASM p50 0.1 ms / p99 0.2–0.3 ms. Decoding those 10 s costs
 * 44–64 ms of CPU in WASM against 150–190 ms in the ffmpeg child (plus the pipe writes). The package
 * is imported when the first Opus stream is announced (start(), 50–70 ms to import and compile), so
 * MJPEG + PCM viewers never load it.
 *
 * Lost packets (DISCONTINUITY, or a packet dropped here): libopus is told of the loss by decoding an
 * empty packet (its packet-loss concealment) and that concealed audio is thrown away. Then the next
 * real packet is decoded as libopus expects after a loss, fading in, rather than overlap-added onto
 * the tail of audio that no longer adjoins it. The concealment is not played: the package always
 * conceals 120 ms at once, and playing invented audio would only add delay to a live stream.
 */
import type { OpusDecoder as WasmOpusDecoder } from 'opus-decoder';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

export interface OpusDecoderOptions {
  channels: number;
  logger: Logger;
  onPcm: (pcm: Buffer, ptsUs: number, discontinuity: boolean) => void;
  /** The decoder could not be loaded (called once; push() then ignores input). */
  onError?: (err: Error) => void;
}

const SAMPLE_RATE_HZ = 48_000;
/** The package copies each packet into a WASM buffer of this many bytes per channel (it throws above). */
const WASM_INPUT_BYTES_PER_CHANNEL = 3840;
/** RFC 6716 §3.2.1: the longest frame. */
const MAX_FRAME_BYTES = 1275;
/** 120 ms at 48 kHz: the most one packet may carry (RFC 6716 §3.4, R5). */
const MAX_PACKET_SAMPLES = 5760;
const EMPTY = new Uint8Array(0);
/** Malformed packets are logged at most this often. */
const REPORT_EVERY_MS = 1000;

export class OpusDecoder {
  readonly #o: OpusDecoderOptions;
  readonly #log: Logger;
  #wasm: WasmOpusDecoder<48000> | null = null;
  #starting: Promise<void> | null = null;
  #closed = false;
  /** Something was lost before the next packet: a packet dropped here, or audio before the decoder was ready. */
  #lossPending = false;
  #decodedAny = false;
  #malformed = 0;
  #malformedReported = 0;
  #lastReportMs = -Infinity;

  constructor(opts: OpusDecoderOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'opus-decoder' });
  }

  /** Imports and compiles the WASM decoder (50–70 ms measured). Never rejects: failures go to onError. */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      try {
        const { OpusDecoder: Wasm } = await import('opus-decoder');
        const wasm = new Wasm({ sampleRate: SAMPLE_RATE_HZ, channels: this.#o.channels });
        await wasm.ready;
        if (this.#closed) return wasm.free();
        this.#wasm = wasm;
      } catch (err) {
        this.#closed = true;
        this.#o.onError?.(
          new LanstreamError('LS_ERR_SINK_FAILED', `The Opus decoder (opus-decoder, WebAssembly) could not be loaded: ${(err as Error).message}`, {
            cause: err,
          }),
        );
      }
    })();
    return this.#starting;
  }

  /** Packets dropped as malformed so far. */
  get malformedPackets(): number {
    return this.#malformed;
  }

  /**
   * One received Opus packet; its PCM is handed to onPcm before this returns. Never throws: a
   * malformed packet is dropped (logged at most once a second) and the next PCM is flagged
   * DISCONTINUITY. Packets that arrive before start() finished are dropped the same way.
   */
  push(packet: Buffer, ptsUs: number, discontinuity: boolean): void {
    const wasm = this.#wasm;
    if (wasm === null) {
      if (!this.#closed) this.#lossPending = true;
      return;
    }
    if (opusSamples(packet) === 0 || packet.length > WASM_INPUT_BYTES_PER_CHANNEL * this.#o.channels) {
      this.#dropMalformed(packet, 'not a valid Opus packet (RFC 6716 §3.4)');
      return;
    }
    const lost = discontinuity || this.#lossPending;
    let decoded;
    try {
      if (lost && this.#decodedAny) wasm.decodeFrame(EMPTY);
      decoded = wasm.decodeFrame(packet);
    } catch (err) {
      this.#dropMalformed(packet, (err as Error).message);
      return;
    }
    if (decoded.errors.length > 0 || decoded.samplesDecoded === 0) {
      this.#dropMalformed(packet, decoded.errors[0]?.message ?? 'no samples decoded');
      return;
    }
    this.#lossPending = false;
    this.#decodedAny = true;
    this.#o.onPcm(toS16le(decoded.channelData, decoded.samplesDecoded), ptsUs, lost);
  }

  /** Nothing is buffered, so closing is freeing the WASM memory. */
  close(): Promise<void> {
    this.destroy();
    return Promise.resolve();
  }

  destroy(): void {
    this.#closed = true;
    this.#wasm?.free();
    this.#wasm = null;
  }

  #dropMalformed(packet: Buffer, reason: string): void {
    this.#malformed++;
    this.#lossPending = true;
    const nowMs = performance.now();
    if (nowMs - this.#lastReportMs < REPORT_EVERY_MS) return;
    this.#lastReportMs = nowMs;
    const count = this.#malformed - this.#malformedReported;
    this.#malformedReported = this.#malformed;
    this.#log.warn({ dropped: count, bytes: packet.length }, `dropped ${count} malformed Opus packet(s): ${reason}`);
  }
}

/** Float samples per channel → interleaved s16le, clamped (libopus may overshoot ±1.0 slightly). */
function toS16le(channelData: Float32Array[], samples: number): Buffer {
  const channels = channelData.length;
  // Int16Array is host-endian; every platform Node runs lanstream on (x64, arm64) is little-endian.
  const out = new Int16Array(samples * channels);
  for (let c = 0; c < channels; c++) {
    const data = channelData[c]!;
    for (let i = 0, j = c; i < samples; i++, j += channels) {
      const v = Math.round(data[i]! * 32768);
      out[j] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Samples (48 kHz) in one Opus packet from its TOC byte (RFC 6716 §3.1), or 0 when the packet breaks
 * one of the rules R1–R7 of §3.4. libopus makes the same checks before decoding, so a packet that
 * passes does not make it fail (the package prints every failure to stderr, over our status line).
 */
export function opusSamples(packet: Uint8Array): number {
  const n = packet.length;
  if (n < 1) return 0; // R1
  const toc = packet[0]!;
  const config = toc >> 3;
  const frameSamples = config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? ((config & 1) === 0 ? 480 : 960) : [120, 240, 480, 960][config & 3]!;
  switch (toc & 3) {
    case 0:
      return n - 1 <= MAX_FRAME_BYTES ? frameSamples : 0; // R2
    case 1:
      return (n - 1) % 2 === 0 && (n - 1) / 2 <= MAX_FRAME_BYTES ? 2 * frameSamples : 0; // R3
    case 2: {
      const first = frameLength(packet, 1);
      if (first === null) return 0; // R4
      const second = n - first.next - first.bytes;
      return second >= 0 && second <= MAX_FRAME_BYTES ? 2 * frameSamples : 0;
    }
    default:
      return code3Samples(packet, frameSamples);
  }
}

/** R5–R7: a frame count byte, optional padding, then equal frames (CBR) or M−1 lengths (VBR). */
function code3Samples(packet: Uint8Array, frameSamples: number): number {
  const n = packet.length;
  if (n < 2) return 0;
  const frames = packet[1]! & 0x3f;
  if (frames === 0 || frames * frameSamples > MAX_PACKET_SAMPLES) return 0; // R5
  let at = 2;
  let padding = 0;
  if ((packet[1]! & 0x40) !== 0) {
    for (let b = 255; b === 255;) {
      if (at >= n) return 0;
      b = packet[at++]!;
      padding += b === 255 ? 254 : b;
    }
  }
  if (n - at - padding < 0) return 0; // R6
  if ((packet[1]! & 0x80) === 0) {
    const rest = n - at - padding;
    return rest % frames === 0 && rest / frames <= MAX_FRAME_BYTES ? frames * frameSamples : 0; // R6
  }
  let lengthsSum = 0;
  for (let i = 0; i < frames - 1; i++) {
    const len = frameLength(packet, at);
    if (len === null) return 0;
    at = len.next;
    lengthsSum += len.bytes;
  }
  const last = n - at - padding - lengthsSum;
  return last >= 0 && last <= MAX_FRAME_BYTES ? frames * frameSamples : 0; // R7
}

/** RFC 6716 §3.2.1: a frame length in one byte (< 252) or two (b0 + 4·b1). */
function frameLength(packet: Uint8Array, at: number): { bytes: number; next: number } | null {
  if (at >= packet.length) return null;
  const b0 = packet[at]!;
  if (b0 < 252) return { bytes: b0, next: at + 1 };
  if (at + 1 >= packet.length) return null;
  return { bytes: b0 + 4 * packet[at + 1]!, next: at + 2 };
}
