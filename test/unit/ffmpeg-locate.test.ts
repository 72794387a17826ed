import t, { type Test } from 'tap';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
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

t.test('PATH lookup takes regular files only: a directory named ffplay earlier on PATH is passed over', async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'ls-which-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  mkdirSync(path.join(base, 'a', 'ffplay'), { recursive: true }); // has the x bit, as directories do
  mkdirSync(path.join(base, 'b'));
  writeFileSync(path.join(base, 'b', 'ffplay'), '#!/bin/sh\n');
  chmodSync(path.join(base, 'b', 'ffplay'), 0o755);
  const PATH = [path.join(base, 'a'), path.join(base, 'b')].join(':');
  t.equal(await resolveExecutable('ffplay', { PATH }, 'linux'), path.join(base, 'b', 'ffplay'));
});

t.test('Windows PATH lookup: .exe first, never the bare name, never a .cmd or .bat (spawn cannot run those)', async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'ls-which-win-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  for (const d of ['bare', 'cmd', 'exe']) mkdirSync(path.join(base, d));
  writeFileSync(path.join(base, 'bare', 'ffplay'), ''); // no extension: no program on Windows
  writeFileSync(path.join(base, 'cmd', 'ffplay.cmd'), '@echo off\n');
  writeFileSync(path.join(base, 'exe', 'ffplay.exe'), '');
  const dirs = ['bare', 'cmd', 'exe'].map((d) => path.join(base, d));
  const env = { Path: dirs.join(';'), PATHEXT: '.CMD;.BAT;.EXE' };
  t.equal(await resolveExecutable('ffplay', env, 'win32'), path.join(base, 'exe', 'ffplay.exe'), 'the .exe, though PATHEXT and PATH put others first');
  t.equal(await resolveExecutable('ffplay', { Path: dirs.slice(0, 2).join(';') }, 'win32'), null, 'only a bare file and a .cmd: none');
});
