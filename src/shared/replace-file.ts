/**
 * Renames a finished temp file over its target: the last step of every atomic write (config files,
 * known hosts, `--snapshot`). On Windows that fails while another program has the target open
 * without sharing delete access (a web server serving the snapshot, an antivirus scan, an editor),
 * usually for a moment: there it is tried again for up to a second, the way npm's graceful-fs
 * retries renames; graceful-fs itself retries only when the target does not exist yet, which is not
 * this case. Elsewhere a rename over an open file always works, and one failure is final.
 */
import { rename as fsRename } from 'node:fs/promises';
import { setTimeout as wait } from 'node:timers/promises';

const RETRYABLE = new Set(['EPERM', 'EACCES', 'EBUSY']);
export const REPLACE_RETRY_MS = 1000;

export interface ReplaceFileOptions {
  platform?: NodeJS.Platform;
  /** Tests: the rename and the wait between tries. */
  rename?: (from: string, to: string) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
  retryMs?: number;
}

export async function replaceFile(from: string, to: string, o: ReplaceFileOptions = {}): Promise<void> {
  const rename = o.rename ?? fsRename;
  const sleep = o.sleep ?? ((ms: number) => wait(ms));
  const retry = (o.platform ?? process.platform) === 'win32';
  const deadline = Date.now() + (o.retryMs ?? REPLACE_RETRY_MS);
  for (let backoffMs = 10; ; backoffMs = Math.min(backoffMs * 2, 100)) {
    try {
      await rename(from, to);
      return;
    } catch (err) {
      if (!retry || !RETRYABLE.has((err as NodeJS.ErrnoException).code ?? '') || Date.now() >= deadline) throw err;
      await sleep(backoffMs);
    }
  }
}
