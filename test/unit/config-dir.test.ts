import t from 'tap';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { defaultConfigDir, ensurePrivateDir, readIfExists, writePrivateFile } from '../../src/shared/config-dir.js';
import { LanstreamError } from '../../src/shared/errors.js';

const posix = process.platform !== 'win32';

t.test('defaultConfigDir follows each platform convention', async (t) => {
  t.equal(defaultConfigDir('linux', {}, '/home/ada'), '/home/ada/.config/lanstream');
  t.equal(defaultConfigDir('linux', { XDG_CONFIG_HOME: '/xdg' }, '/home/ada'), '/xdg/lanstream');
  t.equal(defaultConfigDir('linux', { XDG_CONFIG_HOME: 'relative' }, '/home/ada'), '/home/ada/.config/lanstream', 'relative XDG ignored');
  t.equal(defaultConfigDir('linux', { XDG_CONFIG_HOME: '' }, '/home/ada'), '/home/ada/.config/lanstream');
  t.equal(defaultConfigDir('freebsd', {}, '/home/ada'), '/home/ada/.config/lanstream');
  t.equal(defaultConfigDir('darwin', { XDG_CONFIG_HOME: '/xdg' }, '/Users/ada'), '/Users/ada/Library/Application Support/lanstream');
  t.equal(defaultConfigDir('win32', { APPDATA: 'C:\\Users\\ada\\AppData\\Roaming' }, 'C:\\Users\\ada'), 'C:\\Users\\ada\\AppData\\Roaming\\lanstream');
  t.equal(defaultConfigDir('win32', {}, 'C:\\Users\\ada'), 'C:\\Users\\ada\\AppData\\Roaming\\lanstream');
});

t.test('ensurePrivateDir creates nested dirs and makes the leaf 0700', { skip: !posix && 'POSIX modes' }, async (t) => {
  const root = t.testdir();
  const dir = path.join(root, 'a', 'b', 'lanstream');
  await ensurePrivateDir(dir);
  t.equal((await fs.stat(dir)).mode & 0o777, 0o700);
  await fs.chmod(dir, 0o755);
  await ensurePrivateDir(dir);
  t.equal((await fs.stat(dir)).mode & 0o777, 0o700, 'an existing open dir is tightened');
});

t.test('ensurePrivateDir names the path when it cannot create it', async (t) => {
  const root = t.testdir({ file: 'not a dir' });
  const dir = path.join(root, 'file', 'sub');
  const err = await ensurePrivateDir(dir).catch((e: unknown) => e);
  t.type(err, LanstreamError);
  t.equal((err as LanstreamError).code, 'LS_ERR_CONFIG');
  t.match((err as Error).message, dir);
  t.notMatch((err as Error).message, '\n');
});

t.test('writePrivateFile writes 0600 atomically and replaces old content', async (t) => {
  const root = t.testdir({ 'old.txt': 'old' });
  const file = path.join(root, 'old.txt');
  await fs.chmod(file, 0o644);
  await writePrivateFile(file, 'new secret');
  t.equal(await fs.readFile(file, 'utf8'), 'new secret');
  if (posix) t.equal((await fs.stat(file)).mode & 0o777, 0o600);
  t.same((await fs.readdir(root)).sort(), ['old.txt'], 'no temp file left behind');
  await writePrivateFile(path.join(root, 'b.bin'), Buffer.from([1, 2, 3]));
  t.same(await fs.readFile(path.join(root, 'b.bin')), Buffer.from([1, 2, 3]));
});

t.test('writePrivateFile fails with a config error and leaves no temp file', async (t) => {
  const root = t.testdir({ sub: {} });
  const target = path.join(root, 'missing-dir', 'x');
  const err = await writePrivateFile(target, 'x').catch((e: unknown) => e);
  t.equal((err as LanstreamError).code, 'LS_ERR_CONFIG');
  t.match((err as Error).message, target);
  // Renaming onto a directory fails after the temp file exists: it must be cleaned up.
  const err2 = await writePrivateFile(path.join(root, 'sub'), 'x').catch((e: unknown) => e);
  t.equal((err2 as LanstreamError).code, 'LS_ERR_CONFIG');
  t.same(await fs.readdir(root), ['sub']);
});

t.test('readIfExists returns null only for a missing file', async (t) => {
  const root = t.testdir({ f: 'hello', d: {} });
  t.same(await readIfExists(path.join(root, 'f')), Buffer.from('hello'));
  t.equal(await readIfExists(path.join(root, 'nope')), null);
  const err = await readIfExists(path.join(root, 'd')).catch((e: unknown) => e);
  t.equal((err as LanstreamError).code, 'LS_ERR_CONFIG', 'a directory is an error, not "missing"');
});
