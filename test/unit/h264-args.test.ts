import t from 'tap';
import { buildVideoArgs } from '../../src/server/capture/ffmpeg-args.js';
import { Platform, type VideoCaptureOptions } from '../../src/server/capture/capture-types.js';
import { H264Encoder, HARDWARE_H264_ENCODERS, h264EncoderArgs } from '../../src/server/capture/h264-args.js';
import { chooseH264Encoder, parseEncoderList, probeArgs, type RunFfmpeg } from '../../src/server/capture/encoder-probe.js';
import { videoOptions } from '../helpers/capture-options.js';

const video = (o: Partial<VideoCaptureOptions> = {}): VideoCaptureOptions =>
  videoOptions({ h264: { encoder: 'libx264', bitrateKbps: 2000, gopFrames: 15 }, ...o });
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

t.test('every encoder: no B-frames or look-ahead, the GOP and the bitrate cap', async (t) => {
  for (const encoder of Object.values(H264Encoder)) {
    const { global, output } = h264EncoderArgs({ encoder, bitrateKbps: 2000, gopFrames: 15 });
    t.equal(after(output, '-c:v'), encoder, encoder);
    t.equal(after(output, '-g'), '15', `${encoder}: GOP`);
    t.equal(after(output, '-b:v'), '2000k', `${encoder}: bitrate`);
    t.equal(after(output, '-maxrate'), '2000k', `${encoder}: capped`);
    t.equal(after(output, '-bufsize'), '1000k', `${encoder}: half a second of VBV`);
    if (encoder === 'libx264') t.match(output.join(' '), /-preset ultrafast -tune zerolatency/);
    else t.equal(after(output, '-bf'), '0', `${encoder}: no B-frames`);
    if (encoder === 'h264_vaapi') {
      t.same(global, ['-vaapi_device', '/dev/dri/renderD128']);
      t.match(output.join(' '), /-vf format=nv12,hwupload .*-async_depth 1/);
    } else {
      t.same(global, [], `${encoder}: no device setup`);
    }
  }
  t.match(h264EncoderArgs({ encoder: 'h264_nvenc', bitrateKbps: 500, gopFrames: 30 }).output.join(' '), /-preset p1 -tune ull -zerolatency 1 -delay 0/);
  t.match(h264EncoderArgs({ encoder: 'h264_qsv', bitrateKbps: 500, gopFrames: 30 }).output.join(' '), /-async_depth 1/);
  t.same(h264EncoderArgs({ encoder: 'copy', bitrateKbps: 0, gopFrames: 0 }), { global: [], output: ['-c:v', 'copy'] });
  t.throws(() => h264EncoderArgs({ encoder: 'libx264', bitrateKbps: 1, gopFrames: 15 }), /bitrateKbps/);
  t.throws(() => h264EncoderArgs({ encoder: 'libx264', bitrateKbps: 500, gopFrames: 0 }), /gopFrames/);
});

t.test('hardware candidates per platform', async (t) => {
  t.same(HARDWARE_H264_ENCODERS.linux, ['h264_nvenc', 'h264_vaapi', 'h264_qsv', 'h264_v4l2m2m']);
  t.same(HARDWARE_H264_ENCODERS.darwin, ['h264_videotoolbox']);
  t.same(HARDWARE_H264_ENCODERS.win32, ['h264_nvenc', 'h264_qsv', 'h264_amf', 'h264_mf']);
});

t.test('full video command lines end in FLV on pipe:1', async (t) => {
  const linux = buildVideoArgs(video());
  t.same(linux.slice(-5), ['-f', 'flv', '-flush_packets', '1', 'pipe:1']);
  t.match(linux.join(' '), /-f v4l2 -video_size 1280x720 -framerate 30 -i \/dev\/video0 -an -c:v libx264/);
  t.notOk(linux.includes('-q:v'), 'no MJPEG quality');
  const copy = buildVideoArgs(video({ h264: { encoder: 'copy', bitrateKbps: 2000, gopFrames: 15 } }));
  t.match(copy.join(' '), /-f v4l2 -input_format h264 .* -c:v copy -f flv/, 'camera H.264 passed through');
  const win = buildVideoArgs(video({ platform: Platform.WINDOWS, device: 'Cam', h264: { encoder: 'copy', bitrateKbps: 2000, gopFrames: 15 } }));
  t.match(win.join(' '), /-f dshow -vcodec h264 .*-i video=Cam -an -c:v copy/);
  t.throws(
    () => buildVideoArgs(video({ platform: Platform.MACOS, h264: { encoder: 'copy', bitrateKbps: 2000, gopFrames: 15 } })),
    /H264 copy is not available on macOS/,
  );
  const test = buildVideoArgs(video({ source: 'test', h264: { encoder: 'copy', bitrateKbps: 2000, gopFrames: 15 } }));
  t.match(test.join(' '), /testsrc2.* -c:v libx264/, 'the test source has nothing to copy: encoded');
  const vaapi = buildVideoArgs(video({ h264: { encoder: 'h264_vaapi', bitrateKbps: 2000, gopFrames: 15, vaapiDevice: '/dev/dri/renderD129' } }));
  t.ok(vaapi.indexOf('-vaapi_device') < vaapi.indexOf('-i'), 'VAAPI device is set up before the input');
  t.equal(after(vaapi, '-vaapi_device'), '/dev/dri/renderD129');
  const mac = buildVideoArgs(video({ platform: Platform.MACOS, h264: { encoder: 'h264_videotoolbox', bitrateKbps: 2000, gopFrames: 15 } }));
  t.match(mac.join(' '), /-f avfoundation .* -c:v h264_videotoolbox -realtime 1/);
});

