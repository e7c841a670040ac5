/** Every benchmark entry answers --help without running, and refuses a flag it does not know. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import { benchArgsProblem } from '../../bench/bench-cli';

const run = promisify(execFile);
const BENCH = path.join(__dirname, '..', '..', 'bench');
const RESULTS = path.join(__dirname, '..', '..', '..', 'bench', 'results');

/** package.json's bench scripts → the entry each runs, e.g. bench:serve → serve-bench.js. */
const ENTRIES = ['batch-bench', 'serve-bench', 'decode-bench', 'orchestration-bench', 'script-deploy-bench'];

describe('benchmark command lines', () => {
  test('benchArgsProblem: switches, values, optional values, unknown flags and stray words', () => {
    const flags = { '--quick': 'switch', '--rounds': 'value', '--scale': 'optional-value' } as const;
    assert.equal(benchArgsProblem(flags, []), undefined);
    assert.equal(benchArgsProblem(flags, ['--quick', '--rounds', '3']), undefined);
    assert.equal(benchArgsProblem(flags, ['--scale']), undefined);
    assert.equal(benchArgsProblem(flags, ['--scale', '1000', '--quick']), undefined);
    assert.equal(benchArgsProblem(flags, ['--rounds']), '--rounds needs a value');
    assert.equal(benchArgsProblem(flags, ['--rounds', '--quick']), '--rounds needs a value');
    assert.equal(benchArgsProblem(flags, ['--quik']), 'unknown flag --quik');
    assert.equal(benchArgsProblem(flags, ['--quick', '3']), 'unexpected argument "3"');
  });

  test('each entry prints its usage for --help and refuses an unknown flag, starting nothing', async () => {
    const package_ = JSON.parse(await fs.readFile(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const entry of ENTRIES) {
      assert.ok(
        Object.values(package_.scripts).some((s) => s.includes(`dist/bench/${entry}.js`)),
        `${entry} is run by an npm script`,
      );
    }
    const before = await fs.readdir(RESULTS).catch(() => []);
    await Promise.all(
      ENTRIES.map(async (entry) => {
        const file = path.join(BENCH, `${entry}.js`);
        const help = await run(process.execPath, [file, '--help']);
        assert.match(help.stdout, /^npm run bench/, `${entry} --help`);
        const bad = await run(process.execPath, [file, '--bogus']).then(
          () => assert.fail(`${entry} --bogus should fail`),
          (err: { code: number; stderr: string }) => err,
        );
        assert.equal(bad.code, 2, `${entry} --bogus exits 2`);
        assert.match(bad.stderr, /^unknown flag --bogus\n\nnpm run bench/, entry);
      }),
    );
    assert.deepEqual(await fs.readdir(RESULTS).catch(() => []), before, 'no result written');
  });
});
