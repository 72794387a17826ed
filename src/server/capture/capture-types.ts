/**
 * Shared shapes of the capture layer (server side): what the argument builders take, and what a
 * capture source emits into the hub.
 */
import type { H264EncodeOptions } from './h264-args.js';

export const Platform = { LINUX: 'linux', MACOS: 'darwin', WINDOWS: 'win32' } as const;
export type Platform = (typeof Platform)[keyof typeof Platform];

export interface VideoCaptureOptions {
  platform: Platform;
  /** 'device' = camera, 'test' = lavfi testsrc2. */
  source: 'device' | 'test';
  /** Linux: /dev/video0; macOS: avfoundation index or name; Windows: dshow device name. */
  device?: string;
  width: number;
  height: number;
  fps: number;
  /** MJPEG quality, ffmpeg -q:v scale 2 (best) … 31 (worst). */
  quality: number;
  /** Replaces the device input whole: ffmpeg input arguments as one string (e.g. "-f x11grab -i :91"). */
  inputArgs?: string;
  /** The camera already delivers MJPEG at this size: copy it, do not re-encode. */
  copyMjpeg?: boolean;
  /** Encode H.264 (FLV on pipe:1, for FlvH264Splitter) instead of MJPEG; encoder 'copy' = the camera's H.264. */
  h264?: H264EncodeOptions;
  /** MJPEG: threads converting each frame to the encoder's 4:2:0 (ffmpeg -filter_threads); default 1. */
  convertThreads?: number;
}

/**
 * Default audio packet (ms), the unit of audio on the wire: `serve --audio-packet-ms`. A packet leaves
 * only when its last sample is in, and the viewer's buffer level steps by a packet, so each costs about
 * half a packet of delay: on the rig 5 ms packets measured 41 ms mouth to ear against 46.5 ms with 10 ms
 * (medians of 8 and 9 interleaved 15–20 s runs with video, 7 of 8 pairs lower), for twice the packets.
 */
export const AUDIO_PACKET_MS = 5;
/** Packet durations offered by `--audio-packet-ms` (all are Opus frame sizes too). */
export const AUDIO_PACKET_CHOICES_MS: readonly number[] = [5, 10, 20];

export interface AudioCaptureOptions {
  platform: Platform;
  source: 'device' | 'test';
  /** Linux: PulseAudio source name (or ALSA "hw:1"); macOS: avfoundation index; Windows: dshow name. */
  device?: string;
  /** Linux only: which input to use; default pulse, ALSA when PulseAudio is not running. */
  backend?: 'pulse' | 'alsa';
  sampleRateHz: number;
  channels: number;
  inputArgs?: string;
  /** Test source tone. */
  toneHz?: number;
  /** The audio packet duration (ms): the test source makes its frames this long. Default AUDIO_PACKET_MS. */
  packetMs?: number;
}

/** One framed unit from capture: a JPEG frame or a PCM/Opus packet (5 ms by default), stamped on the server clock. */
export interface CapturedChunk {
  data: Buffer;
  ptsUs: number;
  /** MediaFlag bits (KEYFRAME, DISCONTINUITY). */
  flags: number;
}
