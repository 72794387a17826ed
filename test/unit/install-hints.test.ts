/**
 * A missing window program is reported with the platform's own install command (window-sink.ts
 * spawnError, gstreamerInstallHint): it said `sudo apt-get` on macOS and Windows too. The errors are
 * built as a failed spawn builds them; the spawn itself (ENOENT) is exercised for real on Linux in
 * test/integration/window-sink.test.ts.
 */
import t from 'tap';
import { gstreamerInstallHint, spawnError } from '../../src/client/sinks/window-sink.js';

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
