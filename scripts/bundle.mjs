// Bundles the CLI (src/cli/main.ts and everything it imports) into dist/bundle/, which
// bin/lanstream.js runs. Why: Node's ES module loader resolved, read and linked ~55 files of ours and
// ~35 of commander and pino before `watch` could start its window; one file and a few chunks start
// sooner (README "Choices of libraries", esbuild). The packages loaded at every start (commander,
// pino with its own dependencies, all pure JS) are bundled; the rest stay external, loaded from
// node_modules as usual: native addons, WebAssembly, lazily loaded libraries (each lazily loaded
// command or library stays lazy, one chunk each) and pino-pretty (loaded only on a terminal).
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const INLINE = ['commander', 'pino'];
const root = new URL('../', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));
const external = Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }).filter((name) => !INLINE.includes(name));
// fileURLToPath, not .pathname: on Windows that gives '/C:/…', which esbuild cannot open.
const outdir = fileURLToPath(new URL('dist/bundle/', root));
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [fileURLToPath(new URL('src/cli/main.ts', root))],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  // The bundled CommonJS packages call require() for Node's own modules; an ES module has none.
  banner: { js: "import { createRequire as __lanstreamCreateRequire } from 'node:module'; const require = __lanstreamCreateRequire(import.meta.url);" },
  sourcemap: true,
  // Less source for V8 to parse at every start: the bundle 648 → 420 kB, watch's dial 65.5 → 59.6 ms
  // after its first line (medians of 20 interleaved runs, Xvfb, 127.0.0.1). Names are kept (no
  // minifyIdentifiers), so stack traces still name our functions; the source maps give the lines.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
