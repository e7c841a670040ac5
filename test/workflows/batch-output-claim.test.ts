/**
 * A batch job claims its local output directory (.inferctl-job.json with its workflow id): another job
 * given the same --output is refused and the first job's files stay whole; a directory holding files no
 * job claimed is refused, not wiped; an empty existing directory is claimed; a new run of the same job
 * (the same workflow id, as a re-run of a scheduled slot) proceeds and replaces its own output.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { OUTPUT_CLAIM_FILE } from '../../activities/batch';
import { writeSampleImages } from '../../src/demo/sample-images';
import type { BatchScoreInput } from '../../src/shared/batch-types';
import { FailureType } from '../../src/shared/failure-types';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { readJsonl } from '../helpers/jsonl';
import { recordReliability } from '../helpers/reliability';
import { workflowSuite } from '../helpers/workflow-suite';
import { uniqueName } from '../helpers/workers';

describe('batch output claims', () => {
  const suite = workflowSuite('claim', { gpu: {} });

  test('another job’s output and an unclaimed non-empty directory are refused; the same job proceeds', async () => {
    const input = path.join(suite.scratch, 'in');
    await writeSampleImages(input, 3);
    const job = (name: string, outputDir: string): BatchScoreInput =>
      suite.batchInput({ name, inputPath: input, outputDir, shardSize: 2, maxShardsInFlight: 1 });
    const shared = path.join(suite.scratch, 'shared-out');
    const first = uniqueName('claim-a');
    const a = await (await suite.startBatch(job(first, shared))).result();
    assert.equal(a.itemsOk, 3);
    const claim = JSON.parse(await fs.readFile(path.join(shared, OUTPUT_CLAIM_FILE), 'utf8')) as { workflowId: string };
    assert.equal(claim.workflowId, `score-${first}`);
    const before = await fs.readFile(path.join(shared, 'predictions.jsonl'), 'utf8');

    let tried = 0;
    let refused = 0;
    const expectInUse = async (what: string, outputDir: string) => {
      tried++;
      const { activity, root } = await expectWorkflowFailure(
        await suite.startBatch(job(uniqueName('claim-b'), outputDir)),
        what,
      );
      assert.equal(activity?.activityType, 'prepareBatch');
      assert.equal(root.type, FailureType.OutputInUse, root.message);
      assert.match(root.message, /Choose an empty or new --output/);
      refused++;
    };
    await expectInUse('another job on the same output', shared);
    assert.equal(await fs.readFile(path.join(shared, 'predictions.jsonl'), 'utf8'), before, 'job A’s output is whole');
    assert.equal((await fs.readdir(path.join(shared))).includes('summary.json'), true);

    // A directory with someone's files in it and no claim: refused, nothing removed.
    const someones = path.join(suite.scratch, 'someones');
    await fs.mkdir(path.join(someones, 'manifest'), { recursive: true });
    await fs.writeFile(path.join(someones, 'manifest', 'notes.txt'), 'mine');
    await expectInUse('an unclaimed directory with files', someones);
    assert.equal(await fs.readFile(path.join(someones, 'manifest', 'notes.txt'), 'utf8'), 'mine');

    // An existing empty directory is claimed and used.
    const empty = path.join(suite.scratch, 'empty');
    await fs.mkdir(empty);
    const c = await (await suite.startBatch(job(uniqueName('claim-c'), empty))).result();
    assert.equal(c.itemsOk, 3);

    // A new run of job A (same workflow id) proceeds and replaces its own output: each input once.
    await writeSampleImages(path.join(input, 'more'), 1);
    const again = await (await suite.startBatch(job(first, shared))).result();
    assert.equal(again.itemsOk, 4);
    assert.equal((await readJsonl(path.join(shared, 'predictions.jsonl'))).length, 4);
    recordReliability({
      test: 'batch output claimed by another job',
      faultsInjected: 0,
      survived: true,
      rowsLost: 0,
      attack: 'foreign-output-directory',
      attacksTried: tried,
      attacksRefused: refused,
    });
  });
});
