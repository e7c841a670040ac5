#!/usr/bin/env node
'use strict';
// The CLI entry: the compiled TypeScript lives in dist/ (npm run build).
let cli;
try {
  cli = require('../dist/src/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    process.stderr.write('inferctl: not built yet. Run `npm run build` first.\n');
    process.exit(2);
  }
  throw err;
}
cli.main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`inferctl: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
