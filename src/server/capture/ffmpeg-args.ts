/**
 * ffmpeg argument builders (pure): the full argv, without the binary, of the two capture children.
 * Video writes an MJPEG byte stream (or FLV H.264) and audio raw s16le PCM to pipe:1; MjpegSplitter
 * (FlvH264Splitter) and PcmPacketiser frame them. Audio is PCM for Opus too: serve encodes it in-process
 * (OpusPacketEncoder), so no ffmpeg built with libopus is needed. One ffmpeg per medium, because one
 * ffmpeg interleaving two live inputs stalls one on the other (DESIGN §2).
 *
 * Latency flags and why: tiny `-probesize`/`-analyzeduration` so the demuxer does not probe (device
 * inputs describe themselves), and deliberately no `-fflags nobuffer`: it discards the packet that
 * stream-info probing read, i.e. the first captured frame, so a viewer's first picture waited for the
 * second one (x11grab 720p30, spawn → first JPEG on the pipe: median 158–171 ms with it, 112–130 ms
 * without, 6 runs each); past the first packet it changes nothing. `-flush_packets 1` so every frame or
 * packet reaches the pipe at once; `-threads 1` on the MJPEG encoder, whose default frame threading
 * holds whole frames (measured 30–60 ms more glass to glass), and slice threading (`-thread_type
 * slice`, 2 threads: 7.0 → 4.0–5.3 ms a 720p frame with the conversion) drops ffmpeg's optimal Huffman
 * tables, +19 % a frame (43.4 → 51.8 kB at q5), past the ~12 Mbit/s the stream is meant to fit. That
 * `-threads 1` also left the conversion to 4:2:0 before it on one thread (ffmpeg 5.1 gives a simple
 * filter graph the encoder's threads option); `-filter_threads` (serve: the cores, at most 4) splits
 * it in slices, same bytes out: 720p bgr0 → MJPEG q5, 600 frames, 7.5–8.2 → 5.8–6.6 ms a frame wall
 * time, user CPU +2–9 %; rig, 4 interleaved rounds against the code before, glass to glass p50 lower
 * in 6 of 8 pairs (median −3.4 ms; runs vary ±3 ms), sender CPU 38–44 % either way. Pulse
 * `fragment_size` of 5 ms, because PulseAudio's default fragment is far larger and the fragment is
 * capture delay. `-pix_fmt yuvj420p` on the MJPEG encoder: left alone it keeps the input's chroma
 * (4:4:4 from a screen or the test source, 4:2:2 from most cameras); 4:2:0 is what JPEG decoders take
 * fastest and ffplay shows without a pixel-format conversion (720p test picture, one thread: 11.5 →
 * 6.6 ms a frame, 77 → 47 kB). Arguments are argv elements, never a shell string, so device names
 * with spaces need no quoting.
 */
import shellQuote from 'shell-quote';
import { LanstreamError } from '../../shared/errors.js';
import { AUDIO_PACKET_MS, Platform, type AudioCaptureOptions, type VideoCaptureOptions } from './capture-types.js';
import { H264_COPY, h264EncoderArgs } from './h264-args.js';

const COMMON_ARGS = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error'];
const LOW_LATENCY_INPUT_ARGS = ['-probesize', '32', '-analyzeduration', '0'];
const OUTPUT_PIPE = ['-flush_packets', '1', 'pipe:1'];

/** PulseAudio record fragment (see audioDeviceInput); PcmPacketiser aligns packets to it. */
export const PULSE_FRAGMENT_MS = 5;
/** dshow's own buffer; its default is the device's, typically 500 ms or more. */
const DSHOW_AUDIO_BUFFER_MS = 20;

/** The device used when none is given, per platform; undefined where there is no usable default. */
export const DEFAULT_VIDEO_DEVICE: Readonly<Record<Platform, string | undefined>> = Object.freeze({
  [Platform.LINUX]: '/dev/video0',
  [Platform.MACOS]: 'default',
  [Platform.WINDOWS]: undefined,
});

export const DEFAULT_AUDIO_DEVICE: Readonly<Record<Platform, string | undefined>> = Object.freeze({
  [Platform.LINUX]: 'default',
  [Platform.MACOS]: 'default',
  [Platform.WINDOWS]: undefined,
});

export function defaultVideoDevice(platform: Platform): string | undefined {
  return DEFAULT_VIDEO_DEVICE[platform];
}

export function defaultAudioDevice(platform: Platform): string | undefined {
  return DEFAULT_AUDIO_DEVICE[platform];
}

