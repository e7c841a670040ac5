/**
 * Determinism guard: the recorded histories of a deploy and a batch job (test/fixtures/histories,
 * made by `npm run record-histories`) must replay against the current workflow code. A change that
 * alters the commands a workflow issues fails here unless it is guarded with patched().
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

import { workflowBundle } from '../../worker/workflow-bundle';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'histories');

test('recorded deploy and batch histories replay against the current workflows', async () => {
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  assert.deepEqual(files.sort(), ['batch-score.json', 'deploy.json']);
  for (const file of files) {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')));
    assert.ok((history.events?.length ?? 0) > 20, `${file} is a whole history`);
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, file);
  }
});
