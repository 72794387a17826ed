/**
 * PCM packet → Opus packet, in this process, between the PcmPacketiser and the hub when
 * `serve --audio-codec opus`. libopus 1.4 compiled to WebAssembly (the `opusscript` package, WASM
 * shipped in the package: nothing is downloaded at install, no ffmpeg built with libopus needed).
 * serve.ts imports this module only when Opus is chosen, so PCM servers never load the WASM.
 *
 * Why not ffmpeg's libopus: its output needs a container to keep packet boundaries, and ffmpeg's
 * Ogg muxer (like matroska and mpegts) holds each stream's newest page until the next one is queued
 * (to mark end-of-stream), so every packet waited one packet (10 ms) that PCM does not pay. Here a
 * packet is encoded synchronously when its PCM is complete (about 0.1 ms for 10 ms mono).
 *
 * Settings: RESTRICTED_LOWDELAY (CELT only, 2.5 ms look-ahead instead of 6.5 ms). The look-ahead is
 * not compensated: the decoded audio lags its PTS (the capture time of the packet's first sample) by
 * those 2.5 ms, which is simply part of the glass-to-glass latency. Constrained VBR (libopus's own
 * default, set explicitly): the rate stays close to --audio-bitrate on any content, unlike ffmpeg's
 * default unconstrained VBR, while quiet or simple frames still get fewer bytes than CBR would spend.
 * Packet size has no effect on delay here (each packet is sent whole as soon as it is encoded).
 */
import OpusScript from 'opusscript';
import type { CapturedChunk } from './capture-types.js';

/** Opus always runs at 48 kHz here; capture is asked for this rate when Opus is chosen. */
export const OPUS_SAMPLE_RATE_HZ = 48_000;
/** Frame durations libopus accepts, in ms. */
export const OPUS_PACKET_MS: readonly number[] = [2.5, 5, 10, 20, 40, 60];

// opus_defines.h request numbers (opusscript passes them through to opus_encoder_ctl).
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_VBR = 4006;
const OPUS_SET_VBR_CONSTRAINT = 4020;
const OPUS_RESET_STATE = 4028;
const BYTES_PER_SAMPLE = 2; // s16le

export interface OpusPacketEncoderOptions {
  channels: number;
  bitrateKbps: number;
  packetMs: number;
}

export class OpusPacketEncoder {
  /** Size of the s16le PCM packet encode() takes. */
  readonly pcmBytes: number;
  readonly #frameSamples: number;
  #wasm: OpusScript | null;

  constructor(o: OpusPacketEncoderOptions) {
    if (!OPUS_PACKET_MS.includes(o.packetMs)) throw new RangeError(`Opus packetMs must be one of ${OPUS_PACKET_MS.join(', ')}, got ${o.packetMs}`);
    if (!Number.isInteger(o.bitrateKbps) || o.bitrateKbps < 6 || o.bitrateKbps > 510)
      throw new RangeError(`Opus bitrateKbps must be an integer 6–510, got ${o.bitrateKbps}`);
    // The viewer's decoder is set up for mono or stereo (no multistream mapping).
    if (o.channels !== 1 && o.channels !== 2) throw new RangeError(`Opus here carries 1 or 2 channels, got ${o.channels}`);
    this.#frameSamples = (OPUS_SAMPLE_RATE_HZ * o.packetMs) / 1000;
    this.pcmBytes = this.#frameSamples * o.channels * BYTES_PER_SAMPLE;
    const wasm = new OpusScript(OPUS_SAMPLE_RATE_HZ, o.channels, OpusScript.Application.RESTRICTED_LOWDELAY);
    try {
      wasm.encoderCTL(OPUS_SET_BITRATE, o.bitrateKbps * 1000);
      wasm.encoderCTL(OPUS_SET_VBR, 1);
      wasm.encoderCTL(OPUS_SET_VBR_CONSTRAINT, 1);
    } catch (err) {
      wasm.delete();
      throw err;
    }
    this.#wasm = wasm;
  }

  /**
   * One PCM packet in, its Opus packet out with the same ptsUs and flags. A packet of any other size
   * than pcmBytes is refused with a RangeError before it reaches libopus (opusscript copies the input
   * into a fixed WASM buffer, and Opus frames have fixed durations); the encoder stays usable.
   */
  encode(pcm: CapturedChunk): CapturedChunk {
    if (this.#wasm === null) throw new Error('OpusPacketEncoder: encode() after destroy()');
    if (pcm.data.length !== this.pcmBytes) {
      throw new RangeError(`Opus encoder expects ${this.pcmBytes}-byte PCM packets, got ${pcm.data.length} bytes`);
    }
    // opusscript returns a copy (Buffer.from of the WASM output view), safe to keep past the next call.
    const data = this.#wasm.encode(pcm.data, this.#frameSamples);
    return { data, ptsUs: pcm.ptsUs, flags: pcm.flags };
  }

  /** Forget the signal history (capture restarted: the next PCM does not continue the last). */
  reset(): void {
    this.#wasm?.encoderCTL(OPUS_RESET_STATE, 0);
  }

  /** Frees the WASM memory; idempotent. */
  destroy(): void {
    this.#wasm?.delete();
    this.#wasm = null;
  }
}
