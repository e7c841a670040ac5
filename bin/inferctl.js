#!/usr/bin/env node
'use strict';
// The CLI entry: the compiled TypeScript lives in dist/ (npm run build).
const path = require('node:path');
const fs = require('node:fs');

// inferctl needs Node >= 22 (the current LTS is 24). An older `node` on the PATH hands over to the Node
// that `npm ci` installed with the project, or says what to do.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  const own = path.join(__dirname, '..', 'node_modules', 'node', 'bin', 'node');
  if (fs.existsSync(own)) {
    const { status, signal } = require('node:child_process').spawnSync(own, [__filename, ...process.argv.slice(2)], {
      stdio: 'inherit',
    });
    process.exit(status ?? (signal ? 1 : 0));
  }
  process.stderr.write(
    `inferctl: Node.js ${process.versions.node} is too old; inferctl needs Node.js 22 or newer (24 recommended). ` +
      'Run `npm ci` in the inferctl directory (it installs Node 24 for the project) or upgrade Node.\n',
  );
  process.exit(2);
}

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