export function buildVideoArgs(o: VideoCaptureOptions): string[] {
  assertPositiveInteger('width', o.width);
  assertPositiveInteger('height', o.height);
  assertPositiveNumber('fps', o.fps);
  if (!Number.isInteger(o.quality) || o.quality < 1 || o.quality > 31) {
    throw new RangeError(`quality must be an integer 1–31 (ffmpeg -q:v), got ${o.quality}`);
  }
  const size = `${o.width}x${o.height}`;
  if (o.h264 !== undefined) {
    // The test source has no H.264 to copy: it is encoded like a raw camera.
    const h264 = o.h264.encoder === H264_COPY && o.source === 'test' ? { ...o.h264, encoder: 'libx264' as const } : o.h264;
    const copyH264 = h264.encoder === H264_COPY;
    const input = o.inputArgs !== undefined ? splitInputArgs(o.inputArgs, '--video-input') : videoDeviceInput(o, size, copyH264, 'h264');
    const enc = h264EncoderArgs(h264);
    // FLV: every frame arrives with its length, so FlvH264Splitter never waits for the next one.
    return [...COMMON_ARGS, ...enc.global, ...LOW_LATENCY_INPUT_ARGS, ...input, '-an', ...outputRate(o), ...enc.output, '-f', 'flv', ...OUTPUT_PIPE];
  }
  const copy = o.copyMjpeg === true && o.source !== 'test';
  const input = o.inputArgs !== undefined ? splitInputArgs(o.inputArgs, '--video-input') : videoDeviceInput(o, size, copy);
  const codec = copy ? ['-c:v', 'copy'] : ['-c:v', 'mjpeg', '-threads', '1', '-q:v', String(o.quality), '-pix_fmt', 'yuvj420p'];
  // -filter_threads: see the header (the encoder's -threads 1 would hold the conversion to one too).
  const convertThreads = o.convertThreads ?? 1;
  assertPositiveInteger('convertThreads', convertThreads);
  const filterThreads = copy || convertThreads === 1 ? [] : ['-filter_threads', String(convertThreads)];
  return [...COMMON_ARGS, ...filterThreads, ...LOW_LATENCY_INPUT_ARGS, ...input, '-an', ...outputRate(o), ...codec, '-f', 'mjpeg', ...OUTPUT_PIPE];
}

/**
 * avfoundation gives its stream a 1 µs time base and no frame rate (avfoundation.m, FFmpeg 7.1:
 * `avpriv_set_pts_info(stream, 64, 1, 1000000)`, no avg_frame_rate), and with `-probesize 32` ffmpeg
 * cannot measure one, so it takes the time base's: 1 000 000 fps. The MJPEG muxer is constant-rate,
 * so each camera frame was repeated ~33 000 times to fill its 33 ms at that rate (reported by other
 * tools as "observed as 1,000,000 fps"), and an H.264 encoder was told that rate. `-r` on the output
 * states the real rate; the capture mode is the same rate (`-framerate`), so nothing is repeated.
 * v4l2, dshow, x11grab and lavfi state their rate; a custom --video-input is left as given.
 */
function outputRate(o: VideoCaptureOptions): string[] {
  return o.platform === Platform.MACOS && o.source !== 'test' && o.inputArgs === undefined ? ['-r', String(o.fps)] : [];
}

export function buildAudioArgs(o: AudioCaptureOptions): string[] {
  assertPositiveInteger('sampleRateHz', o.sampleRateHz);
  assertPositiveInteger('channels', o.channels);
  const input = o.inputArgs !== undefined ? splitInputArgs(o.inputArgs, '--audio-input') : audioDeviceInput(o);
  const rate = String(o.sampleRateHz);
  const channels = String(o.channels);
  return [...COMMON_ARGS, ...LOW_LATENCY_INPUT_ARGS, ...input, '-vn', '-c:a', 'pcm_s16le', '-ac', channels, '-ar', rate, '-f', 's16le', ...OUTPUT_PIPE];
}

