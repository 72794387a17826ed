/**
 * One recorder per file: checkRecordTarget claims the target (claimRecordFile, a `<file>.lock`
 * directory kept fresh by proper-lockfile) until release(), so a second recorder given the same name
 * is refused before anything starts, also when the file is empty or absent (the cases the size check
 * let through). Real files in a temp directory.
 */
import t, { type Test } from 'tap';
import { mkdir, mkdtemp, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkRecordTarget, claimRecordFile } from '../../src/client/sinks/recorder-sink.js';
import { LanstreamError } from '../../src/shared/errors.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-claim-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

t.test('a second claim on one file is a usage error naming the lock; released, the file can be claimed again', async (t) => {
  const file = path.join(await tempDir(t), 'rec.mkv');
  for (const before of [null, ''] as const) {
    if (before !== null) await writeFile(file, before);
    const first = await checkRecordTarget('--record', file, false);
    t.equal(first.replace, before !== null, `${before === null ? 'no file' : 'an empty file'}: replace ${before !== null}`);
    t.ok(await exists(`${file}.lock`), 'the claim is on disk while held');
    const second = await checkRecordTarget('--record', file, true).then(
      () => null,
      (err: unknown) => err,
    );
    t.type(second, LanstreamError);
    t.equal((second as LanstreamError).code, 'LS_ERR_USAGE', 'exit 2 class');
    t.match(
      (second as Error).message,
      /another lanstream records to it \(it holds .*rec\.mkv\.lock, or one killed less than 10 s ago did\); record to another name/,
      'says why and what to do',
    );
    await first.release();
    await first.release(); // idempotent
    t.notOk(await exists(`${file}.lock`), 'released: the lock is gone');
    const third = await checkRecordTarget('--record', file, false);
    await third.release();
  }
});

t.test('two spellings of one path (a symlinked directory) are one claim', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'real'));
  await symlink(path.join(dir, 'real'), path.join(dir, 'link'));
  const release = await claimRecordFile('--record', path.join(dir, 'real', 'rec.mkv'));
  t.teardown(release);
  await t.rejects(claimRecordFile('--record', path.join(dir, 'link', 'rec.mkv')), /another lanstream records to it/);
  await t.rejects(claimRecordFile('--record', path.join(dir, 'real', '.', 'rec.mkv')), /another lanstream records to it/);
});

t.test('a claim left by a killed recorder (not refreshed for longer than the stale time) is taken over', async (t) => {
  const file = path.join(await tempDir(t), 'rec.mkv');
  // What a recorder killed with -9 leaves: the lock directory, no longer refreshed.
  await mkdir(`${file}.lock`);
  const old = new Date(Date.now() - 60_000);
  await utimes(`${file}.lock`, old, old);
  const release = await claimRecordFile('--record', file, 5_000);
  t.ok(await exists(`${file}.lock`), 'taken over');
  await release();
  // A fresh one (refreshed just now) is not.
  await mkdir(`${file}.lock`);
  await t.rejects(claimRecordFile('--record', file, 5_000), /another lanstream records to it/);
});

t.test('a refused target gives its claim back (an earlier recording without --overwrite)', async (t) => {
  const file = path.join(await tempDir(t), 'rec.mkv');
  await writeFile(file, 'an earlier recording');
  await t.rejects(checkRecordTarget('--record', file, false), /pass --overwrite to replace it/);
  t.notOk(await exists(`${file}.lock`), 'no claim left behind');
  const again = await checkRecordTarget('--record', file, true);
  t.equal(again.replace, true, '--overwrite: replace');
  await again.release();
});

t.test('a missing directory is the usual usage error, found before any claim', async (t) => {
  await t.rejects(checkRecordTarget('--record', path.join(await tempDir(t), 'missing', 'rec.mkv'), false), /a file in an existing, writable directory/);
});