const ENCODERS_TEXT = `Encoders:
 V..... = Video
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V..... h264_vaapi           H.264/AVC (VAAPI) (codec h264)
 A..... libopus              libopus Opus (codec opus)
`;

function fakeRun(working: string[], calls: string[][] = []): RunFfmpeg {
  return async (_path, args) => {
    calls.push(args);
    if (args.includes('-encoders')) return { ok: true, output: ENCODERS_TEXT };
    const encoder = args[args.indexOf('-c:v') + 1]!;
    return working.includes(encoder)
      ? { ok: true, output: '' }
      : { ok: false, output: `[${encoder} @ 0x1] Cannot load libcuda.so.1\nError initializing output stream 0:0 -- generic` };
  };
}

t.test('encoder probe: hardware when it works, otherwise libx264 with one line saying why', async (t) => {
  t.same([...parseEncoderList(ENCODERS_TEXT)], ['libx264', 'h264_nvenc', 'h264_vaapi', 'libopus']);
  const hw = await chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'linux', requested: 'auto', run: fakeRun(['h264_vaapi', 'libx264']) });
  t.equal(hw.encoder, 'h264_vaapi', 'first working hardware encoder in priority order');
  t.equal(hw.fallbackMessage, null);
  t.same(
    hw.failed.map((f) => f.encoder),
    ['h264_nvenc'],
  );

  const calls: string[][] = [];
  const none = await chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'linux', requested: 'auto', run: fakeRun(['libx264'], calls) });
  t.equal(none.encoder, 'libx264');
  t.match(
    none.fallbackMessage,
    /^no hardware H\.264 encoder works here \(h264_nvenc: \[h264_nvenc @ 0x1\] Cannot load libcuda\.so\.1; h264_vaapi: .*\): using libx264$/,
  );
  t.notOk(none.fallbackMessage!.includes('\n'), 'one line');
  t.notOk(
    calls.some((a) => a.includes('h264_qsv')),
    'encoders this ffmpeg does not list are not tried',
  );

  const explicit = await chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'linux', requested: 'h264_nvenc', run: fakeRun(['libx264']) });
  t.equal(explicit.encoder, 'libx264');
  t.match(explicit.fallbackMessage, /^--encoder h264_nvenc does not work here \(.*libcuda.*\): using libx264 instead$/);
  const unlisted = await chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'win32', requested: 'h264_amf', run: fakeRun(['libx264']) });
  t.match(unlisted.fallbackMessage, /h264_amf does not work here \(not in this ffmpeg build/);
  const mac = await chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'darwin', requested: 'auto', run: fakeRun(['libx264']) });
  t.equal(mac.fallbackMessage, null, 'nothing to say when no hardware encoder is even listed');
  await t.rejects(chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'linux', requested: 'x265', run: fakeRun([]) }), /Unknown H\.264 encoder "x265"/);
  t.match(probeArgs('libx264').join(' '), /-frames:v 1 .*-f null -$/);
});

t.test('encoder probe against the real ffmpeg: libx264 works, a missing GPU falls back', { timeout: 20_000 }, async (t) => {
  const choice = await chooseH264Encoder({ ffmpegPath: 'ffmpeg', platform: 'linux', requested: 'h264_nvenc' });
  t.equal(choice.encoder, 'libx264', 'no NVIDIA GPU in this machine');
  t.match(choice.fallbackMessage, /--encoder h264_nvenc does not work here/);
});
