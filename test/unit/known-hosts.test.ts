import t from 'tap';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KnownHosts, fingerprintChangedError } from '../../src/client/known-hosts.js';

const FP_A = 'sha256:' + 'aa'.repeat(32);
const FP_B = 'sha256:' + 'bb'.repeat(32);
const FP_C = 'sha256:' + 'cc'.repeat(32);

t.test('trust on first use: new, then match, then changed', async (t) => {
  const file = path.join(t.testdir(), 'deep', 'dir', 'known-hosts');
  const kh = new KnownHosts(file);
  t.equal(await kh.lookup('cam:8443'), null, 'missing file is an empty list');
  t.same(await kh.check('cam:8443', FP_A), { status: 'new' });
  await kh.remember('cam:8443', FP_A);
  t.same(await kh.check('cam:8443', FP_A), { status: 'match' });
  t.same(await kh.check('CAM:8443', 'AA:'.repeat(31) + 'AA'), { status: 'match' }, 'host case and fingerprint spelling do not matter');
  t.same(await kh.check('cam:8443', FP_B), { status: 'changed', known: FP_A });
  t.same(await kh.check('cam:9443', FP_B), { status: 'new' }, 'per host:port');
  t.equal(await fs.readFile(file, 'utf8'), `cam:8443 ${FP_A}\n`);
  if (process.platform !== 'win32') t.equal((await fs.stat(file)).mode & 0o777, 0o600);
});

t.test('remember replaces the line for that host and keeps everything else', async (t) => {
  const original = [
    '# lanstream known hosts',
    '',
    `cam:8443 ${FP_A}`,
    'this line is not understood',
    `[fd00::2]:8443   ${FP_B}   # trailing words ignored`,
    `other:1 ${FP_C}`,
  ].join('\n');
  const root = t.testdir({ 'known-hosts': original });
  const file = path.join(root, 'known-hosts');
  const kh = new KnownHosts(file);
  t.equal(await kh.lookup('[fd00::2]:8443'), FP_B, 'whitespace-tolerant');
  t.equal(await kh.lookup('this'), null, 'junk line ignored');
  await kh.remember('cam:8443', FP_C);
  await kh.remember('new:1', FP_A);
  t.equal(
    await fs.readFile(file, 'utf8'),
    [
      '# lanstream known hosts',
      '',
      'this line is not understood',
      `[fd00::2]:8443   ${FP_B}   # trailing words ignored`,
      `other:1 ${FP_C}`,
      `cam:8443 ${FP_C}`,
      `new:1 ${FP_A}`,
      '',
    ].join('\n'),
  );
  t.equal(await kh.lookup('cam:8443'), FP_C);
  t.same((await fs.readdir(root)).sort(), ['known-hosts'], 'no temp files left');
});

t.test('duplicate lines: the last wins, and remember collapses them', async (t) => {
  const root = t.testdir({ 'known-hosts': `cam:1 ${FP_A}\r\ncam:1 ${FP_B}\r\n` });
  const kh = new KnownHosts(path.join(root, 'known-hosts'));
  t.equal(await kh.lookup('cam:1'), FP_B);
  await kh.remember('cam:1', FP_C);
  t.equal(await fs.readFile(path.join(root, 'known-hosts'), 'utf8'), `cam:1 ${FP_C}\n`);
});

t.test('a malformed fingerprint is refused before anything is written', async (t) => {
  const root = t.testdir();
  const kh = new KnownHosts(path.join(root, 'known-hosts'));
  await t.rejects(kh.remember('cam:1', 'nope'), { code: 'LS_ERR_USAGE' });
  await t.rejects(kh.check('cam:1', 'nope'), { code: 'LS_ERR_USAGE' });
  t.same(await fs.readdir(root), []);
});

t.test('an unreadable path is a config error naming it', async (t) => {
  const root = t.testdir({ 'known-hosts': {} });
  const kh = new KnownHosts(path.join(root, 'known-hosts'));
  await t.rejects(kh.lookup('cam:1'), { code: 'LS_ERR_CONFIG', message: /known-hosts/ });
});

t.test('fingerprintChangedError says what changed and how to accept it', async (t) => {
  const err = fingerprintChangedError('cam:8443', FP_A, FP_B, '/home/ada/.config/lanstream/known-hosts');
  t.equal(err.code, 'LS_ERR_FINGERPRINT_MISMATCH');
  t.equal(err.kind, 'auth');
  t.notMatch(err.message, '\n', 'one line');
  t.match(err.message, `cam:8443 changed from ${FP_A} to ${FP_B}`);
  t.match(err.message, /man in the middle/);
  t.match(err.message, `run the same watch command once with --fingerprint ${FP_B} added (that updates /home/ada/.config/lanstream/known-hosts)`);
  t.match(err.message, '/home/ada/.config/lanstream/known-hosts');
  t.same(err.details, { hostPort: 'cam:8443', known: FP_A, seen: FP_B, knownHostsPath: '/home/ada/.config/lanstream/known-hosts' });
});
