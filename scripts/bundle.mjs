// Bundles the CLI (src/cli/main.ts and everything it imports from src/) into dist/bundle/, which
// bin/lanstream.js runs. npm packages stay external (loaded from node_modules as usual), and the
// commands and optional libraries that are imported lazily stay lazy (one chunk each). Why: Node's
// ES module loader resolved, read and linked ~55 separate files of ours before `watch` could start
// its window; one file and a few chunks start sooner (README "Packages", esbuild).
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [new URL('../src/cli/main.ts', import.meta.url).pathname],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
