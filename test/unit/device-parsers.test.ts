import shellQuote from 'shell-quote';
import { shellArg } from '../../src/cli/devices-command.js';
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  listDevices,
  parseArecordList,
  parseAvfoundationList,
  parseDshowList,
  parsePactlDefaultSource,
  parsePactlSources,
  parseV4l2Formats,
} from '../../src/server/capture/devices.js';
import { buildAudioArgs, buildVideoArgs } from '../../src/server/capture/ffmpeg-args.js';
import { Platform } from '../../src/server/capture/capture-types.js';
import { hasCommand } from '../helpers/process.js';
import { startPulse } from '../helpers/pulse.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/devices/${name}`, import.meta.url), 'utf8');

t.test('avfoundation: video and audio sections, names as values, screens marked', async (t) => {
  const { cameras, microphones } = parseAvfoundationList(fixture('avfoundation-list.txt'));
  t.same(
    cameras.map((c) => c.value),
    ['FaceTime HD Camera', 'OBS Virtual Camera', 'Capture screen 0'],
  );
  t.match(cameras[0]!.details, /index 0/);
  t.match(cameras[2]!.details, /screen capture/);
  t.same(
    microphones.map((m) => m.value),
    ['MacBook Pro Microphone', 'ZoomAudioDevice', 'Jabra SPEAK 510 USB'],
  );
  // The value works as-is in the builder.
  const argv = buildVideoArgs({ platform: Platform.MACOS, source: 'device', device: cameras[0]!.value, width: 1280, height: 720, fps: 30, quality: 5 });
  t.ok(argv.includes('FaceTime HD Camera:none'));
  t.ok(
    buildAudioArgs({ platform: Platform.MACOS, source: 'device', device: microphones[2]!.value, sampleRateHz: 48000, channels: 1 }).includes(
      ':Jabra SPEAK 510 USB',
    ),
  );
});

t.test('avfoundation: a name ffmpeg cannot find by (leading number, shared start, colon) gets its index as the value', async (t) => {
  const p = '[AVFoundation indev @ 0x7f9b1c004a40] ';
  const { cameras, microphones } = parseAvfoundationList(
    [
      `${p}AVFoundation video devices:`,
      `${p}[0] FaceTime HD Camera`,
      `${p}[1] 4K USB Camera`,
      `${p}[2] USB Camera`,
      `${p}[3] USB Camera #2`,
      `${p}AVFoundation audio devices:`,
      `${p}[0] Elgato Wave:3`,
      `${p}[1] MacBook Pro Microphone`,
    ].join('\n'),
  );
  t.same(
    cameras.map((c) => c.value),
    ['FaceTime HD Camera', '1', '2', 'USB Camera #2'],
    '"4K…" would be read as index 4; "USB Camera" would also match "USB Camera #2"',
  );
  t.match(cameras[1]!.details, /starts with a number/);
  t.match(cameras[2]!.details, /by their start/);
  t.same(
    microphones.map((m) => m.value),
    ['0', 'MacBook Pro Microphone'],
    "a ':' would split the input",
  );
});

t.test("dshow: a name with ':' (ffmpeg splits video=…:audio=… there) gets its alternative name", async (t) => {
  const p = '[dshow @ 000001f0c1a2b3c0] ';
  const { microphones } = parseDshowList(
    [`${p}"Elgato Wave:3" (audio)`, `${p}  Alternative name "@device_cm_{33D9A762-90C8-11D0-BD43-00A0C911CE86}\\wave_{ABC}"`].join('\n'),
  );
  t.match(microphones[0]!.value, /^@device_cm_/);
  t.match(microphones[0]!.details, /':'/);
  const argv = buildAudioArgs({ platform: Platform.WINDOWS, source: 'device', device: microphones[0]!.value, sampleRateHz: 48000, channels: 1 });
  t.notOk(
    argv.some((a) => a.includes('Wave:3')),
    'the input string has no colon inside the name',
  );
});

t.test('dshow (ffmpeg ≥ 5.0 format): kinds, (none) skipped, both-kinds devices in both lists', async (t) => {
  const { cameras, microphones } = parseDshowList(fixture('dshow-list.txt'));
  t.same(
    cameras.map((c) => c.name),
    ['Integrated Camera', 'HD Pro Webcam C920', 'HD Pro Webcam C920', 'AVerMedia Live Gamer HD 2'],
  );
  t.equal(cameras[0]!.value, 'Integrated Camera');
  t.same(
    microphones.map((m) => m.value),
    ['AVerMedia Live Gamer HD 2', 'Microphone Array (Realtek(R) Audio)', 'Microphone (HD Pro Webcam C920)'],
  );
  t.notOk(
    cameras.some((c) => c.name === 'OBS Virtual Camera'),
    'a (none) device is neither',
  );
});

t.test('dshow: two devices with one name get their alternative names as values', async (t) => {
  const { cameras } = parseDshowList(fixture('dshow-list.txt'));
  const twins = cameras.filter((c) => c.name === 'HD Pro Webcam C920');
  t.equal(twins.length, 2);
  t.not(twins[0]!.value, twins[1]!.value);
  t.ok(
    twins.every((c) => c.value.startsWith('@device_pnp_')),
    'alternative names',
  );
  t.match(twins[0]!.details, /two devices/);
  const argv = buildVideoArgs({ platform: Platform.WINDOWS, source: 'device', device: twins[1]!.value, width: 640, height: 480, fps: 30, quality: 5 });
  t.ok(argv.includes(`video=${twins[1]!.value}`));
});

