// Builds native/ffplay-wake.so (see ffplay-wake.c) on Linux, at `npm install` and `npm run build`.
// Optional: without a C compiler, or elsewhere than Linux, it says so in one line and exits 0;
// `lanstream watch` then runs ffplay without it (its window then shows frames at ffplay's 10 ms poll).
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('ffplay-wake.c', import.meta.url));
const output = fileURLToPath(new URL('ffplay-wake.so', import.meta.url));

if (process.platform !== 'linux') process.exit(0);
const cc = process.env.CC || 'cc';
const partial = `${output}.${process.pid}.tmp`;
const run = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o', partial, source, '-ldl', '-lpthread'], {
  stdio: ['ignore', 'inherit', 'pipe'],
  encoding: 'utf8',
});
if (run.status === 0 && existsSync(partial)) {
  renameSync(partial, output);
} else {
  rmSync(partial, { force: true });
  const why = run.error ? `${cc} not found` : `${cc} failed: ${(run.stderr || '').trim().split('\n')[0]}`;
  process.stderr.write(
    `lanstream: ffplay-wake not built (${why}); watch works without it, its ffplay window a few ms later. Install a C compiler (e.g. sudo apt-get install gcc) and run npm rebuild lanstream to add it.\n`,
  );
}
