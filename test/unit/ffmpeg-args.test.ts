import t, { type Test } from 'tap';
import { buildAudioArgs, buildVideoArgs, defaultAudioDevice, defaultVideoDevice, splitInputArgs } from '../../src/server/capture/ffmpeg-args.js';
import { Platform, type AudioCaptureOptions } from '../../src/server/capture/capture-types.js';
import { LanstreamError } from '../../src/shared/errors.js';
import { videoOptions } from '../helpers/capture-options.js';

const video = videoOptions;

const audio = (o: Partial<AudioCaptureOptions> = {}): AudioCaptureOptions => ({
  platform: Platform.LINUX,
  source: 'device',
  sampleRateHz: 48_000,
  channels: 1,
  ...o,
});

/** The value following `flag` (first occurrence). */
function valueOf(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i === -1 ? undefined : argv[i + 1];
}

/** The input part: from the first -f to the -i value inclusive. */
function inputPart(argv: string[]): string[] {
  const i = argv.indexOf('-i');
  const start = argv.indexOf('-re') !== -1 && argv.indexOf('-re') < i ? argv.indexOf('-re') : argv.indexOf('-f');
  return argv.slice(start, i + 2);
}

function usageError(t: Test, fn: () => unknown, mentions: RegExp): void {
  try {
    fn();
    t.fail('expected a usage error');
  } catch (err) {
    t.ok(err instanceof LanstreamError, 'LanstreamError');
    t.equal((err as LanstreamError).code, 'LS_ERR_USAGE');
    t.match((err as Error).message, mentions);
  }
}

t.test('every argv is quiet, never reads stdin, and writes to pipe:1', async (t) => {
  const all = [buildVideoArgs(video()), buildVideoArgs(video({ source: 'test' })), buildAudioArgs(audio()), buildAudioArgs(audio({ source: 'test' }))];
  for (const argv of all) {
    t.same(argv.slice(0, 2), ['-hide_banner', '-nostdin']);
    t.equal(valueOf(argv, '-loglevel'), 'error');
    t.notOk(argv.includes('nobuffer'), 'no -fflags nobuffer: it would discard the first captured frame');
    t.equal(valueOf(argv, '-probesize'), '32');
    t.equal(valueOf(argv, '-analyzeduration'), '0');
    t.equal(valueOf(argv, '-flush_packets'), '1');
    t.equal(argv.at(-1), 'pipe:1');
    t.ok(argv.indexOf('-probesize') < argv.indexOf('-i'), 'input flags come before -i');
    t.ok(
      argv.every((a) => typeof a === 'string' && a.length > 0),
      'no empty argv elements',
    );
  }
});

t.test('video: MJPEG out, single-threaded encoder, quality', async (t) => {
  const argv = buildVideoArgs(video({ quality: 7 }));
  t.equal(valueOf(argv, '-c:v'), 'mjpeg');
  t.equal(valueOf(argv, '-threads'), '1');
  t.equal(valueOf(argv, '-q:v'), '7');
  t.equal(valueOf(argv, '-pix_fmt'), 'yuvj420p', '4:2:0 JPEG whatever the input chroma');
  t.ok(argv.indexOf('-threads') > argv.indexOf('-i'), '-threads applies to the encoder (after -i)');
  t.equal(valueOf(argv, '-f'), 'v4l2');
  t.equal(argv[argv.lastIndexOf('-f') + 1], 'mjpeg');
  t.ok(argv.includes('-an'));
});

