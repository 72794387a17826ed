/**
 * e2e: `lanstream watch --snapshot` the way a cron job runs it — one picture, exit 0, nothing on
 * stdout, no window — and the usage errors a script must get before anything connects (exit 2, not
 * the "could not connect" 3 that the dead port used here would give).
 */
import t from 'tap';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { errorLines, runCli, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/process.js';

t.test('--snapshot writes the test picture and exits 0: PNG resized with --snapshot-size, JPEG at stream size', async (t) => {
  const srv = await startServe();
  t.teardown(() => srv.proc.destroy());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const png = path.join(dir, 'cam.png');
  const a = await runCli(['watch', srv.url, '--config-dir', srv.configDir, '--snapshot', png, '--snapshot-size', '320x180'], { timeoutMs: 15_000 });
  t.equal(a.code, 0, `exit 0 (${a.elapsedMs} ms)${a.code === 0 ? '' : `\n${a.stderr}`}`);
  t.equal(a.stdout, '', 'nothing on stdout');
  const meta = await sharp(png).metadata();
  t.same([meta.format, meta.width, meta.height], ['png', 320, 180], 'a 320x180 PNG');
  const stats = await sharp(png).stats();
  t.ok(
    stats.channels.slice(0, 3).every((c) => c.stdev > 20),
    `the test picture, not a uniform colour (stdev ${stats.channels.map((c) => c.stdev.toFixed(0)).join('/')})`,
  );

  const jpg = path.join(dir, 'cam.jpg');
  const b = await runCli(['watch', srv.url, '--config-dir', srv.configDir, '--snapshot', jpg], { timeoutMs: 15_000 });
  t.equal(b.code, 0, 'JPEG snapshot exits 0');
  const jmeta = await sharp(jpg).metadata();
  t.same([jmeta.format, jmeta.width, jmeta.height], ['jpeg', 640, 360], 'a JPEG at the served size (640x360)');
});

t.test('bad --snapshot / --record paths are usage errors (exit 2) before connecting', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'a-dir.mkv'));
  // An earlier recording: refused without --overwrite, and left as it was.
  const earlier = path.join(dir, 'earlier.mkv');
  await writeFile(earlier, 'an hour of video');
  const dead = `127.0.0.1:${await freePort()}`;
  const cases: [string, string[], RegExp][] = [
    ['snapshot with an unknown extension', ['--snapshot', path.join(dir, 'cam.gif')], /--snapshot.*\.jpg, \.jpeg or \.png/],
    ['snapshot into a missing directory', ['--snapshot', path.join(dir, 'nope', 'cam.jpg')], /--snapshot.*does not exist/],
    ['record into a missing directory', ['--record', path.join(dir, 'nope', 'rec.mkv')], /--record.*does not exist/],
    ['record onto a directory', ['--record', path.join(dir, 'a-dir.mkv')], /--record.*is a directory/],
    ['record into a non-Matroska name', ['--record', path.join(dir, 'rec.mp4')], /--record.*\.mkv/],
    ['record onto an earlier recording', ['--record', earlier], /--record: .*earlier\.mkv .*holds 16 bytes.*pass --overwrite to replace it/],
    ['overwrite without record', ['--overwrite'], /--overwrite.*with --record/],
    ['snapshot size without snapshot', ['--snapshot-size', '320x180'], /--snapshot-size/],
    // `--snapshot "$OUT"` with OUT unset: it used to become a plain watch (here exit 3; with a server, endless).
    ['snapshot with an empty name', ['--snapshot', ''], /--snapshot: '' .*shell variable unset/],
    ['record with an empty name', ['--record', ''], /--record: ''/],
    ['snapshot size empty', ['--snapshot', path.join(dir, 'cam.jpg'), '--snapshot-size', ''], /--snapshot-size: ''/],
    ['duration empty', ['--snapshot', path.join(dir, 'cam.jpg'), '--duration', ''], /--duration: ''/],
  ];
  for (const [what, args, message] of cases) {
    const r = await runCli(['watch', dead, '--key', 'k'.repeat(22), '--insecure', ...args], { timeoutMs: 10_000 });
    t.equal(r.code, 2, `${what}: exit 2`);
    t.match(errorLines(r.stderr).join('\n'), message, `${what}: the message names the flag and the fix`);
  }
  t.equal(await readFile(earlier, 'utf8'), 'an hour of video', 'the earlier recording is untouched');
});

t.test('--duration that ends before the picture: exit 1 (LS_ERR_SNAPSHOT_FAILED), not 0 with no file', async (t) => {
  const srv = await startServe({ args: ['--keep-warm'] });
  t.teardown(() => srv.proc.destroy());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const jpg = path.join(dir, 'cam.jpg');
  // The 3rd frame is ≥ 2 frame intervals (66 ms) after live: 1 ms always ends first.
  const r = await runCli(['watch', srv.url, '--config-dir', srv.configDir, '--snapshot', jpg, '--duration', '1ms'], { timeoutMs: 15_000 });
  t.equal(r.code, 1, 'exit 1');
  t.match(errorLines(r.stderr).join('\n'), /--duration 1ms ended before .*nothing was written.*\[LS_ERR_SNAPSHOT_FAILED\]/, 'the error says why');
  t.notOk(existsSync(jpg), 'no file');
});
