/**
 * Opus encoder arguments (pure): what `serve --audio-codec opus` puts after the microphone input.
 * The output is Ogg on pipe:1 (OggOpusPacketiser reads it), because Ogg is the one muxer in ffmpeg
 * that gives each Opus packet clear boundaries and a sample position without a heavy container
 * parser; `-f data` would concatenate packets with nothing to split them by.
 *
 * Latency: `-application lowdelay` (CELT only, 2.5 ms look-ahead instead of 6.5 ms) and 10 ms frames,
 * the same unit as the PCM packets. The Ogg muxer buffers a whole second of packets per page by
 * default (measured: pages every 1 s, 100 packets each); `-page_duration 1` (µs) closes the page
 * after every packet, so each packet leaves ffmpeg as soon as it is encoded.
 */

/** libopus frame sizes it accepts, in ms. */
export const OPUS_FRAME_MS: readonly number[] = [2.5, 5, 10, 20, 40, 60];
/** Opus always runs at 48 kHz internally; other capture rates are resampled by ffmpeg. */
export const OPUS_SAMPLE_RATE_HZ = 48_000;

export interface OpusEncodeOptions {
  bitrateKbps: number;
  frameMs: number;
  sampleRateHz: number;
  channels: number;
}

export function opusEncoderArgs(o: OpusEncodeOptions): string[] {
  if (!OPUS_FRAME_MS.includes(o.frameMs)) throw new RangeError(`Opus frameMs must be one of ${OPUS_FRAME_MS.join(', ')}, got ${o.frameMs}`);
  if (!Number.isInteger(o.bitrateKbps) || o.bitrateKbps < 6 || o.bitrateKbps > 510) throw new RangeError(`Opus bitrateKbps must be an integer 6–510, got ${o.bitrateKbps}`);
  // Mapping family 0 (what the viewer's Ogg header announces) covers mono and stereo only.
  if (o.channels !== 1 && o.channels !== 2) throw new RangeError(`Opus here carries 1 or 2 channels, got ${o.channels}`);
  return [
    '-c:a', 'libopus',
    '-application', 'lowdelay',
    '-frame_duration', String(o.frameMs),
    '-b:a', `${o.bitrateKbps}k`,
    '-ac', String(o.channels),
    '-ar', String(OPUS_SAMPLE_RATE_HZ),
    '-page_duration', '1',
    '-f', 'ogg',
  ];
}
