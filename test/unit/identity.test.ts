import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { ACCESS_KEY_FILE, CERT_FILE, KEY_FILE, loadOrCreateIdentity } from '../../src/server/identity.js';
import { fingerprintOfDer } from '../../src/shared/fingerprint.js';

const posix = process.platform !== 'win32';
const modeOf = async (p: string) => (await fs.stat(p)).mode & 0o777;

t.test('first run creates cert, key and access key with private modes; second run loads them', async (t) => {
  const configDir = path.join(t.testdir(), 'cfg');
  const first = await loadOrCreateIdentity({ configDir });
  t.same(first.created, { cert: true, key: true });
  t.same(first.warnings, []);
  t.match(first.fingerprint, /^sha256:[0-9a-f]{64}$/);
  t.match(first.accessKey, /^[A-Za-z0-9_-]{22}$/, '128 bits as base64url');
  t.match(first.certPem, /^-----BEGIN CERTIFICATE-----\n/);
  t.match(first.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  t.same((await fs.readdir(configDir)).sort(), [ACCESS_KEY_FILE, CERT_FILE, KEY_FILE].sort());
  if (posix) {
    t.equal(await modeOf(configDir), 0o700, 'dir 0700');
    for (const f of [CERT_FILE, KEY_FILE, ACCESS_KEY_FILE]) t.equal(await modeOf(path.join(configDir, f)), 0o600, `${f} 0600`);
  }
  t.equal((await fs.readFile(path.join(configDir, ACCESS_KEY_FILE), 'utf8')).trim(), first.accessKey);

  const second = await loadOrCreateIdentity({ configDir });
  t.same(second.created, { cert: false, key: false });
  t.equal(second.fingerprint, first.fingerprint);
  t.equal(second.accessKey, first.accessKey);
  t.equal(second.certPem, first.certPem);
  t.equal(second.keyPem, first.keyPem);
});

t.test('two fresh identities differ', async (t) => {
  const root = t.testdir();
  const a = await loadOrCreateIdentity({ configDir: path.join(root, 'a') });
  const b = await loadOrCreateIdentity({ configDir: path.join(root, 'b') });
  t.not(a.fingerprint, b.fingerprint);
  t.not(a.accessKey, b.accessKey);
});

t.test('the certificate works for TLS and its fingerprint matches what Node computes', async (t) => {
  const id = await loadOrCreateIdentity({ configDir: t.testdir(), commonName: 'cam-host' });
  t.doesNotThrow(() => tls.createSecureContext({ cert: id.certPem, key: id.keyPem, minVersion: 'TLSv1.3' }));
  const cert = new X509Certificate(id.certPem);
  t.equal(fingerprintOfDer(cert.raw), id.fingerprint);
  t.equal('sha256:' + cert.fingerprint256.replaceAll(':', '').toLowerCase(), id.fingerprint, "same as Node's own fingerprint256");
  t.match(cert.subject, /CN=cam-host/);
  t.match(cert.subjectAltName, /DNS:lanstream/);
  t.equal(cert.publicKey.asymmetricKeyType, 'ec');
  t.equal(cert.ca, false);
  const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000);
  t.ok(years > 9.9 && years < 10.1, `valid ~10 years (${years.toFixed(2)})`);
  t.ok(cert.verify(cert.publicKey), 'self-signed');
});

t.test('newKey rotates the access key and keeps the certificate', async (t) => {
  const configDir = t.testdir();
  const first = await loadOrCreateIdentity({ configDir });
  const rotated = await loadOrCreateIdentity({ configDir, newKey: true });
  t.same(rotated.created, { cert: false, key: true });
  t.not(rotated.accessKey, first.accessKey);
  t.equal(rotated.fingerprint, first.fingerprint);
  const after = await loadOrCreateIdentity({ configDir });
  t.equal(after.accessKey, rotated.accessKey, 'the new key is saved');
});

