/**
 * Finding the Temporal CLI: TEMPORAL_CLI_PATH, then PATH, then the cache; a missing one lists the ways to
 * install it; concurrent builds with Go share one `go install` under the lock. Everything happens in a
 * temp PATH and cache dir with a fake `go`, so nothing real is touched or built.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  findTemporalCli,
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  TemporalCliNotFoundError,
} from '../../src/temporal/cli-binary';
import { withEnv } from './env';

/** A stand-in for `go`: records its arguments, takes a moment, then "installs" a script into $GOBIN. */
const FAKE_GO = `#!${process.execPath}
const fs = require('node:fs');
const path = require('node:path');
fs.appendFileSync(process.env.FAKE_GO_CALLS, process.argv.slice(2).join(' ') + '\\n');
setTimeout(() => {
  fs.writeFileSync(path.join(process.env.GOBIN, 'temporal'), '#!/bin/sh\\necho built\\n', { mode: 0o755 });
}, 500);
`;

describe('findTemporalCli', () => {
  let scratch: string;
  let emptyDir: string;
  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-cli-'));
    emptyDir = path.join(scratch, 'empty');
    await fs.mkdir(emptyDir);
  });
  after(() => fs.rm(scratch, { recursive: true, force: true }));

  test('TEMPORAL_CLI_PATH wins over PATH; a relative one is made absolute', async () => {
    const fake = path.join(scratch, 'my-temporal');
    await fs.writeFile(fake, '#!/bin/sh\n', { mode: 0o755 });
    const bin = path.join(scratch, 'path-bin');
    await fs.mkdir(bin);
    await fs.writeFile(path.join(bin, 'temporal'), '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(await withEnv({ TEMPORAL_CLI_PATH: fake, PATH: bin }, () => findTemporalCli()), fake);
    const relative = path.relative(process.cwd(), fake);
    assert.equal(await withEnv({ TEMPORAL_CLI_PATH: relative }, () => findTemporalCli()), fake);
  });

  test('a bad TEMPORAL_CLI_PATH is named, with what is wrong and the install routes', async () => {
    await assert.rejects(
      withEnv({ TEMPORAL_CLI_PATH: path.join(scratch, 'nope') }, () => findTemporalCli({ build: true })),
      (err: unknown) =>
        err instanceof TemporalCliNotFoundError &&
        /TEMPORAL_CLI_PATH=.*nope does not exist/.test(err.message) &&
        err.message.includes('brew install temporal'),
    );
    const notExecutable = path.join(scratch, 'not-executable');
    await fs.writeFile(notExecutable, 'text', { mode: 0o644 });
    await assert.rejects(
      withEnv({ TEMPORAL_CLI_PATH: notExecutable }, () => findTemporalCli()),
      /TEMPORAL_CLI_PATH=.*not-executable is not an executable file/,
    );
  });

  test('PATH comes before the cache, the cache before building', async () => {
    const bin = path.join(scratch, 'bin');
    const cache = path.join(scratch, 'cache-with-cli');
    await fs.mkdir(bin, { recursive: true });
    await fs.mkdir(path.join(cache, 'bin'), { recursive: true });
    await fs.writeFile(path.join(bin, 'temporal'), '#!/bin/sh\n', { mode: 0o755 });
    await fs.writeFile(path.join(cache, 'bin', 'temporal'), '#!/bin/sh\n', { mode: 0o755 });
    const env = { TEMPORAL_CLI_PATH: undefined, INFERCTL_CACHE_DIR: cache };
    assert.equal(await withEnv({ ...env, PATH: bin }, () => findTemporalCli()), path.join(bin, 'temporal'));
    assert.equal(
      await withEnv({ ...env, PATH: emptyDir }, () => findTemporalCli({ build: true })),
      path.join(cache, 'bin', 'temporal'),
    );
  });

  test('nothing anywhere and no build: the error lists every install route', async () => {
    await assert.rejects(
      withEnv(
        { TEMPORAL_CLI_PATH: undefined, PATH: emptyDir, INFERCTL_CACHE_DIR: path.join(scratch, 'no-cache') },
        () => findTemporalCli({ build: false }),
      ),
      (err: unknown) => {
        assert.ok(err instanceof TemporalCliNotFoundError);
        for (const route of [
          'brew install temporal',
          'https://temporal.download/cli.sh',
          'github.com/temporalio/cli/releases',
          'go install github.com/temporalio/cli/cmd/temporal@v1.5.1',
          'TEMPORAL_CLI_PATH',
        ]) {
          assert.ok(err.message.includes(route), `mentions ${route}`);
        }
        return true;
      },
    );
  });

  test('concurrent builders run `go install` once, under the lock, and a dead builder’s lock is broken', async () => {
    const goBin = path.join(scratch, 'go-bin');
    const cache = path.join(scratch, 'build-cache');
    const calls = path.join(scratch, 'go-calls');
    await fs.mkdir(goBin);
    await fs.writeFile(path.join(goBin, 'go'), FAKE_GO, { mode: 0o755 });
    // A lock left by a builder that died (no such pid).
    await fs.mkdir(path.join(cache, 'bin.build-lock'), { recursive: true });
    await fs.writeFile(path.join(cache, 'bin.build-lock', 'pid'), '999999999');

    const lines: string[] = [];
    const env = { TEMPORAL_CLI_PATH: undefined, PATH: goBin, INFERCTL_CACHE_DIR: cache, FAKE_GO_CALLS: calls };
    const found = await withEnv(env, () =>
      Promise.all([1, 2, 3].map(() => findTemporalCli({ build: true, log: (l) => lines.push(l) }))),
    );
    const target = path.join(cache, 'bin', 'temporal');
    assert.deepEqual(found, [target, target, target]);
    assert.equal(
      (await fs.readFile(calls, 'utf8')).trim(),
      `install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`,
      'go ran once',
    );
    assert.ok(
      lines.some((l) => l.includes('Building the Temporal CLI v1.5.1')),
      lines.join('\n'),
    );
    await assert.rejects(fs.stat(path.join(cache, 'bin.build-lock')), 'the lock is released');
  });
});
