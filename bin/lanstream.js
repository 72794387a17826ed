#!/usr/bin/env node
// Tiny shim: the CLI is compiled and bundled into dist/ (npm run build).
import('../dist/bundle/main.js')
  .then((m) => m.main(process.argv))
  .catch((err) => {
    process.stderr.write(
      `lanstream: cannot start: ${err && err.message ? err.message : err}\n` + 'If you run from a git checkout, build first: npm install && npm run build\n',
    );
    process.exitCode = 1;
  });