t.test('video: the conversion to 4:2:0 may use more threads, the encoder never does', async (t) => {
  t.notOk(buildVideoArgs(video()).includes('-filter_threads'), 'one thread unless asked');
  t.notOk(buildVideoArgs(video({ convertThreads: 1 })).includes('-filter_threads'));
  const argv = buildVideoArgs(video({ convertThreads: 2 }));
  t.equal(valueOf(argv, '-filter_threads'), '2');
  t.ok(argv.indexOf('-filter_threads') < argv.indexOf('-i'), 'a global option, before the input');
  t.equal(valueOf(argv, '-threads'), '1', 'the encoder stays on one thread (optimal Huffman tables)');
  t.notOk(buildVideoArgs(video({ convertThreads: 2, copyMjpeg: true })).includes('-filter_threads'), 'copy converts nothing');
  t.throws(() => buildVideoArgs(video({ convertThreads: 0 })), RangeError);
  t.throws(() => buildVideoArgs(video({ convertThreads: 1.5 })), RangeError);
});

t.test('Linux video: v4l2 with size and rate, default /dev/video0', async (t) => {
  t.same(inputPart(buildVideoArgs(video())), ['-f', 'v4l2', '-video_size', '1280x720', '-framerate', '30', '-i', '/dev/video0']);
  t.same(inputPart(buildVideoArgs(video({ device: '/dev/video2', width: 640, height: 480, fps: 15 }))), [
    '-f',
    'v4l2',
    '-video_size',
    '640x480',
    '-framerate',
    '15',
    '-i',
    '/dev/video2',
  ]);
  t.equal(defaultVideoDevice(Platform.LINUX), '/dev/video0');
});

t.test('copy mode asks the camera for MJPEG and does not re-encode', async (t) => {
  const argv = buildVideoArgs(video({ copyMjpeg: true }));
  t.same(inputPart(argv), ['-f', 'v4l2', '-input_format', 'mjpeg', '-video_size', '1280x720', '-framerate', '30', '-i', '/dev/video0']);
  t.equal(valueOf(argv, '-c:v'), 'copy');
  t.notOk(argv.includes('-q:v'), 'no encoder options');
  t.notOk(argv.includes('-threads'));
  t.notOk(argv.includes('-pix_fmt'), "the camera's JPEG as it is");
  const win = buildVideoArgs(video({ platform: Platform.WINDOWS, device: 'USB Cam', copyMjpeg: true }));
  t.equal(valueOf(win, '-vcodec'), 'mjpeg', 'dshow selects the MJPEG mode');
  t.equal(valueOf(win, '-c:v'), 'copy');
  usageError(t, () => buildVideoArgs(video({ platform: Platform.MACOS, copyMjpeg: true })), /macOS/);
});

t.test('macOS: avfoundation, "<video>:none" and ":<audio>"', async (t) => {
  t.same(inputPart(buildVideoArgs(video({ platform: Platform.MACOS, device: '0' }))), [
    '-f',
    'avfoundation',
    '-framerate',
    '30',
    '-video_size',
    '1280x720',
    '-pixel_format',
    'nv12',
    '-i',
    '0:none',
  ]);
  t.equal(valueOf(buildVideoArgs(video({ platform: Platform.MACOS, device: 'FaceTime HD Camera' })), '-i'), 'FaceTime HD Camera:none');
  t.equal(valueOf(buildVideoArgs(video({ platform: Platform.MACOS })), '-i'), 'default:none');
  t.same(inputPart(buildAudioArgs(audio({ platform: Platform.MACOS, device: '1' }))), ['-f', 'avfoundation', '-i', ':1']);
  t.equal(valueOf(buildAudioArgs(audio({ platform: Platform.MACOS })), '-i'), ':default');
});

