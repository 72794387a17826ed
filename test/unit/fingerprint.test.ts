import t from 'tap';
import { createHash } from 'node:crypto';
import { fingerprintOfDer, fingerprintsEqual, normalizeFingerprint } from '../../src/shared/fingerprint.js';
import { LanstreamError } from '../../src/shared/errors.js';

const der = Buffer.from('not really a certificate, but bytes are bytes');
const hex = createHash('sha256').update(der).digest('hex');
const colonUpper = hex.toUpperCase().match(/../g)!.join(':');

t.test('fingerprintOfDer is sha256: + lowercase hex of the bytes', async (t) => {
  const fp = fingerprintOfDer(der);
  t.equal(fp, `sha256:${hex}`);
  t.match(fp, /^sha256:[0-9a-f]{64}$/);
  t.not(fingerprintOfDer(Buffer.concat([der, Buffer.from([0])])), fp, 'one more byte, another fingerprint');
});

t.test('normalizeFingerprint accepts the spellings users paste', async (t) => {
  const canonical = `sha256:${hex}`;
  for (const input of [canonical, hex, hex.toUpperCase(), colonUpper, `SHA256:${colonUpper}`, `sha256:${colonUpper.toLowerCase()}`, `  ${canonical}\n`]) {
    t.equal(normalizeFingerprint(input), canonical, JSON.stringify(input));
  }
});

t.test('normalizeFingerprint rejects malformed values with a usage error naming them', async (t) => {
  const bad = [
    '',
    'sha256:',
    hex.slice(0, 63),
    hex + '0',
    'sha1:' + hex,
    'md5:' + hex,
    hex.slice(0, 62) + 'zz',
    colonUpper.replace(':', '::'),
    colonUpper.slice(0, -1) + ':' + colonUpper.slice(-1), // colon in the wrong place
    `sha256:sha256:${hex}`,
    `${hex} ${hex}`,
  ];
  for (const input of bad) {
    t.throws(() => normalizeFingerprint(input), { code: 'LS_ERR_USAGE' }, JSON.stringify(input));
  }
  const err = (() => {
    try {
      normalizeFingerprint('abc', '--fingerprint');
    } catch (e) {
      return e as LanstreamError;
    }
    return null;
  })();
  t.match(err?.message, /--fingerprint.*"abc".*sha256:<64 hex digits>/);
});

t.test('fingerprintsEqual compares across spellings', async (t) => {
  t.ok(fingerprintsEqual(`sha256:${hex}`, colonUpper));
  t.notOk(fingerprintsEqual(`sha256:${hex}`, fingerprintOfDer(Buffer.from('other'))));
  t.throws(() => fingerprintsEqual('junk', hex), { code: 'LS_ERR_USAGE' });
});
