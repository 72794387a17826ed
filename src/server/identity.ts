/**
 * The server's identity: a self-signed certificate (what viewers pin) and the access key (what
 * viewers prove they know). Created on the first `serve`, kept in the config dir with mode 0600 and
 * loaded on every later run, so the connect line a user saved keeps working. Called once by
 * serve.ts before the TLS listener starts.
 *
 * Files: cert.pem (ECDSA P-256 certificate), key.pem (its PKCS#8 private key), access-key (22
 * base64url characters = 128 random bits, one line). The certificate lives 10 years: nobody checks
 * names or dates here, the viewer pins the SHA-256 fingerprint instead, so a shorter life would only
 * force users to re-accept a new fingerprint for no gain.
 */
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, PRIVATE_FILE_MODE, readIfExists, writePrivateFile } from '../shared/config-dir.js';
import { checkAccessKey } from '../shared/connect-url.js';
import { LanstreamError, usageError } from '../shared/errors.js';
import { fingerprintOfDer } from '../shared/fingerprint.js';

export const CERT_FILE = 'cert.pem';
export const KEY_FILE = 'key.pem';
export const ACCESS_KEY_FILE = 'access-key';
const ACCESS_KEY_BYTES = 16;
const CERT_VALIDITY_MS = 10 * 365.25 * 24 * 3600 * 1000;
const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface IdentityOptions {
  configDir: string;
  /** Replace the saved access key with a fresh one (`serve --new-key`); the certificate stays. */
  newKey?: boolean;
  /** Explicit key (--key / LANSTREAM_KEY): used for this run, never written to disk. */
  key?: string;
  commonName?: string;
}

export interface Identity {
  certPem: string;
  keyPem: string;
  /** "sha256:<64 lowercase hex>" of the DER certificate. */
  fingerprint: string;
  accessKey: string;
  created: { cert: boolean; key: boolean };
  /** One line each, for the log: permissions fixed, certificate replaced, etc. */
  warnings: string[];
  paths: { cert: string; key: string; accessKey: string };
}

export function generateAccessKey(): string {
  return randomBytes(ACCESS_KEY_BYTES).toString('base64url');
}

export async function loadOrCreateIdentity(opts: IdentityOptions): Promise<Identity> {
  if (opts.key !== undefined && opts.newKey) {
    throw usageError('--new-key', 'together with --key', 'one of them: --new-key saves a fresh key, --key uses yours');
  }
  if (opts.key !== undefined) checkAccessKey(opts.key);
  const paths = {
    cert: path.join(opts.configDir, CERT_FILE),
    key: path.join(opts.configDir, KEY_FILE),
    accessKey: path.join(opts.configDir, ACCESS_KEY_FILE),
  };
  const warnings: string[] = [];
  await ensurePrivateDir(opts.configDir);

  const tls = await loadOrCreateCertificate(paths, opts.commonName ?? 'lanstream', warnings);
  const access = await loadOrCreateAccessKey(paths.accessKey, opts, warnings);
  return {
    certPem: tls.certPem,
    keyPem: tls.keyPem,
    fingerprint: tls.fingerprint,
    accessKey: access.accessKey,
    created: { cert: tls.created, key: access.created },
    warnings,
    paths,
  };
}

async function loadOrCreateCertificate(
  paths: Identity['paths'],
  commonName: string,
  warnings: string[],
): Promise<{ certPem: string; keyPem: string; fingerprint: string; created: boolean }> {
  const renew = `; if other people use this machine, delete ${paths.cert} and ${paths.key} so the next run makes new ones`;
  await tightenMode(paths.key, warnings, renew);
  await tightenMode(paths.cert, warnings, '');
  const [certBuf, keyBuf] = await Promise.all([readIfExists(paths.cert), readIfExists(paths.key)]);
  if (certBuf && keyBuf) {
    const certPem = certBuf.toString('utf8');
    const keyPem = keyBuf.toString('utf8');
    return { certPem, keyPem, fingerprint: checkPair(certPem, keyPem, paths, warnings), created: false };
  }
  if (certBuf || keyBuf) {
    const [present, missing] = certBuf ? [paths.cert, paths.key] : [paths.key, paths.cert];
    warnings.push(`${present} was there without ${missing}; created a new certificate, so viewers will see a new fingerprint`);
  }
  const made = await createCertificate(commonName);
  // Key first: a crash between the two writes leaves a key without a certificate, which the next
  // run replaces (above), rather than a certificate whose key is gone.
  await writePrivateFile(paths.key, made.keyPem);
  await writePrivateFile(paths.cert, made.certPem);
  return { ...made, created: true };
}

