/**
 * Certificate fingerprints, the one thing a viewer trusts about a server: `serve` prints it in the
 * connect line, `watch` pins it (or remembers it in known hosts) and compares it after the TLS
 * handshake. One canonical form, "sha256:<64 lowercase hex>", so comparisons are plain string
 * equality; users may paste the colon-separated uppercase form browsers and openssl print.
 */
import { createHash } from 'node:crypto';
import { usageError } from './errors.js';

const PREFIX = 'sha256:';
const HEX64 = /^[0-9a-f]{64}$/;

/** SHA-256 of the DER certificate (what `openssl x509 -fingerprint -sha256` hashes). */
export function fingerprintOfDer(der: Buffer): string {
  return PREFIX + createHash('sha256').update(der).digest('hex');
}

/**
 * Accepts "sha256:ab…", "SHA256:AB:CD:…", or bare hex with or without colons; returns the canonical
 * form. Anything else is a usage error (the value usually comes from --fingerprint or a pasted URL).
 */
export function normalizeFingerprint(input: string, flag = '--fingerprint'): string {
  let s = input.trim().toLowerCase();
  if (s.startsWith(PREFIX)) s = s.slice(PREFIX.length);
  // Colons only between byte pairs, as openssl prints them; a stray colon is more likely a typo.
  if (s.includes(':')) {
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){31}$/.test(s)) throw invalid(input, flag);
    s = s.replaceAll(':', '');
  }
  if (!HEX64.test(s)) throw invalid(input, flag);
  return PREFIX + s;
}

function invalid(input: string, flag: string) {
  return usageError(flag, JSON.stringify(input), 'sha256:<64 hex digits>, as printed by `lanstream serve`');
}

/** True when both name the same certificate, whatever their spelling. Throws on a malformed one. */
export function fingerprintsEqual(a: string, b: string): boolean {
  return normalizeFingerprint(a) === normalizeFingerprint(b);
}
