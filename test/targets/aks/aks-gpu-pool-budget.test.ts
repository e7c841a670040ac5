/**
 * The cost ledger and budget of `score --target aks` (a job-owned GPU pool), through bin/inferctl.js,
 * against the ARM double, the Kubernetes control plane and the kubelet stand-in (aks-gpu-pool.test.ts has
 * the pool's own lifecycle): the ledger next to a hand computation (nodes × hours × price, the hours from
 * the workflow's history: from the pool's request to the end of its removal); a budget spent while the pool
 * comes up stops the job before its first shard, the pool removed; `score resume` with a raised budget adds
 * a new pool, scores every input exactly once and carries the first pool's cost.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { BatchStatusView } from '../../../src/cli/commands/score-jobs';
import type { BatchOutcome } from '../../../workflows/batch-score';
import type { gpuPoolBatchScore } from '../../../workflows/gpu-pool';
import type { GpuPoolReport } from '../../../src/shared/gpu-pool-types';
import { DEFAULT_PRICE_TABLE } from '../../../src/shared/price-table';
import { podImageFolders, seedUserCluster } from '../../helpers/aks-fixtures';
import { TEST_RESOURCE_GROUP } from '../../helpers/azure/aks-testbed';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { runInferctl } from '../../helpers/cli';
import { readJsonl } from '../../helpers/jsonl';
import { recordFigure } from '../../helpers/reliability';
import { eventually, uniqueName } from '../../helpers/workers';

const CLUSTER = 'team-budget';
const VM_SIZE = 'Standard_NC4as_T4_v3';
/** A GPU node at 3,600 an hour: 1 a second. */
const NODE_HOURLY = 3600;
const NODES = 2;
const IMAGES = 16;

interface AksRun {
  workflowId: string;
  summary?: BatchOutcome;
  pool?: GpuPoolReport;
}

