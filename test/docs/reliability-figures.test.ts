/** docs/reliability-figures.md as a full run writes it: totals, one row per kind of record, attacks per kind. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import prettier from 'prettier';

import { FIGURES_FILE, renderReliabilityFigures, writeReliabilityFigures } from '../../scripts/reliability-figures';

const REPORT = {
  date: '2026-12-06T13:00:00.000Z',
  totals: {
    faultsInjected: 5,
    runsSurvived: 3,
    runsUnderFault: 4,
    inputsTried: 1063,
    inputsRejectedCleanly: 1019,
    rowsLost: 0,
    rowsDuplicated: 0,
    resourcesLeaked: 0,
    endpointKeysChecked: 41,
    secretLeaks: 0,
  },
  records: [
    { test: 'batch: GPU worker SIGKILLed mid-shard', faultsInjected: 2, survived: true, rowsLost: 0 },
    { test: 'batch: GPU worker SIGKILLed mid-shard', faultsInjected: 3, survived: false, rowsDuplicated: 1 },
    { test: 'bad-input corpus: images', faultsInjected: 0, survived: true, inputsTried: 1063 },
    {
      test: 'paths: a | in a name',
      faultsInjected: 0,
      survived: true,
      attack: 'symlink-escape',
      attacksTried: 4,
      attacksRefused: 4,
    },
    {
      test: 'paths again',
      faultsInjected: 0,
      survived: true,
      attack: 'symlink-escape',
      attacksTried: 2,
      attacksRefused: 1,
    },
    {
      test: 'codec',
      faultsInjected: 0,
      survived: true,
      attack: 'tampered-payload',
      attacksTried: 3,
      attacksRefused: 3,
    },
  ],
};

test('the figures page: date, totals, one row per kind, attacks counted per kind', () => {
  const md = renderReliabilityFigures(REPORT);
  assert.match(md, /last full run, 2026-12-06 /);
  assert.match(md, /\| faults injected .* \| 5 across 4 recorded runs \|/);
  assert.match(md, /\| malformed inputs tried \/ refused with a typed reason \| 1,063 \/ 1,019 \|/);
  assert.match(md, /\| batch: GPU worker SIGKILLed mid-shard \| 2 \| 1 \| 5 \| 0 \/ 0 \| 0 \/ 1 \| 0 \|/);
  assert.match(md, /\| paths: a \\\| in a name \| 1 \| 1 \|/, 'a | in a name is escaped');
  assert.match(md, /\| symlink-escape \| 2 \| 6 \| 5 \|/);
  assert.match(md, /\| tampered-payload \| 1 \| 3 \| 3 \|/);
  const none = renderReliabilityFigures({ ...REPORT, records: REPORT.records.filter((r) => !('attack' in r)) });
  assert.match(none, /No test of this run recorded an attack/);
  assert.match(none, /No test of this run recorded a figure/);
  const measured = renderReliabilityFigures({
    ...REPORT,
    figures: [{ test: 'scale-to-zero.test.ts', figure: 'cold start', value: 1234, unit: 'ms' }],
  });
  assert.match(measured, /## Figures the tests measured/);
  assert.match(measured, /\| scale-to-zero\.test\.ts \| cold start \| 1,234 ms \|/);
});

test('the page is written Prettier-clean, so lint passes on the committed file', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-figures-'));
  try {
    await fs.mkdir(path.join(root, 'docs'));
    const file = await writeReliabilityFigures(root, REPORT);
    assert.equal(file, path.join(root, FIGURES_FILE));
    const text = await fs.readFile(file, 'utf8');
    assert.ok(
      await prettier.check(text, { parser: 'markdown', printWidth: 120, singleQuote: true, trailingComma: 'all' }),
    );
    assert.match(text, /## Attacks tried/);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
