import t, { type Test } from 'tap';
import { mkdtempSync, symlinkSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { locateCompanion, locateFfmpeg, resolveExecutable } from '../../src/server/capture/ffmpeg-locate.js';
import { LanstreamError } from '../../src/shared/errors.js';

const realFfmpeg = (await resolveExecutable('ffmpeg', process.env))!;
const realDir = path.dirname(realFfmpeg);

/** A directory holding only an `ffmpeg` symlink (no ffplay/ffprobe next to it). */
function loneFfmpegDir(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ls-locate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(realFfmpeg, path.join(dir, 'ffmpeg'));
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<LanstreamError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LanstreamError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

t.test('finds ffmpeg on PATH and returns an absolute path', async (t) => {
  t.ok(path.isAbsolute(realFfmpeg));
  t.equal(await locateFfmpeg({ env: { PATH: `/nonexistent:${realDir}` } }), realFfmpeg);
});

t.test('--ffmpeg wins over LANSTREAM_FFMPEG and PATH', async (t) => {
  const dir = loneFfmpegDir(t);
  const override = path.join(dir, 'ffmpeg');
  t.equal(await locateFfmpeg({ override, env: { PATH: realDir, LANSTREAM_FFMPEG: '/nonexistent/ffmpeg' } }), override);
  t.equal(await locateFfmpeg({ env: { PATH: realDir, LANSTREAM_FFMPEG: override } }), override);
});

t.test('an explicit path that does not work is an error, not a silent fallback', async (t) => {
  const err = await rejection(locateFfmpeg({ override: '/nonexistent/ffmpeg', env: { PATH: realDir } }));
  t.equal(err.code, 'LS_ERR_FFMPEG_NOT_FOUND');
  t.match(err.message, /--ffmpeg \/nonexistent\/ffmpeg is not a runnable ffmpeg \(no such file\)/);
  const env = await rejection(locateFfmpeg({ env: { PATH: realDir, LANSTREAM_FFMPEG: '/bin/true' } }));
  t.match(env.message, /LANSTREAM_FFMPEG \/bin\/true is not a runnable ffmpeg/);

  // Something that runs but is not ffmpeg.
  const dir = mkdtempSync(path.join(tmpdir(), 'ls-locate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fake = path.join(dir, 'ffmpeg');
  writeFileSync(fake, '#!/bin/sh\necho "not the program you want"\n');
  chmodSync(fake, 0o755);
  const wrong = await rejection(locateFfmpeg({ override: fake }));
  t.match(wrong.message, /not ffmpeg/);
});

t.test('not found anywhere: one line with the install command for the platform', async (t) => {
  const hints = { linux: 'sudo apt-get install ffmpeg', darwin: 'brew install ffmpeg', win32: 'winget install ffmpeg' } as const;
  for (const [platform, hint] of Object.entries(hints)) {
    const err = await rejection(locateFfmpeg({ env: { PATH: '/nonexistent' }, platform: platform as NodeJS.Platform }));
    t.equal(err.code, 'LS_ERR_FFMPEG_NOT_FOUND');
    t.ok(err.message.includes(hint), `${platform}: ${err.message}`);
    t.match(err.message, /--ffmpeg/);
    t.notMatch(err.message, /\n/);
  }
});

t.test('companions: next to ffmpeg first, then PATH, else a coded error', async (t) => {
  t.equal(await locateCompanion('ffplay', realFfmpeg, { PATH: '' }), path.join(realDir, 'ffplay'));
  t.equal(await locateCompanion('ffprobe', realFfmpeg, { PATH: '' }), path.join(realDir, 'ffprobe'));
  const dir = loneFfmpegDir(t);
  const lone = path.join(dir, 'ffmpeg');
  t.equal(await locateCompanion('ffplay', lone, { PATH: realDir }), path.join(realDir, 'ffplay'), 'falls back to PATH');
  const noPlay = await rejection(locateCompanion('ffplay', lone, { PATH: '/nonexistent' }));
  t.equal(noPlay.code, 'LS_ERR_FFPLAY_NOT_FOUND');
  t.match(noPlay.message, /ffplay not found.*install it/);
  const noProbe = await rejection(locateCompanion('ffprobe', lone, { PATH: '/nonexistent' }));
  t.equal(noProbe.code, 'LS_ERR_FFMPEG_NOT_FOUND');
});
