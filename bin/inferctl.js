#!/usr/bin/env node
'use strict';
// The CLI entry: the compiled TypeScript lives in dist/ (npm run build).
const path = require('node:path');
const fs = require('node:fs');

// A closed stdout (`inferctl --help | head -1`, a pager quit early) ends the CLI quietly, not with an
// EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err && err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

// inferctl needs Node >= 22 (the current LTS is 24). An older `node` on the PATH hands over to the Node
// that `npm ci` installed with the project, or says what to do.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  const own = path.join(__dirname, '..', 'node_modules', 'node', 'bin', 'node');
  if (fs.existsSync(own)) handOver(own);
  else {
    process.stderr.write(
      `inferctl: Node.js ${process.versions.node} is too old; inferctl needs Node.js 22 or newer (24 recommended). ` +
        'Run `npm ci` in the inferctl directory (it installs Node 24 for the project) or upgrade Node.\n',
    );
    process.exit(2);
  }
} else run();

function run() {
  // Run by the wrapper below: when the wrapper goes (killed with SIGKILL, or a supervisor stopped it), its end
  // of the IPC channel closes, and this process stops the way SIGTERM stops it (a worker drains, then exits).
  if (process.env.INFERCTL_WRAPPER_PID && process.channel) {
    delete process.env.INFERCTL_WRAPPER_PID; // not inherited by what this process starts
    process.on('disconnect', () => {
      process.kill(process.pid, 'SIGTERM');
      // A command that does not handle SIGTERM has been ended by it; one that drains gets this long.
      setTimeout(() => process.exit(143), 60_000).unref();
    });
    process.channel.unref(); // the channel alone keeps nothing running
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
}

/**
 * Runs this file under `node` (the project's own) as a child and mirrors it: the signals a supervisor or a
 * shell sends this pid are passed on, the child's exit is this process's exit, and an IPC channel tells the
 * child when this process is gone, even by SIGKILL, so the real worker is never left running as an orphan.
 */
function handOver(node) {
  const { spawn } = require('node:child_process');
  const child = spawn(node, [__filename, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, INFERCTL_WRAPPER_PID: String(process.pid) },
  });
  child.channel.unref();
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  // What a supervisor or `kill` sends is passed on. Ctrl-C reaches the child from the terminal itself (one
  // process group), so this process only outlives it; any other signal ends this process, and the closed
  // IPC channel then stops the child.
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => forward(signal));
  process.on('SIGINT', () => undefined);
  child.on('error', (err) => {
    process.stderr.write(`inferctl: cannot start ${node}: ${err.message}\n`);
    process.exit(2);
  });
  child.on('exit', (status, signal) => {
    process.exit(status ?? (signal ? 128 + (require('node:os').constants.signals[signal] ?? 1) : 0));
  });
}
