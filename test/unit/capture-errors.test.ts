import t from 'tap';
import { classifyCaptureFailure, FfmpegProcess, type FfmpegExit } from '../../src/server/capture/ffmpeg-process.js';
import { LanstreamError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { pidAlive } from '../helpers/process.js';

// stderr tails as ffmpeg 5.1 prints them (-loglevel error), collected on this machine or from reports.
const cases: Array<{ what: 'camera' | 'microphone'; device?: string; tail: string[]; code: string; says: RegExp }> = [
  {
    what: 'camera',
    device: '/dev/video99',
    tail: ['[video4linux2,v4l2 @ 0x557a5c7de8c0] Cannot open video device /dev/video99: No such file or directory', '/dev/video99: No such file or directory'],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /camera "\/dev\/video99" does not exist.*--video-device.*lanstream devices/,
  },
  {
    what: 'camera',
    device: '/dev/video0',
    tail: ['[video4linux2,v4l2 @ 0x5581e0f4b8c0] ioctl(VIDIOC_STREAMON): Device or resource busy', '/dev/video0: Device or resource busy'],
    code: 'LS_ERR_DEVICE_BUSY',
    says: /used by another program/,
  },
  {
    what: 'camera',
    device: '/dev/null',
    tail: ['[video4linux2,v4l2 @ 0x55684bab98c0] ioctl(VIDIOC_QUERYCAP): Inappropriate ioctl for device', '/dev/null: Inappropriate ioctl for device'],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /does not exist or cannot be opened/,
  },
  {
    what: 'camera',
    device: '/dev/video0',
    tail: ['[video4linux2,v4l2 @ 0x55d0c1a3b8c0] Some buffers are still owned by the caller on close.', '/dev/video0: Input/output error'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /stopped delivering frames/,
  },
  {
    what: 'camera',
    device: '/dev/video0',
    tail: ['[video4linux2,v4l2 @ 0x55d0c1a3b8c0] Cannot open video device /dev/video0: Permission denied', '/dev/video0: Permission denied'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /No permission.*video\/audio group/,
  },
  {
    what: 'microphone',
    device: 'nosuchsource',
    tail: ['nosuchsource: Input/output error'],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /microphone "nosuchsource".*--audio-device/,
  },
  {
    what: 'microphone',
    tail: ['default: No such process'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /PulseAudio is not running.*--audio-backend alsa/,
  },
  {
    what: 'microphone',
    tail: ['pa_context_connect() failed: Connection refused'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /PulseAudio is not running/,
  },
  {
    what: 'microphone',
    device: 'hw:9',
    tail: [
      'ALSA lib confmisc.c:165:(snd_config_get_card) Cannot get card index for 9',
      '[alsa @ 0x5597f60c48c0] cannot open audio device hw:9 (No such file or directory)',
      'hw:9: Input/output error',
    ],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /hw:9/,
  },
  {
    what: 'camera',
    device: 'FaceTime HD Camera',
    tail: ['[AVFoundation indev @ 0x7fa3c8f04a40] Video device not found', 'FaceTime HD Camera:none: Input/output error'],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /FaceTime HD Camera/,
  },
  {
    what: 'camera',
    device: 'Integrated Camera',
    tail: [
      '[dshow @ 0000022b8c5c0b40] Could not find video device with name [Integrated Camra] among source devices of type video.',
      'video=Integrated Camra: I/O error',
    ],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /Integrated Camera/,
  },
  {
    what: 'camera',
    device: 'Integrated Camera',
    tail: [
      '[dshow @ 0000022b8c5c0b40] Could not run graph (sometimes caused by a device already in use by other application)',
      'video=Integrated Camera: I/O error',
    ],
    code: 'LS_ERR_DEVICE_BUSY',
    says: /another program/,
  },
  {
    // ffmpeg on Windows: "I/O error" (its own strerror table), and a microphone is an "audio only device".
    what: 'microphone',
    device: 'Microphone (USB)',
    tail: [
      '[dshow @ 000001f0c1a2b3c0] Could not find audio only device with name [Microphone (USB)] among source devices of type audio.',
      '[dshow @ 000001f0c1a2b3c0] Searching for audio device within video devices for Microphone (USB)',
      '[dshow @ 000001f0c1a2b3c0] Could not find audio only device with name [Microphone (USB)] among source devices of type video.',
      '[in#0 @ 000001f0c1a2a000] Error opening input: I/O error',
      'Error opening input file audio=Microphone (USB).',
      'Error opening input files: I/O error',
    ],
    code: 'LS_ERR_DEVICE_NOT_FOUND',
    says: /Microphone \(USB\)" does not exist/,
  },
  {
    // A dshow camera that disappears mid-stream: EIO in Windows' words is still "stopped delivering".
    what: 'camera',
    device: 'USB Cam',
    tail: ['[in#0/dshow @ 000001f0c1a2b3c0] Error during demuxing: I/O error', 'video=USB Cam: I/O error'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /stopped delivering frames/,
  },
  {
    // avfoundation takes only a mode's highest rate: --fps 24 on a [1 30] camera (the ffmpeg lines as printed).
    what: 'camera',
    device: 'FaceTime HD Camera',
    tail: [
      '[avfoundation @ 0x7f8b5a704a80] Selected framerate (24.000000) is not supported by the device.',
      '[avfoundation @ 0x7f8b5a704a80] Supported modes:',
      '[avfoundation @ 0x7f8b5a704a80]   1280x720@[1.000000 30.000000]fps',
      '[avfoundation @ 0x7f8b5a704a80]   640x480@[1.000000 30.000000]fps',
      'FaceTime HD Camera:none: Input/output error',
    ],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /no mode of that size and frame rate: pass a --size and --fps it offers \(it lists 1280x720 at 30 fps, 640x480 at 30 fps\)/,
  },
  {
    what: 'camera',
    device: 'USB Cam',
    tail: ['[dshow @ 000001f0c1a2b3c0] Could not set video options', 'video=USB Cam: I/O error'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /no mode of that size and frame rate: pass a --size and --fps it offers \(ffmpeg: /,
  },
  {
    what: 'camera',
    tail: ['[mjpeg @ 0x55d0c1a3b8c0] Specified pixel format yuyv422 is invalid or not supported', 'Error while opening encoder for output stream #0:0'],
    code: 'LS_ERR_CAPTURE_FAILED',
    says: /ffmpeg stopped capturing the camera \(ffmpeg: Error while opening encoder/,
  },
];

t.test('ffmpeg messages map to codes with advice and the stderr tail', async (t) => {
  for (const c of cases) {
    const err = classifyCaptureFailure(c.tail, c.what, c.device);
    t.ok(err instanceof LanstreamError);
    t.equal(err.code, c.code, `${c.tail.at(-1)} → ${c.code}`);
    t.match(err.message, c.says);
    t.notMatch(err.message, /\n/, 'one line');
    t.same(err.details.stderrTail, c.tail, 'stderr tail kept');
  }
});

t.test('an empty tail still says something useful', async (t) => {
  const err = classifyCaptureFailure([], 'microphone');
  t.equal(err.code, 'LS_ERR_CAPTURE_FAILED');
  t.match(err.message, /no message from ffmpeg/);
});

function exitOf(p: FfmpegProcess): Promise<FfmpegExit> {
  return new Promise((resolve) => p.once('exit', resolve));
}

t.test('FfmpegProcess: a missing binary becomes LS_ERR_FFMPEG_NOT_FOUND', async (t) => {
  const p = new FfmpegProcess({ ffmpegPath: '/nonexistent/ffmpeg', args: ['-version'], name: 'video', logger: silentLogger() });
  const exited = exitOf(p);
  p.start();
  const exit = await exited;
  t.equal(exit.error?.code, 'LS_ERR_FFMPEG_NOT_FOUND');
  t.match(exit.error?.message, /--ffmpeg/);
});

t.test('FfmpegProcess: streams stdout, keeps the last 20 stderr lines, reports the exit code', async (t) => {
  // A shell stands in for ffmpeg: 30 stderr lines, some stdout, exit 3.
  const script = 'for i in $(seq 1 30); do echo "line $i" >&2; done; printf abc; printf def; exit 3';
  const p = new FfmpegProcess({ ffmpegPath: 'sh', args: ['-c', script], name: 'audio', logger: silentLogger() });
  const data: Buffer[] = [];
  p.on('data', (b) => data.push(b));
  const exited = exitOf(p);
  p.start();
  const exit = await exited;
  t.equal(Buffer.concat(data).toString(), 'abcdef', 'all stdout delivered before exit');
  t.equal(exit.code, 3);
  t.equal(exit.requested, false);
  t.equal(exit.stderrTail.length, 20);
  t.equal(exit.stderrTail[0], 'line 11');
  t.equal(exit.stderrTail.at(-1), 'line 30');
  t.same(p.stderrTail, exit.stderrTail);
});

t.test('FfmpegProcess: the first lines still classify when a long list pushed them out of the tail', async (t) => {
  // avfoundation says what is wrong first, then lists every mode of the camera (here 30), then EIO.
  const script = [
    `echo '[avfoundation @ 0x7f8b5a704a80] Selected framerate (24.000000) is not supported by the device.' >&2`,
    `echo '[avfoundation @ 0x7f8b5a704a80] Supported modes:' >&2`,
    `for i in $(seq 1 30); do echo "[avfoundation @ 0x7f8b5a704a80]   $((i * 16))x$((i * 9))@[1.000000 30.000000]fps" >&2; done`,
    `echo 'USB Capture:none: Input/output error' >&2`,
    'exit 1',
  ].join('; ');
  const p = new FfmpegProcess({ ffmpegPath: 'sh', args: ['-c', script], name: 'video', logger: silentLogger() });
  const exited = exitOf(p);
  p.start();
  const exit = await exited;
  t.equal(exit.stderrTail.length, 20, 'the tail is still the last 20 lines');
  t.match(exit.stderrHead[0], /Selected framerate/, 'the first line is kept');
  t.equal(exit.stderrHead.length, 5);
  const err = classifyCaptureFailure(exit.stderrTail, 'camera', 'USB Capture', exit.stderrHead);
  t.match(err.message, /no mode of that size and frame rate/, 'not "unplugged"');
  t.match(classifyCaptureFailure(exit.stderrTail, 'camera', 'USB Capture').message, /stopped delivering frames/, 'the tail alone would say unplugged');
  const short = new FfmpegProcess({ ffmpegPath: 'sh', args: ['-c', 'echo one >&2; echo two >&2; exit 1'], name: 'video', logger: silentLogger() });
  const shortExit = exitOf(short);
  short.start();
  t.same((await shortExit).stderrHead, [], 'nothing twice when the tail holds every line');
});

t.test('FfmpegProcess.close(): SIGTERM, idempotent, same promise; SIGKILL after grace', async (t) => {
  const real = new FfmpegProcess({
    ffmpegPath: 'ffmpeg',
    args: ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine', '-f', 's16le', 'pipe:1'],
    name: 'audio',
    logger: silentLogger(),
  });
  const exited = exitOf(real);
  real.start();
  await new Promise((r) => setTimeout(r, 200));
  const pid = real.pid!;
  const a = real.close();
  const b = real.close();
  t.equal(a, b, 'same promise twice');
  const started = Date.now();
  await a;
  t.ok(Date.now() - started < 1500, 'ffmpeg honours SIGTERM quickly');
  t.equal((await exited).requested, true);
  t.equal(pidAlive(pid), false);

  // A child that ignores SIGTERM is killed after graceMs.
  const stubborn = new FfmpegProcess({
    ffmpegPath: 'sh',
    args: ['-c', 'trap "" TERM; while :; do sleep 0.05; done'],
    name: 'video',
    logger: silentLogger(),
    graceMs: 300,
  });
  const stubbornExit = exitOf(stubborn);
  stubborn.start();
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  await stubborn.close();
  const took = Date.now() - t0;
  t.ok(took >= 250 && took < 2000, `forced after the grace period (${took} ms)`);
  t.equal((await stubbornExit).signal, 'SIGKILL');
  await stubborn.close();
});

t.test('FfmpegProcess.destroy() kills at once', async (t) => {
  const p = new FfmpegProcess({ ffmpegPath: 'sh', args: ['-c', 'trap "" TERM; sleep 5'], name: 'video', logger: silentLogger() });
  const exited = exitOf(p);
  p.start();
  await new Promise((r) => setTimeout(r, 50));
  p.destroy();
  const exit = await exited;
  t.equal(exit.signal, 'SIGKILL');
  t.equal(exit.requested, true);
});

t.test('a missing default device (none named) points to --source test; a named one does not', async (t) => {
  const camera = ['[video4linux2,v4l2 @ 0x1] Cannot open video device /dev/video0: No such file or directory'];
  const byDefault = classifyCaptureFailure(camera, 'camera');
  t.equal(byDefault.code, 'LS_ERR_DEVICE_NOT_FOUND');
  t.match(
    byDefault.message,
    /^The camera does not exist .*--video-device \(list them with: lanstream devices\), or --source test for the built-in test picture/,
  );
  t.notMatch(classifyCaptureFailure(camera, 'camera', '/dev/video0').message, /--source test/, 'a device the user named: no test-source hint');
  const mic = classifyCaptureFailure(['default: Input/output error'], 'microphone');
  t.match(mic.message, /--audio-device .*, or --no-audio, or --source test/);
});
