/**
 * A missing window program or sound output is reported with the platform's own way to get it
 * (window-sink.ts spawnError, gstreamerInstallHint; speaker-sink.ts speakerHint): it said
 * `sudo apt-get` on macOS and Windows too, and `--audio-output auto` ended there on pacat's hint. The errors are
 * built as a failed spawn builds them; the spawn itself (ENOENT) is exercised for real on Linux in
 * test/integration/window-sink.test.ts.
 */
import t from 'tap';
import { gstreamerInstallHint, spawnError } from '../../src/client/sinks/window-sink.js';
import { speakerHint } from '../../src/client/sinks/speaker-sink.js';
import { audioOutputOrder } from '../../src/cli/watch-command.js';

const enoent = Object.assign(new Error('spawn ffplay ENOENT'), { code: 'ENOENT' }) as NodeJS.ErrnoException;

t.test('ffplay missing: the FFmpeg package of each platform', async (t) => {
  const hints = { linux: 'sudo apt-get install ffmpeg', darwin: 'brew install ffmpeg', win32: 'winget install ffmpeg' } as const;
  for (const [platform, hint] of Object.entries(hints)) {
    const err = spawnError('ffplay', 'ffplay', enoent, platform as NodeJS.Platform);
    t.equal(err.code, 'LS_ERR_FFPLAY_NOT_FOUND', platform);
    t.match(err.message, `(e.g. ${hint})`, `${platform}: ${hint}`);
  }
});

t.test('gst-launch-1.0 missing: Debian packages on Linux, Homebrew on macOS, the installer on Windows', async (t) => {
  t.match(spawnError('gstreamer', 'gst-launch-1.0', enoent, 'linux').message, /sudo apt-get install gstreamer1\.0-tools/);
  t.match(gstreamerInstallHint('darwin'), /brew install gstreamer/);
  t.notMatch(gstreamerInstallHint('darwin'), /apt-get/);
  t.match(gstreamerInstallHint('win32'), /gstreamer\.freedesktop\.org\/download/);
  t.notMatch(gstreamerInstallHint('win32'), /apt-get/);
  t.equal(spawnError('gstreamer', 'gst-launch-1.0', enoent, 'win32').code, 'LS_ERR_GSTREAMER_NOT_FOUND');
});

t.test('the speaker package: ALSA headers on Linux, only the rebuild on macOS and Windows', async (t) => {
  t.match(speakerHint('linux'), /sudo apt-get install libasound2-dev && npm rebuild speaker/);
  for (const platform of ['darwin', 'win32'] as const) {
    t.match(speakerHint(platform), /npm rebuild speaker/, platform);
    t.notMatch(speakerHint(platform), /apt-get|libasound|pulseaudio/, `${platform}: no Linux packages`);
  }
});

t.test('--audio-output auto tries PulseAudio outputs only where PulseAudio is the sound server', async (t) => {
  t.same(audioOutputOrder('auto', 'linux'), ['audio-io', 'pulse', 'speaker', 'pacat']);
  t.same(audioOutputOrder('auto', 'darwin'), ['audio-io', 'speaker'], 'macOS: Core Audio through audio-io, then speaker');
  t.same(audioOutputOrder('auto', 'win32'), ['audio-io', 'speaker']);
  t.same(audioOutputOrder('pacat', 'darwin'), ['pacat'], 'asked for by name: tried anywhere');
});