function checkPair(certPem: string, keyPem: string, paths: Identity['paths'], warnings: string[]): string {
  const fix = `delete ${paths.cert} and ${paths.key} to create a new certificate (viewers will have to accept its new fingerprint)`;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new LanstreamError('LS_ERR_CONFIG', `${paths.cert} is not a valid PEM certificate: ${fix}`, { cause: err, details: { path: paths.cert } });
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (err) {
    throw new LanstreamError('LS_ERR_CONFIG', `${paths.key} is not a valid PEM private key: ${fix}`, { cause: err, details: { path: paths.key } });
  }
  if (!matches) {
    throw new LanstreamError('LS_ERR_CONFIG', `${paths.key} does not belong to ${paths.cert}: ${fix}`, { details: { path: paths.key } });
  }
  if (Date.parse(cert.validTo) < Date.now()) {
    warnings.push(`${paths.cert} expired on ${cert.validTo}; viewers pin its fingerprint so it still works, but ${fix}`);
  }
  return fingerprintOfDer(cert.raw);
}

/**
 * Loaded only when a certificate is made: importing @peculiar/x509 (and the tsyringe/reflect-metadata
 * it needs) measured 130–150 ms, which every later `serve` start would otherwise pay for nothing.
 */
async function loadX509(): Promise<typeof import('@peculiar/x509')> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  // The cast bridges Node's webcrypto type and the DOM `Crypto` the library declares; same object at run time.
  x509.cryptoProvider.set(webcrypto as unknown as typeof globalThis.crypto);
  return x509;
}

async function createCertificate(commonName: string): Promise<{ certPem: string; keyPem: string; fingerprint: string }> {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // DER INTEGER must stay positive
  const nowMs = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [commonName] }],
    // An hour back covers a viewer whose clock runs a little behind, should anything check dates.
    notBefore: new Date(nowMs - 3600_000),
    notAfter: new Date(nowMs + CERT_VALIDITY_MS),
    signingAlgorithm: EC_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'lanstream' }]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n',
    fingerprint: fingerprintOfDer(Buffer.from(cert.rawData)),
  };
}

async function loadOrCreateAccessKey(file: string, opts: IdentityOptions, warnings: string[]): Promise<{ accessKey: string; created: boolean }> {
  if (opts.key !== undefined) return { accessKey: opts.key, created: false };
  if (!opts.newKey) {
    await tightenMode(file, warnings, '; if other people use this machine, rotate it with `lanstream serve --new-key`');
    const saved = await readIfExists(file);
    if (saved) {
      const accessKey = saved.toString('utf8').trim();
      try {
        return { accessKey: checkAccessKey(accessKey), created: false };
      } catch (err) {
        throw new LanstreamError('LS_ERR_CONFIG', `${file} does not hold a valid access key: run \`lanstream serve --new-key\` to replace it`, {
          cause: err,
          details: { path: file },
        });
      }
    }
  }
  const accessKey = generateAccessKey();
  await writePrivateFile(file, accessKey + '\n');
  return { accessKey, created: true };
}

/** A key file readable by group/others is fixed to 0600 and reported (not fatal: the user may not know). */
async function tightenMode(file: string, warnings: string[], advice: string): Promise<void> {
  if (process.platform === 'win32') return; // NTFS ACLs; POSIX bits mean nothing there.
  let mode: number;
  try {
    mode = (await fs.stat(file)).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new LanstreamError('LS_ERR_CONFIG', `Cannot check ${file}: check its permissions`, { cause: err, details: { path: file } });
  }
  if ((mode & 0o077) === 0) return;
  try {
    await fs.chmod(file, PRIVATE_FILE_MODE);
  } catch (err) {
    throw new LanstreamError(
      'LS_ERR_CONFIG',
      `${file} is readable by other users (mode ${mode.toString(8)}) and cannot be changed to 0600: fix its owner or permissions`,
      {
        cause: err,
        details: { path: file },
      },
    );
  }
  warnings.push(`${file} was readable by other users (mode 0${mode.toString(8)}); changed it to 0600${advice}`);
}