t.test('macOS: the output states the frame rate (avfoundation has a 1 µs time base and none of its own)', async (t) => {
  // Without it ffmpeg takes 1 000 000 fps from the time base and repeats each frame ~33 000 times.
  const after = (argv: string[]): string[] => argv.slice(argv.indexOf('-i') + 2);
  const mjpeg = buildVideoArgs(video({ platform: Platform.MACOS, device: '0', fps: 25 }));
  t.equal(valueOf(after(mjpeg), '-r'), '25', 'MJPEG: -r on the output, at --fps');
  const h264 = buildVideoArgs(video({ platform: Platform.MACOS, device: '0', h264: { encoder: 'h264_videotoolbox', bitrateKbps: 2000, gopFrames: 15 } }));
  t.equal(valueOf(after(h264), '-r'), '30', 'H.264: the encoder is told the real rate');
  const ntsc = buildVideoArgs(video({ platform: Platform.MACOS, device: '0', fps: 29.97 }));
  t.equal(valueOf(ntsc, '-framerate'), '29.97', 'a camera with only NTSC rates: avfoundation is asked for 29.97');
  t.equal(valueOf(after(ntsc), '-r'), '29.97', 'and the output states it');
  t.notOk(buildVideoArgs(video({ platform: Platform.LINUX })).includes('-r'), 'v4l2 states its rate');
  t.notOk(buildVideoArgs(video({ platform: Platform.WINDOWS, device: 'Cam' })).includes('-r'), 'dshow states its rate');
  t.notOk(buildVideoArgs(video({ platform: Platform.MACOS, source: 'test' })).includes('-r'), 'the test source states its rate');
  t.notOk(
    buildVideoArgs(video({ platform: Platform.MACOS, inputArgs: '-f avfoundation -i 1:none' })).includes('-r'),
    'a custom --video-input is left as given',
  );
});

t.test('Windows: dshow, names with spaces are one argv element, no quotes', async (t) => {
  const v = buildVideoArgs(video({ platform: Platform.WINDOWS, device: 'Integrated Camera' }));
  t.same(inputPart(v), ['-f', 'dshow', '-video_size', '1280x720', '-framerate', '30', '-i', 'video=Integrated Camera']);
  const a = buildAudioArgs(audio({ platform: Platform.WINDOWS, device: 'Microphone (Realtek(R) Audio)' }));
  t.equal(valueOf(a, '-i'), 'audio=Microphone (Realtek(R) Audio)');
  t.ok(Number(valueOf(a, '-audio_buffer_size')) <= 50, 'small dshow audio buffer');
  t.equal(defaultVideoDevice(Platform.WINDOWS), undefined);
  usageError(t, () => buildVideoArgs(video({ platform: Platform.WINDOWS })), /--video-device/);
  usageError(t, () => buildAudioArgs(audio({ platform: Platform.WINDOWS })), /--audio-device/);
});

t.test('Linux audio: pulse with a 5 ms fragment (half a packet), or ALSA', async (t) => {
  const pulse = buildAudioArgs(audio());
  t.equal(valueOf(pulse, '-f'), 'pulse');
  t.equal(valueOf(pulse, '-fragment_size'), '480', '5 ms of 48 kHz mono s16');
  t.equal(valueOf(pulse, '-i'), 'default');
  t.equal(defaultAudioDevice(Platform.LINUX), 'default');
  t.equal(valueOf(buildAudioArgs(audio({ channels: 2, sampleRateHz: 44_100 })), '-fragment_size'), '882');
  t.equal(valueOf(buildAudioArgs(audio({ device: 'alsa_input.usb-mic.mono' })), '-i'), 'alsa_input.usb-mic.mono');
  const alsa = buildAudioArgs(audio({ backend: 'alsa', device: 'hw:1,0' }));
  t.same(inputPart(alsa), ['-f', 'alsa', '-sample_rate', '48000', '-channels', '1', '-i', 'hw:1,0']);
});

t.test('audio output is s16le at the requested rate and channels', async (t) => {
  const argv = buildAudioArgs(audio({ channels: 2, sampleRateHz: 44_100 }));
  t.equal(argv[argv.lastIndexOf('-f') + 1], 's16le');
  t.equal(valueOf(argv, '-ac'), '2');
  t.equal(valueOf(argv, '-ar'), '44100');
  t.equal(valueOf(argv, '-c:a'), 'pcm_s16le');
  t.ok(argv.includes('-vn'));
});

