/**
 * What `lanstream watch` loads before it starts its window. Every ms of start-up is a ms of time to
 * first picture: execa alone took ~80 ms to import (watch imported it through the snapshot module,
 * 110–150 ms for the watch module against 36 ms without), sharp ~60 ms. Both, and the audio
 * libraries, must load only when a command really uses them. A resolve hook (test/fixtures/hooks)
 * makes importing a denied package fail; the first test shows that it does.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, assertBuilt } from '../helpers/cli.js';

assertBuilt();
const HOOK = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'register-deny-imports.mjs');
const LAZY = ['execa', 'sharp', 'pulseaudio.js', '@echogarden/audio-io', 'speaker', 'opus-decoder', 'opusscript'];

function importWith(specifier: string, denied: readonly string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', HOOK, '--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`], {
    cwd: REPO_ROOT,
    env: { ...process.env, LANSTREAM_DENY_IMPORTS: denied.join(',') },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stderr: r.stderr };
}

const moduleUrl = (rel: string) => pathToFileURL(path.join(REPO_ROOT, 'dist', rel)).href;

t.test('the hook works: a denied package does not import', async (t) => {
  const r = importWith('execa', ['execa']);
  t.not(r.code, 0);
  t.match(r.stderr, /denied import of execa/);
  t.equal(importWith('execa', []).code, 0, 'and imports without the hook list');
});

// What bin/lanstream.js runs is the bundle (scripts/bundle.mjs); its watch chunk has a content hash in its name.
const watchChunk = readdirSync(path.join(REPO_ROOT, 'dist', 'bundle')).find((f) => /^watch-command-.*\.js$/.test(f));
t.ok(watchChunk, `the bundle has a watch-command chunk (${watchChunk})`);
for (const rel of ['cli/main.js', 'cli/watch-command.js', 'bundle/main.js', `bundle/${watchChunk}`]) {
  t.test(`${rel} imports none of ${LAZY.join(', ')}`, async (t) => {
    const r = importWith(moduleUrl(rel), LAZY);
    t.equal(r.code, 0, r.stderr.split('\n').find((l) => l.includes('denied import')) ?? r.stderr.slice(-500));
  });
}

// The entry starts watch's window from its pre-scan (src/cli/main.ts) before the parser loads: what
// it imports statically must not pull in commander, pino or the command modules.
t.test('cli/main.js (the entry) starts without commander and pino', async (t) => {
  const r = importWith(moduleUrl('cli/main.js'), [...LAZY, 'commander', 'pino']);
  t.equal(r.code, 0, r.stderr.split('\n').find((l) => l.includes('denied import')) ?? r.stderr.slice(-500));
});