describe('the ledger and budget of a batch job on its own GPU pool (aks)', () => {
  const suite = aksSuite('aks-gpupool-budget');
  let dir: string;
  let priceTable: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-poolbudget-'));
    await fs.chmod(dir, 0o755); // the pods run as the image's user (1000): they read the inputs, write the shards
    await seedUserCluster(suite, CLUSTER);
    priceTable = path.join(dir, 'prices.json');
    await fs.writeFile(
      priceTable,
      JSON.stringify({
        ...DEFAULT_PRICE_TABLE,
        currency: 'EUR',
        asOf: '2026-12-06',
        source: 'test prices',
        vmHourly: { [VM_SIZE]: NODE_HOURLY },
      }),
    );
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));
  const scratch = (name: string) => podImageFolders(dir, name, IMAGES);

  const score = (name: string, dirs: { input: string; output: string }, ...more: string[]) =>
    runInferctl(
      [
        'score',
        '--target',
        'aks',
        '--cluster',
        CLUSTER,
        '--resource-group',
        TEST_RESOURCE_GROUP,
        '--gpu-nodes',
        String(NODES),
        '--gpu-vm-size',
        VM_SIZE,
        '--model',
        suite.assets.modelPath,
        '--input',
        dirs.input,
        '--output',
        dirs.output,
        '--name',
        name,
        '--shard-size',
        '2',
        '--concurrency',
        '1',
        '--task-queue',
        suite.taskQueue,
        '--price-table',
        priceTable,
        '--json',
        ...more,
      ],
      { env: { ...process.env, INFERCTL_PRICE_TABLE: '' }, timeoutMs: 400_000 },
    );

  /** Workflow-history times (ms) of the pool's request and of the end of its removal, in each run of the job. */
  async function poolSpans(workflowId: string): Promise<Array<[number, number]>> {
    const spans: Array<[number, number]> = [];
    for await (const wf of suite.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      const history = await suite.client.workflow.getHandle(workflowId, wf.runId).fetchHistory();
      const events = history.events ?? [];
      const time = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000 + e.eventTime!.nanos! / 1e6;
      const scheduled = (type: string) =>
        events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
      const added = scheduled('addGpuPool')!;
      const removal = scheduled('removeGpuPool')!;
      const removed = events.find(
        (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(removal.eventId),
      )!;
      spans.push([time(added), time(removed)]);
    }
    return spans;
  }

  /** nodes × hours × price over the runs' spans; and the slack of the workflow's own clock around each span. */
  const byHand = (spans: Array<[number, number]>) =>
    spans.reduce((sum, [from, until]) => sum + NODES * ((until - from) / 3_600_000) * NODE_HOURLY, 0);
  const SLACK = (runs: number) => runs * NODES * NODE_HOURLY * (4 / 3600); // up to 2 s each end of each span

  test('the ledger is the pool’s nodes × hours × price, from its request to the end of its removal', async () => {
    const name = uniqueName('ledger');
    const dirs = await scratch(name);
    const run = await score(name, dirs, '--detach');
    assert.equal(run.code, 0, run.stderr);
    const { workflowId } = JSON.parse(run.stdout) as AksRun;
    // While it runs, `score status` answers through the child batch: the pool's line open, its cost growing.
    const running = await eventually(
      async () => {
        const status = await runInferctl(['score', 'status', name, '--json']);
        const view = JSON.parse(status.stdout || '{}') as BatchStatusView;
        if (view.execution !== undefined && view.execution !== 'RUNNING') return { ended: view.execution };
        const cost = view.progress?.cost;
        return cost ? { cost } : undefined;
      },
      'the running job’s cost in score status',
      240_000,
    ).then((seen) => {
      if (seen.cost === undefined) assert.fail(`the job ended (${seen.ended}) before score status saw it scoring`);
      return seen.cost;
    });
    assert.deepEqual(
      running.ledger.lines.map((l) => [l.item, l.quantity, l.until]),
      [[`${VM_SIZE} VM (job GPU pool)`, NODES, undefined]],
    );
    assert.equal(running.hourly, NODES * NODE_HOURLY);
    const outcome = await suite.client.workflow.getHandle<typeof gpuPoolBatchScore>(workflowId).result();
    const result: AksRun = { workflowId, summary: outcome.batch, pool: outcome.pool };
    const cost = result.summary!.cost!;
    assert.equal(result.pool!.nodes, NODES);
    assert.equal(result.pool!.vmSize, VM_SIZE);
    assert.deepEqual(
      cost.ledger.lines.map((l) => [l.item, l.quantity, l.unitHourly, l.until !== undefined]),
      [[`${VM_SIZE} VM (job GPU pool)`, NODES, NODE_HOURLY, true]],
      'one line, closed when the pool was gone',
    );
    assert.equal(cost.ledger.lines[0]!.from, result.pool!.billedFrom);
    assert.equal(cost.ledger.lines[0]!.until, result.pool!.billedUntil);
    const spans = await poolSpans(result.workflowId);
    const hand = byHand(spans);
    assert.ok(
      cost.total >= hand - 1e-6 && cost.total - hand <= SLACK(1),
      `ledger ${cost.total} next to the hand computation ${hand} (${NODES} × ${(spans[0]![1] - spans[0]![0]) / 1000} s × ${NODE_HOURLY}/h)`,
    );
    assert.equal(cost.hourly, 0, 'nothing bills once the pool is removed');
    const test = 'aks-gpu-pool-budget.test.ts';
    recordFigure({
      test,
      figure: `ledger of an aks job's GPU pool (${NODES} × ${VM_SIZE} at EUR ${NODE_HOURLY}/h)`,
      value: cost.total,
      unit: 'EUR',
    });
    recordFigure({
      test,
      figure: 'the same, by hand from its history (nodes × hours × price)',
      value: Math.round(hand * 1e6) / 1e6,
      unit: 'EUR',
    });
    // The memo (the Web UI) has the total.
    const memo = (await suite.client.workflow.getHandle(result.workflowId).describe()).memo as {
      cost?: { total: number };
    };
    assert.equal(memo.cost?.total, cost.total);
  });

  test('a budget spent while the pool comes up stops the job, the pool removed; resume scores every input once', async () => {
    const name = uniqueName('stop');
    const dirs = await scratch(name);
    // 1 EUR: two nodes at 1 a second spend it within a second of the pool's request, long before the first shard.
    const run = await score(name, dirs, '--budget', '1');
    assert.equal(run.code, 3, `exit 3: ${run.stdout}\n${run.stderr}`);
    assert.match(
      run.stderr,
      new RegExp(
        `Batch job "${name}" stopped by budget: spent EUR [\\d.]+ of EUR 1\\.00; \\d+ shard\\(s\\) not scored`,
      ),
    );
    const stopped = JSON.parse(run.stdout) as AksRun;
    assert.equal(stopped.summary!.stopped!.shardsLeft, IMAGES / 2);
    assert.ok(stopped.pool!.removed.length > 0, 'the pool was removed');
    assert.deepEqual(suite.bed.arm.clusterPools(CLUSTER), ['system'], 'ARM has only the cluster’s own pool left');
    const spent = stopped.summary!.cost!.total;
    assert.equal(stopped.summary!.stopped!.spent, spent, 'the spent amount counts the pool until its removal');

    const resumed = await runInferctl(
      ['score', 'resume', name, '--budget', '100000', '--task-queue', suite.taskQueue, '--json'],
      { timeoutMs: 400_000 },
    );
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    const done = JSON.parse(resumed.stdout) as AksRun;
    assert.equal(done.summary!.itemsOk, IMAGES);
    const rows = await readJsonl<{ index: number }>(path.join(dirs.output, 'predictions.jsonl'));
    assert.deepEqual(
      rows.map((r) => r.index).sort((a, b) => a - b),
      Array.from({ length: IMAGES }, (_, i) => i),
      'every input exactly once',
    );
    assert.deepEqual(suite.bed.arm.clusterPools(CLUSTER), ['system'], 'the second pool is removed too');
    // Two pools, two closed lines: the first pool's cost carried on, the whole next to the hand computation.
    const cost = done.summary!.cost!;
    assert.equal(cost.ledger.lines.length, 2);
    assert.ok(cost.ledger.lines.every((l) => l.until !== undefined));
    assert.ok(cost.total > spent, `${cost.total} > ${spent}`);
    const hand = byHand(await poolSpans(done.workflowId));
    assert.ok(cost.total >= hand - 1e-6 && cost.total - hand <= SLACK(2), `ledger ${cost.total}, by hand ${hand}`);
  });
});
