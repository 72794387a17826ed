/**
 * audio-io-sink.ts moduleUrl: the resolved path of an optional ES module becomes a file URL that
 * import() loads. It was `file://` + path, which broke on a '#' or '%' in the path (read as a
 * fragment and an escape) and, on Windows, on every path (`C:\…` went to import() unchanged).
 * A real module is written under a directory with those characters and imported.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { moduleUrl } from '../../src/client/sinks/audio-io-sink.js';

t.test('a module under a directory with # and % imports', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ls-url #50% '));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mod.mjs');
  await writeFile(file, 'export const answer = 42;\n');
  const mod = (await import(moduleUrl(file))) as { answer: number };
  t.equal(mod.answer, 42);
  await t.rejects(import(`file://${file}`), 'the old form fails on this path (so the test can tell)');
});
