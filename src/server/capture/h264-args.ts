/**
 * H.264 encoder arguments (pure), per encoder: what `serve --video-codec h264` puts between the
 * video input and the FLV output (`-f flv`, split by FlvH264Splitter). ffmpeg-args.ts assembles the
 * whole command line; encoder-probe.ts picks the encoder.
 *
 * Every encoder is asked for the same thing: no B-frames (decode order = display order, nothing held
 * for reordering), no look-ahead, a fixed GOP so a joining viewer waits at most one GOP for an IDR, and
 * a bitrate cap with a short VBV buffer so an IDR does not burst far above the rate. libx264 runs
 * ultrafast + zerolatency with its default threads: zerolatency switches x264 to sliced threads, which
 * add no frame delay (measured 4 ms encode p50 at 720p30 vs 7 ms with -threads 1, docs/codecs.md).
 */
import { Platform } from './capture-types.js';

export const H264Encoder = {
  LIBX264: 'libx264',
  V4L2M2M: 'h264_v4l2m2m',
  VAAPI: 'h264_vaapi',
  NVENC: 'h264_nvenc',
  QSV: 'h264_qsv',
  VIDEOTOOLBOX: 'h264_videotoolbox',
  AMF: 'h264_amf',
  MF: 'h264_mf',
} as const;
export type H264Encoder = (typeof H264Encoder)[keyof typeof H264Encoder];

/** The camera delivers H.264 itself: pass it through (`-c:v copy`). */
export const H264_COPY = 'copy';

/** Hardware encoders worth probing, per platform, best first; libx264 is the fallback everywhere. */
export const HARDWARE_H264_ENCODERS: Readonly<Record<Platform, readonly H264Encoder[]>> = Object.freeze({
  [Platform.LINUX]: [H264Encoder.NVENC, H264Encoder.VAAPI, H264Encoder.QSV, H264Encoder.V4L2M2M],
  [Platform.MACOS]: [H264Encoder.VIDEOTOOLBOX],
  [Platform.WINDOWS]: [H264Encoder.NVENC, H264Encoder.QSV, H264Encoder.AMF, H264Encoder.MF],
});

export const DEFAULT_VAAPI_DEVICE = '/dev/dri/renderD128';

export interface H264EncodeOptions {
  encoder: H264Encoder | typeof H264_COPY;
  bitrateKbps: number;
  /** Frames from one IDR to the next. */
  gopFrames: number;
  /** VAAPI render node; default /dev/dri/renderD128. */
  vaapiDevice?: string;
}

/** Arguments in two places: `global` before the input (hardware device setup), `output` after it. */
export interface H264Args {
  global: string[];
  output: string[];
}

export function isH264Encoder(name: string): name is H264Encoder {
  return (Object.values(H264Encoder) as string[]).includes(name);
}

export function h264EncoderArgs(o: H264EncodeOptions): H264Args {
  if (o.encoder === H264_COPY) return { global: [], output: ['-c:v', 'copy'] };
  if (!Number.isInteger(o.bitrateKbps) || o.bitrateKbps < 16) throw new RangeError(`bitrateKbps must be an integer >= 16, got ${o.bitrateKbps}`);
  if (!Number.isInteger(o.gopFrames) || o.gopFrames < 1) throw new RangeError(`gopFrames must be a positive integer, got ${o.gopFrames}`);
  const rate = `${o.bitrateKbps}k`;
  // Half a second of VBV: an IDR may be a few times a P-frame, but not a second's worth of bytes.
  const vbv = ['-b:v', rate, '-maxrate', rate, '-bufsize', `${Math.max(8, Math.round(o.bitrateKbps / 2))}k`];
  const gop = ['-g', String(o.gopFrames)];
  switch (o.encoder) {
    case H264Encoder.LIBX264:
      return {
        global: [],
        // prettier-ignore
        output: [
          '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
          ...gop, '-keyint_min', String(o.gopFrames), '-sc_threshold', '0',
          ...vbv,
        ],
      };
    case H264Encoder.NVENC:
      return {
        global: [],
        // prettier-ignore
        output: [
          '-c:v', 'h264_nvenc', '-preset', 'p1', '-tune', 'ull', '-zerolatency', '1', '-delay', '0',
          '-rc', 'cbr', '-bf', '0', '-pix_fmt', 'yuv420p',
          ...gop, ...vbv,
        ],
      };
    case H264Encoder.VAAPI:
      return {
        global: ['-vaapi_device', o.vaapiDevice ?? DEFAULT_VAAPI_DEVICE],
        output: ['-vf', 'format=nv12,hwupload', '-c:v', 'h264_vaapi', '-async_depth', '1', '-bf', '0', '-rc_mode', 'CBR', ...gop, ...vbv],
      };
    case H264Encoder.QSV:
      // async_depth 1: QSV otherwise keeps 4 frames in flight.
      return {
        global: [],
        output: ['-c:v', 'h264_qsv', '-preset', 'veryfast', '-async_depth', '1', '-bf', '0', '-look_ahead', '0', '-pix_fmt', 'nv12', ...gop, ...vbv],
      };
    case H264Encoder.V4L2M2M:
      return { global: [], output: ['-c:v', 'h264_v4l2m2m', '-bf', '0', '-pix_fmt', 'yuv420p', ...gop, ...vbv] };
    case H264Encoder.VIDEOTOOLBOX:
      return { global: [], output: ['-c:v', 'h264_videotoolbox', '-realtime', '1', '-profile:v', 'main', '-bf', '0', '-pix_fmt', 'yuv420p', ...gop, ...vbv] };
    case H264Encoder.AMF:
      return {
        global: [],
        output: ['-c:v', 'h264_amf', '-usage', 'ultralowlatency', '-quality', 'speed', '-rc', 'cbr', '-bf', '0', '-pix_fmt', 'yuv420p', ...gop, ...vbv],
      };
    case H264Encoder.MF:
      return {
        global: [],
        // prettier-ignore
        output: [
          '-c:v', 'h264_mf', '-hw_encoding', '1', '-scenario', 'video_conference',
          '-rate_control', 'cbr', '-bf', '0', '-pix_fmt', 'nv12',
          ...gop, ...vbv,
        ],
      };
  }
}