function videoDeviceInput(o: VideoCaptureOptions, size: string, copy: boolean, copyFormat: 'mjpeg' | 'h264' = 'mjpeg'): string[] {
  const fps = String(o.fps);
  if (o.source === 'test') {
    // lavfi generates as fast as it can; a live source must arrive at its own pace (see the tone's).
    return ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps},realtime`];
  }
  const device = o.device ?? requireDefault(DEFAULT_VIDEO_DEVICE[o.platform], o.platform, '--video-device', 'camera');
  switch (o.platform) {
    case Platform.LINUX:
      return ['-f', 'v4l2', ...(copy ? ['-input_format', copyFormat] : []), '-video_size', size, '-framerate', fps, '-i', device];
    case Platform.MACOS:
      if (copy) {
        const flag = copyFormat === 'mjpeg' ? '--copy-mjpeg' : '--encoder copy';
        throw new LanstreamError('LS_ERR_USAGE', `${copyFormat.toUpperCase()} copy is not available on macOS: avfoundation delivers raw frames; drop ${flag}`, {
          details: { flag },
        });
      }
      // nv12: 4:2:0 like the encoder's output, and offered by Mac cameras; avfoundation's default
      // (yuv420p) is not, so every start printed four ERROR lines before it fell back to uyvy422
      // (and an nv12-less device falls back the same way).
      return ['-f', 'avfoundation', '-framerate', fps, '-video_size', size, '-pixel_format', 'nv12', '-i', `${device}:none`];
    case Platform.WINDOWS:
      // dshow picks the device's MJPEG mode when the input codec is forced to mjpeg.
      return ['-f', 'dshow', ...(copy ? ['-vcodec', copyFormat] : []), '-video_size', size, '-framerate', fps, '-i', `video=${device}`];
  }
}

function audioDeviceInput(o: AudioCaptureOptions): string[] {
  const rate = String(o.sampleRateHz);
  if (o.source === 'test') {
    const toneHz = o.toneHz ?? 440;
    assertPositiveNumber('toneHz', toneHz);
    // samples_per_frame: one packet per frame (the default 1024-sample frames would arrive in 21 ms bursts).
    // Paced by the arealtime filter, not -re: ffmpeg's -re waits in 10 ms sleeps, so 5 ms packets came
    // in pairs every 10 ms (p50 10.2 ms between reads, max 14.6; with arealtime 5.0 and 9.2), and on a
    // loaded machine all viewers saw the same 12–23 ms holes several times a minute (tcpdump in a
    // 10-minute soak: ~400 over 12 ms, one 50 ms). A microphone through pulse with 5 ms fragments:
    // p50 5.0, max 12.2. The gaps that soaks on this source counted followed those holes
    // (bench/results/diag-20261127-2327-soak-sources.md).
    const samplesPerFrame = Math.max(1, Math.round((o.sampleRateHz * (o.packetMs ?? AUDIO_PACKET_MS)) / 1000));
    return ['-f', 'lavfi', '-i', `sine=frequency=${toneHz}:sample_rate=${rate}:samples_per_frame=${samplesPerFrame},arealtime`];
  }
  const device = o.device ?? requireDefault(DEFAULT_AUDIO_DEVICE[o.platform], o.platform, '--audio-device', 'microphone');
  switch (o.platform) {
    case Platform.LINUX: {
      const channels = String(o.channels);
      if (o.backend === 'alsa') return ['-f', 'alsa', '-sample_rate', rate, '-channels', channels, '-i', device];
      // 5 ms (a whole default packet, half a 10 ms one): pulse hands a record stream its audio a fragment
      // at a time, so the fragment is capture delay (rig, ffmpeg | pacat: 16.4 ms mouth to ear with 10 ms,
      // 10.2 ms with 5 ms).
      const fragmentBytes = Math.round((o.sampleRateHz * o.channels * 2 * PULSE_FRAGMENT_MS) / 1000);
      return ['-f', 'pulse', '-sample_rate', rate, '-channels', channels, '-fragment_size', String(fragmentBytes), '-i', device];
    }
    case Platform.MACOS:
      return ['-f', 'avfoundation', '-i', `:${device}`];
    case Platform.WINDOWS:
      return ['-f', 'dshow', '-audio_buffer_size', String(DSHOW_AUDIO_BUFFER_MS), '-i', `audio=${device}`];
  }
}

function requireDefault(value: string | undefined, platform: Platform, flag: string, what: string): string {
  if (value !== undefined) return value;
  throw new LanstreamError('LS_ERR_USAGE', `No default ${what} on ${platform}: pass ${flag} "<name>" (list them with: lanstream devices)`, {
    details: { flag, platform },
  });
}

/**
 * Splits a user's ffmpeg input string the way a POSIX shell would (quotes, escapes), but refuses
 * anything a shell would act on (pipes, redirects, globs, comments): there is no shell here, and
 * silently passing "|" to ffmpeg would be a confusing failure.
 */
export function splitInputArgs(inputArgs: string, flag: string): string[] {
  // Keep $NAME literal: ffmpeg arguments are not subject to the caller's environment.
  const entries = shellQuote.parse(inputArgs, (name: string) => `$${name}`);
  const argv: string[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') {
      argv.push(entry);
      continue;
    }
    const shown = 'op' in entry ? (entry.op === 'glob' ? entry.pattern : entry.op) : `#${entry.comment}`;
    throw new LanstreamError(
      'LS_ERR_USAGE',
      `Invalid ${flag}: ${JSON.stringify(inputArgs)} contains ${JSON.stringify(shown)} (expected ffmpeg input arguments only, no shell operators, globs or comments; quote values that contain them)`,
      { details: { flag, value: inputArgs } },
    );
  }
  if (!argv.includes('-i')) {
    throw new LanstreamError(
      'LS_ERR_USAGE',
      `Invalid ${flag}: ${JSON.stringify(inputArgs)} (expected ffmpeg input arguments ending in -i <input>, e.g. "-f x11grab -i :0")`,
      {
        details: { flag, value: inputArgs },
      },
    );
  }
  return argv;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

function assertPositiveNumber(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
}