t.test('dshow (legacy format with section headers)', async (t) => {
  const { cameras, microphones } = parseDshowList(fixture('dshow-list-legacy.txt'));
  t.same(
    cameras.map((c) => c.value),
    ['Integrated Webcam', 'screen-capture-recorder'],
  );
  t.same(
    microphones.map((m) => m.value),
    ['Microphone (Realtek High Definition Audio)', 'virtual-audio-capturer'],
  );
});

t.test('dshow/avfoundation: nothing recognisable gives empty lists, not an error', async (t) => {
  t.same(parseDshowList('dummy: Immediate exit requested\n'), { cameras: [], microphones: [] });
  t.same(parseAvfoundationList('Unknown input format: avfoundation\n'), { cameras: [], microphones: [] });
});

t.test('v4l2 -list_formats: MJPEG sizes, raw formats, metadata nodes', async (t) => {
  const c920 = parseV4l2Formats(fixture('v4l2-formats-c920.txt'));
  t.equal(c920.capture, true);
  t.same(c920.formats, ['yuyv422', 'h264', 'mjpeg']);
  t.ok(c920.mjpegSizes.includes('1280x720') && c920.mjpegSizes.includes('1920x1080'));
  t.equal(c920.mjpegSizes.length, 17);
  const meta = parseV4l2Formats(fixture('v4l2-formats-metadata.txt'));
  t.equal(meta.capture, false);
  t.same(meta.formats, []);
});

t.test('pactl sources: default first, monitors last and labelled', async (t) => {
  const info =
    'Server String: /run/user/1000/pulse/native\nDefault Sink: alsa_output.pci-0000_00_1f.3.analog-stereo\nDefault Source: alsa_input.usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-02.analog-stereo\n';
  const def = parsePactlDefaultSource(info);
  t.equal(def, 'alsa_input.usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-02.analog-stereo');
  const list = parsePactlSources(fixture('pactl-sources.txt'), def);
  t.same(
    list.map((d) => d.value),
    [
      'alsa_input.usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-02.analog-stereo',
      'alsa_input.pci-0000_00_1f.3.analog-stereo',
      'alsa_output.pci-0000_00_1f.3.analog-stereo.monitor',
    ],
  );
  t.match(list[0]!.details, /default/);
  t.match(list[0]!.details, /32000Hz/);
  t.match(list[2]!.details, /monitor/);
  t.same(parsePactlSources(''), []);
});

t.test('arecord -l: plughw values for the ALSA backend', async (t) => {
  const list = parseArecordList(fixture('arecord-l.txt'));
  t.same(
    list.map((d) => d.value),
    ['plughw:0,0', 'plughw:2,0'],
  );
  t.equal(list[1]!.name, 'HD Pro Webcam C920: USB Audio');
  t.match(list[0]!.details, /--audio-backend alsa/);
  const argv = buildAudioArgs({ platform: Platform.LINUX, source: 'device', backend: 'alsa', device: list[1]!.value, sampleRateHz: 48000, channels: 1 });
  t.ok(argv.includes('plughw:2,0'));
});

t.test(
  "listDevices on this Linux machine lists the private PulseAudio's virtual microphone, default first",
  { skip: hasCommand('pulseaudio') && hasCommand('pactl') ? false : 'pulseaudio/pactl not installed' },
  async (t) => {
    // The suite's private daemon stands in for the machine's sound server: pactl (run by listDevices
    // with this process's environment) finds it through PULSE_SERVER. No camera here, so cameras may
    // be empty; the microphones must not be.
    const pulse = await startPulse();
    const saved = Object.fromEntries(Object.keys(pulse.env).map((k) => [k, process.env[k]]));
    t.teardown(async () => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await pulse.close();
    });
    Object.assign(process.env, pulse.env);
    const devices = await listDevices({ platform: Platform.LINUX, ffmpegPath: 'ffmpeg' });
    t.comment(`found ${devices.cameras.length} camera(s), microphones: ${devices.microphones.map((m) => `${m.value} (${m.details})`).join('; ')}`);
    t.equal(devices.microphones[0]?.value, pulse.micSource, `the virtual microphone (${pulse.micSource}) is listed first`);
    t.match(devices.microphones[0]?.details, /^default\b/, 'marked as the default source');
    t.ok(
      devices.microphones.some((m) => m.value === `${pulse.sinkName}.monitor`),
      `the speaker's monitor (${pulse.sinkName}.monitor) is listed too`,
    );
  },
);

t.test('lanstream devices prints each value quoted for the shell it runs in', async (t) => {
  t.equal(shellArg('FaceTime HD Camera', 'darwin'), "'FaceTime HD Camera'");
  t.equal(shellArg('/dev/video0', 'linux'), "'/dev/video0'");
  const apostrophe = shellArg("Bob's MacBook Microphone", 'darwin');
  t.same(shellParse(apostrophe), ["Bob's MacBook Microphone"], `a POSIX shell reads ${apostrophe} back as the name`);
  t.same(shellParse(shellArg('Mic $HOME `x`', 'linux')), ['Mic $HOME `x`'], 'nothing expanded');
  // cmd.exe: single quotes are not quotes, and dshow's alternative names hold '&'.
  t.equal(shellArg('@device_pnp_\\\\?\\usb#vid_046d&pid_082d', 'win32'), '"@device_pnp_\\\\?\\usb#vid_046d&pid_082d"');
  t.equal(shellArg('Integrated Camera', 'win32'), '"Integrated Camera"');
});

/** What a POSIX shell makes of a word (no variables set). */
function shellParse(word: string): unknown[] {
  return shellQuote.parse(word, {});
}