t.test('test sources: real-time lavfi, audio frames of one packet (5 ms by default), tone', async (t) => {
  const v = buildVideoArgs(video({ source: 'test', width: 320, height: 240, fps: 30, platform: Platform.WINDOWS }));
  t.same(inputPart(v), ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30,realtime'], 'same on every OS, no device needed');
  t.notOk(v.includes('-re'), "paced by the realtime filter, not -re's 10 ms sleeps");
  const a = buildAudioArgs(audio({ source: 'test' }));
  t.same(inputPart(a), ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:samples_per_frame=240,arealtime']);
  t.notOk(a.includes('-re'));
  t.match(valueOf(buildAudioArgs(audio({ source: 'test', packetMs: 20 })), '-i'), /:samples_per_frame=960,arealtime$/);
  t.match(valueOf(buildAudioArgs(audio({ source: 'test', toneHz: 1000 })), '-i'), /^sine=frequency=1000:/);
  t.equal(valueOf(buildVideoArgs(video({ source: 'test', copyMjpeg: true })), '-c:v'), 'mjpeg', 'a test source is always encoded');
});

t.test('inputArgs replaces the input whole; quoted values stay one element', async (t) => {
  const v = buildVideoArgs(video({ inputArgs: '-f x11grab -framerate 30 -video_size 1280x720 -i :91' }));
  t.same(inputPart(v), ['-f', 'x11grab', '-framerate', '30', '-video_size', '1280x720', '-i', ':91']);
  t.notOk(v.includes('/dev/video0'));
  t.equal(valueOf(v, '-c:v'), 'mjpeg');
  const d = buildVideoArgs(video({ platform: Platform.WINDOWS, inputArgs: `-f dshow -i video="HD Pro Webcam C920"` }));
  t.equal(valueOf(d, '-i'), 'video=HD Pro Webcam C920');
  t.same(splitInputArgs(`-f pulse -i 'my source' -x "a b" c\\ d`, '--audio-input'), ['-f', 'pulse', '-i', 'my source', '-x', 'a b', 'c d']);
  t.same(splitInputArgs('-f lavfi -i "sine=frequency=220|x"', '--audio-input'), ['-f', 'lavfi', '-i', 'sine=frequency=220|x'], 'quoted | is data');
  t.same(splitInputArgs('-i $HOME/x', '--video-input'), ['-i', '$HOME/x'], 'no environment expansion');
  const a = buildAudioArgs(audio({ inputArgs: '-f pulse -i bench.monitor' }));
  t.same(inputPart(a), ['-f', 'pulse', '-i', 'bench.monitor']);
  t.equal(valueOf(buildVideoArgs(video({ inputArgs: '-f v4l2 -input_format mjpeg -i /dev/video1', copyMjpeg: true })), '-c:v'), 'copy');
});

t.test('inputArgs with shell operators, globs or comments is refused, naming the flag', async (t) => {
  for (const bad of ['-f v4l2 -i /dev/video0 | cat', '-i a; rm -rf x', '-i a > out', '-i a && b', '-i /dev/video*', '-i x # note', '-i $(id)']) {
    usageError(t, () => buildVideoArgs(video({ inputArgs: bad })), /--video-input/);
  }
  usageError(t, () => buildAudioArgs(audio({ inputArgs: '-f pulse -i x &' })), /--audio-input.*"&"/);
  usageError(t, () => buildVideoArgs(video({ inputArgs: '-f x11grab' })), /--video-input.*-i/);
  usageError(t, () => buildVideoArgs(video({ inputArgs: '' })), /--video-input/);
});

t.test('nonsense numbers are programming errors', async (t) => {
  t.throws(() => buildVideoArgs(video({ width: 0 })), RangeError);
  t.throws(() => buildVideoArgs(video({ quality: 40 })), RangeError);
  t.throws(() => buildVideoArgs(video({ fps: Number.NaN })), RangeError);
  t.throws(() => buildAudioArgs(audio({ channels: 0 })), RangeError);
});
