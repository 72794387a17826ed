/**
 * Trust on first use for viewers that connect without a pinned fingerprint (`watch host` instead of
 * the full connect line): the first certificate seen for host:port is remembered, and a different one
 * later is refused, like SSH's known_hosts. Meant to be consulted right after the TLS handshake and
 * before HELLO, so an impostor gets nothing, not even a proof of the key.
 *
 * File format, one server per line: `host:port sha256:<hex>`. Lines starting with "#" and blank
 * lines are kept as they are; a line that does not parse is ignored when reading and kept when
 * writing (the user may have typed it, and we do not destroy what we do not understand).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PRIVATE_DIR_MODE, readIfExists, writePrivateFile } from '../shared/config-dir.js';
import { LanstreamError } from '../shared/errors.js';
import { normalizeFingerprint } from '../shared/fingerprint.js';

export const KNOWN_HOSTS_FILE = 'known-hosts';

export type KnownHostCheck = { status: 'match' } | { status: 'new' } | { status: 'changed'; known: string };

interface ParsedLine {
  text: string;
  entry: { hostPort: string; fingerprint: string } | null;
}

export class KnownHosts {
  readonly path: string;

  constructor(filePath: string) {
    this.path = filePath;
  }

  async lookup(hostPort: string): Promise<string | null> {
    const key = normalizeHostPort(hostPort);
    const lines = await this.#read();
    // The last line wins, matching what remember() would have replaced.
    let found: string | null = null;
    for (const line of lines) if (line.entry?.hostPort === key) found = line.entry.fingerprint;
    return found;
  }

  async check(hostPort: string, fingerprint: string): Promise<KnownHostCheck> {
    const seen = normalizeFingerprint(fingerprint);
    const known = await this.lookup(hostPort);
    if (known === null) return { status: 'new' };
    return known === seen ? { status: 'match' } : { status: 'changed', known };
  }

  /** Adds or replaces the line for hostPort; the file is rewritten atomically with mode 0600. */
  async remember(hostPort: string, fingerprint: string): Promise<void> {
    const key = normalizeHostPort(hostPort);
    const fp = normalizeFingerprint(fingerprint);
    const lines = await this.#read();
    const kept = lines.filter((line) => line.entry?.hostPort !== key).map((line) => line.text);
    while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
    kept.push(`${key} ${fp}`);
    // Not ensurePrivateDir: the path may be user-chosen, and chmod-ing an existing parent is not ours to do.
    try {
      await fs.mkdir(path.dirname(this.path), { recursive: true, mode: PRIVATE_DIR_MODE });
    } catch (err) {
      throw new LanstreamError('LS_ERR_CONFIG', `Cannot create the directory of ${this.path}: check its permissions`, {
        cause: err,
        details: { path: this.path },
      });
    }
    await writePrivateFile(this.path, kept.join('\n') + '\n');
  }

  async #read(): Promise<ParsedLine[]> {
    const buf = await readIfExists(this.path);
    if (!buf) return [];
    return buf
      .toString('utf8')
      .split(/\r?\n/)
      .map((text) => ({ text, entry: parseLine(text) }));
  }
}

function parseLine(text: string): ParsedLine['entry'] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return null;
  const fields = trimmed.split(/\s+/);
  if (fields.length < 2 || !fields[0] || !fields[1]) return null;
  try {
    return { hostPort: normalizeHostPort(fields[0]), fingerprint: normalizeFingerprint(fields[1]) };
  } catch {
    return null;
  }
}

/** Host names are case-insensitive; "Cam.Local:8443" and "cam.local:8443" are one server. */
function normalizeHostPort(hostPort: string): string {
  return hostPort.trim().toLowerCase();
}

export function fingerprintChangedError(hostPort: string, known: string, seen: string, knownHostsPath: string): LanstreamError {
  return new LanstreamError(
    'LS_ERR_FINGERPRINT_MISMATCH',
    `The server certificate for ${hostPort} changed from ${known} to ${seen}; this could be a man in the middle. ` +
      `If you expect the change (the server got a new certificate), run the same watch command once with --fingerprint ${seen} added ` +
      `(that updates ${knownHostsPath}), or remove the line for ${hostPort} from it`,
    { details: { hostPort, known, seen, knownHostsPath } },
  );
}