t.test('an explicit key is used, validated and never written', async (t) => {
  const root = t.testdir();
  const configDir = path.join(root, 'cfg');
  const saved = await loadOrCreateIdentity({ configDir });
  const explicit = 'my-own-key_0123456789';
  const id = await loadOrCreateIdentity({ configDir, key: explicit });
  t.equal(id.accessKey, explicit);
  t.equal(id.created.key, false);
  t.equal((await fs.readFile(path.join(configDir, ACCESS_KEY_FILE), 'utf8')).trim(), saved.accessKey, 'saved key untouched');

  const fresh = path.join(root, 'fresh');
  await loadOrCreateIdentity({ configDir: fresh, key: explicit });
  t.same((await fs.readdir(fresh)).sort(), [CERT_FILE, KEY_FILE].sort(), 'no access-key file made for an explicit key');

  for (const bad of ['short', 'has spaces in it!!', 'plus+plus+plus+plus', '']) {
    await t.rejects(loadOrCreateIdentity({ configDir, key: bad }), { code: 'LS_ERR_USAGE', message: /--key/ }, JSON.stringify(bad));
  }
  await t.rejects(loadOrCreateIdentity({ configDir, key: explicit, newKey: true }), { code: 'LS_ERR_USAGE', message: /--new-key/ });
});

t.test('files readable by others are fixed to 0600 and reported', { skip: !posix && 'POSIX modes' }, async (t) => {
  const configDir = t.testdir();
  await loadOrCreateIdentity({ configDir });
  const keyFile = path.join(configDir, KEY_FILE);
  const accessFile = path.join(configDir, ACCESS_KEY_FILE);
  await fs.chmod(keyFile, 0o644);
  await fs.chmod(accessFile, 0o640);
  await fs.chmod(configDir, 0o755);
  const id = await loadOrCreateIdentity({ configDir });
  t.equal(await modeOf(keyFile), 0o600);
  t.equal(await modeOf(accessFile), 0o600);
  t.equal(await modeOf(configDir), 0o700);
  t.equal(id.warnings.length, 2, id.warnings.join(' | '));
  t.match(id.warnings.join('\n'), /key\.pem was readable by other users \(mode 0644\); changed it to 0600/);
  t.match(id.warnings.join('\n'), /access-key was readable by other users \(mode 0640\).*--new-key/);
  const again = await loadOrCreateIdentity({ configDir });
  t.same(again.warnings, [], 'quiet once fixed');
});

t.test('broken files give a config error that names the file and the fix', async (t) => {
  const root = t.testdir();
  const configDir = path.join(root, 'cfg');
  await loadOrCreateIdentity({ configDir });
  const accessFile = path.join(configDir, ACCESS_KEY_FILE);
  await fs.writeFile(accessFile, 'bad key\n', { mode: 0o600 });
  await t.rejects(loadOrCreateIdentity({ configDir }), { code: 'LS_ERR_CONFIG', message: /access-key.*--new-key/ });
  const fixed = await loadOrCreateIdentity({ configDir, newKey: true });
  t.match(fixed.accessKey, /^[A-Za-z0-9_-]{22}$/, '--new-key recovers');

  const certFile = path.join(configDir, CERT_FILE);
  await fs.writeFile(certFile, 'garbage', { mode: 0o600 });
  await t.rejects(loadOrCreateIdentity({ configDir }), { code: 'LS_ERR_CONFIG', message: /cert\.pem is not a valid PEM certificate: delete/ });

  // A certificate whose key is someone else's.
  const other = await loadOrCreateIdentity({ configDir: path.join(root, 'other') });
  await fs.writeFile(certFile, other.certPem, { mode: 0o600 });
  await t.rejects(loadOrCreateIdentity({ configDir }), { code: 'LS_ERR_CONFIG', message: /key\.pem does not belong to .*cert\.pem/ });
});

t.test('a lone key.pem (crash between writes) is replaced by a new pair, with a warning', async (t) => {
  const configDir = t.testdir();
  const first = await loadOrCreateIdentity({ configDir });
  await fs.rm(path.join(configDir, CERT_FILE));
  const id = await loadOrCreateIdentity({ configDir });
  t.equal(id.created.cert, true);
  t.not(id.fingerprint, first.fingerprint);
  t.equal(id.accessKey, first.accessKey, 'access key kept');
  t.match(id.warnings[0], /new fingerprint/);
  t.doesNotThrow(() => tls.createSecureContext({ cert: id.certPem, key: id.keyPem }));
});

t.test('an unusable config dir is a config error', async (t) => {
  const root = t.testdir({ blocker: 'a file' });
  await t.rejects(loadOrCreateIdentity({ configDir: path.join(root, 'blocker', 'cfg') }), { code: 'LS_ERR_CONFIG', message: /blocker/ });
});
