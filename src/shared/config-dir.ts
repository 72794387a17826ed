/**
 * Where lanstream keeps its secrets (certificate, private key, access key, known hosts) and how it
 * writes them. Used by `serve` (identity) and `watch` (known hosts). Every file here is written
 * atomically (temp file + rename) with mode 0600, so a crash never leaves half a key behind and
 * other local users never get a window in which the file is readable.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LanstreamError } from './errors.js';
import { replaceFile } from './replace-file.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * The per-user config directory, following each platform's convention. Arguments exist so tests
 * can ask for another platform; callers normally pass nothing.
 */
export function defaultConfigDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  if (platform === 'win32') {
    const appData = env['APPDATA'];
    const base = appData && appData.length > 0 ? appData : path.win32.join(home, 'AppData', 'Roaming');
    return path.win32.join(base, 'lanstream');
  }
  if (platform === 'darwin') {
    return path.posix.join(home, 'Library', 'Application Support', 'lanstream');
  }
  // XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env['XDG_CONFIG_HOME'];
  if (xdg && path.posix.isAbsolute(xdg)) return path.posix.join(xdg, 'lanstream');
  return path.posix.join(home, '.config', 'lanstream');
}

function configError(message: string, cause: unknown, filePath: string): LanstreamError {
  const reason = cause instanceof Error && 'code' in cause ? ` (${String((cause as NodeJS.ErrnoException).code)})` : '';
  return new LanstreamError('LS_ERR_CONFIG', `${message}${reason}`, { cause, details: { path: filePath } });
}

/** mkdir -p, then 0700 on POSIX (an existing directory is tightened too: it holds the keys). */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    if (process.platform !== 'win32') await fs.chmod(dir, PRIVATE_DIR_MODE);
  } catch (err) {
    throw configError(`Cannot create the config directory ${dir}: check its permissions or pass another directory with --config-dir`, err, dir);
  }
}

/** Atomic write with mode 0600: readers see the old file or the new one, never a partial one. */
export async function writePrivateFile(filePath: string, data: string | Buffer): Promise<void> {
  const tmpPath = `${filePath}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    // 'wx' refuses to follow a symlink planted at the temp name; mode applies at creation, before any byte.
    await fs.writeFile(tmpPath, data, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    // The umask cannot widen 0600, but chmod makes the mode independent of how the file was created.
    if (process.platform !== 'win32') await fs.chmod(tmpPath, PRIVATE_FILE_MODE);
    await replaceFile(tmpPath, filePath);
  } catch (err) {
    await fs.rm(tmpPath, { force: true }).catch(() => undefined);
    throw configError(`Cannot write ${filePath}: check that its directory is writable by you`, err, filePath);
  }
}

/** The file's bytes, or null when it does not exist (any other failure is an error). */
export async function readIfExists(filePath: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(filePath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw configError(`Cannot read ${filePath}: check its permissions or delete it to start fresh`, err, filePath);
  }
}
