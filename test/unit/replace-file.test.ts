/**
 * replace-file.ts: the rename at the end of each atomic write is tried again on Windows while the
 * target is held open (EPERM / EACCES / EBUSY) for up to a second, and fails at once elsewhere or
 * for any other error. Real files in a temp dir; the refusals are injected, since a Windows sharing
 * violation cannot happen here.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { replaceFile } from '../../src/shared/replace-file.js';

function files(t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ls-replace-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const to = path.join(dir, 'door.jpg');
  const from = path.join(dir, '.door.jpg.tmp');
  writeFileSync(to, 'old');
  writeFileSync(from, 'new');
  return { from, to };
}

const refusing = (times: number, code = 'EPERM') => {
  let calls = 0;
  return {
    calls: () => calls,
    rename: async (a: string, b: string) => {
      if (calls++ < times) throw Object.assign(new Error(`${code}: operation not permitted, rename`), { code });
      await rename(a, b);
    },
  };
};
const noWait = async () => undefined;

t.test('Windows: a target held open for a moment is replaced once it is let go', async (t) => {
  const { from, to } = files(t);
  const r = refusing(3);
  await replaceFile(from, to, { platform: 'win32', rename: r.rename, sleep: noWait });
  t.equal(r.calls(), 4, 'three refusals, then done');
  t.equal(readFileSync(to, 'utf8'), 'new');
});

t.test('Windows: held for longer than the retry time: the error of the last try', async (t) => {
  const { from, to } = files(t);
  const r = refusing(Infinity, 'EBUSY');
  await t.rejects(replaceFile(from, to, { platform: 'win32', rename: r.rename, retryMs: 50 }), { code: 'EBUSY' });
  t.ok(r.calls() > 1, `tried ${r.calls()} times in 50 ms`);
  t.equal(readFileSync(to, 'utf8'), 'old', 'the target is untouched');
});

t.test('other errors, and every error elsewhere, fail at once', async (t) => {
  const { from, to } = files(t);
  const enospc = refusing(1, 'ENOSPC');
  await t.rejects(replaceFile(from, to, { platform: 'win32', rename: enospc.rename, sleep: noWait }), { code: 'ENOSPC' });
  t.equal(enospc.calls(), 1);
  const eperm = refusing(1);
  await t.rejects(replaceFile(from, to, { platform: 'linux', rename: eperm.rename, sleep: noWait }), { code: 'EPERM' });
  t.equal(eperm.calls(), 1, 'Linux: a rename over an open file works, so a refusal is final');
  await replaceFile(from, to, { platform: 'linux' });
  t.equal(readFileSync(to, 'utf8'), 'new', 'the real rename');
});
