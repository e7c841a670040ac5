/**
 * `npm run record-histories [-- <file>...]`: records the histories the replay test checks every workflow
 * change against (test/fixtures/histories/), on a private dev server with the real workers. Each file is
 * one recording; given file names (e.g. `deploy-rollback.json`), it runs and writes only those:
 *   deploy.json            a local deploy ended by its TTL
 *   deploy-scale-to-zero.json  a local deploy with --min-replicas 0: to zero, a held request wakes it, to zero again
 *   deploy-autoscale.json  a local deploy with --target-concurrency: up under a load loop, down after it, new bounds
 *   deploy-updates.json    a local deploy steered by Updates (extend, scale, rollout), ended by its idle TTL
 *   deploy-budget.json     a local deploy with --budget (a test price table): warned at 80 %, torn down at 100 %
 *   deploy-rollback.json   a local deploy whose rollout is rolled back (wrong smoke answer), then torn down
 *   deploy-continued.json  the second run of a local deploy that continued as new (a small history bound and
 *                          extend Updates), scaled, then torn down: a run that starts from the carried state
 *   batch-score.json       a batch job started by a client
 *   batch-scheduled.json   a batch job started by a Schedule (scheduled-time search attribute, {date} output)
 *   deploy-aks.json        an aks deploy (new GPU cluster, registry build, LoadBalancer), ended by its TTL
 *   janitor.json           a janitor sweep that deletes the aks deploy's now unused image
 * The aks recordings run against the aks testbed (test/helpers/azure/aks-testbed.ts: the ARM double, a
 * real Kubernetes control plane, the kubelet stand-in), which needs the Kubernetes test binaries.
 * Re-record only for a new workflow shape; keep the old files, so that workflows started on older code
 * keep replaying (changes that alter their commands are guarded with patched()).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Client, Connection } from '@temporalio/client';

import { writeSampleImages } from '../src/demo/sample-images';
import { ensureDemoAssets } from '../src/demo/demo-assets';
import { batchWorkflowId } from '../src/shared/batch-types';
import type { BatchScoreInput } from '../src/shared/batch-types';
import { CONTROL_TASK_QUEUE, deployWorkflowId } from '../src/shared/deploy-types';
import type { DeployInput } from '../src/shared/deploy-types';
import { DEFAULT_PRICE_TABLE } from '../src/shared/price-table';
import { findTemporalCli } from '../src/temporal/cli-binary';
import { startDevServer } from '../src/temporal/dev-server';
import { LocalLayout } from '../src/targets/local/layout';
import { startAksTestbed } from '../test/helpers/azure/aks-testbed';
import type { AksTestbed } from '../test/helpers/azure/aks-testbed';
import { ensureTestTls, testTlsEnv } from '../test/helpers/azure/test-tls';
import { buildKubernetesTools } from '../test/helpers/kubernetes/kubernetes-tools';
import { batchScore } from '../workflows/batch-score';
import {
  autoscaleUpdate,
  deploy,
  extendUpdate,
  rolloutUpdate,
  scaleUpdate,
  statusQuery,
  teardownUpdate,
} from '../workflows/deploy';
import { janitor } from '../workflows/janitor';
import { runControlWorker } from '../worker/control';
import { runGpuWorker } from '../worker/gpu';
import { installWorkerRuntime } from '../worker/runtime';

const execFileAsync = promisify(execFile);
const FIXTURES = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'histories');

interface Recorder {
  client: Client;
  scratch: string;
  assets: Awaited<ReturnType<typeof ensureDemoAssets>>;
  red: { path: string; label: string };
}

/** Each recording runs its workflow to the end and returns its workflow id. */
const RECORDINGS: Record<string, { aks?: boolean; run: (r: Recorder) => Promise<string> }> = {
  'deploy.json': { run: (r) => runDeploy(r, { name: 'recorded', ttlSeconds: 1 }) },
  'deploy-updates.json': {
    run: async (r) => {
      const handle = await startDeploy(r, { name: 'recorded-updates', ttlSeconds: 600, idleTtlSeconds: 3 });
      await servingOf(handle);
      await handle.executeUpdate(extendUpdate, { args: [{ seconds: 1200 }] });
      await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 2 }] });
      await handle.executeUpdate(rolloutUpdate, {
        args: [{ modelPath: r.assets.modelPath, canaryPercent: 50, bakeSeconds: 1 }],
      });
      await handle.result();
      return handle.workflowId;
    },
  },
  'deploy-scale-to-zero.json': {
    run: async (r) => {
      const handle = await startDeploy(r, {
        name: 'recorded-zero',
        ttlSeconds: 600,
        scaleToZero: { maxReplicas: 1, scaleDownAfterSeconds: 2, wakeTimeoutSeconds: 60 },
      });
      const zero = async (state: string) => {
        while ((await handle.query(statusQuery)).scaleToZero?.state !== state)
          await new Promise((res) => setTimeout(res, 200));
      };
      await zero('cold');
      // One request at zero replicas: held, a wake, answered.
      const layout = new LocalLayout('recorded-zero');
      const res = await fetch(`${(await handle.query(statusQuery)).endpoint!}/score`, {
        method: 'POST',
        headers: { authorization: `Bearer ${(await fs.readFile(layout.apiKeyFile, 'utf8')).trim()}` },
        body: await fs.readFile(r.red.path),
      });
      if (res.status !== 200) throw new Error(`the held request was answered ${res.status}: ${await res.text()}`);
      await zero('warm');
      await zero('cold');
      await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'recorded' }] });
      await handle.result();
      return handle.workflowId;
    },
  },
  'deploy-budget.json': {
    run: (r) =>
      runDeploy(r, {
        name: 'recorded-budget',
        ttlSeconds: 600,
        // A replica at 3600 an hour: 80 % of 4 after 3.2 s, all of it after 4 s.
        cost: { priceTable: { ...DEFAULT_PRICE_TABLE, localReplicaHourly: 3600 }, budget: 4, onBudget: 'teardown' },
      }),
  },
  'deploy-autoscale.json': {
    run: async (r) => {
      const name = 'recorded-autoscale';
      const handle = await startDeploy(r, {
        name,
        ttlSeconds: 600,
        autoscale: {
          minReplicas: 1,
          maxReplicas: 2,
          targetConcurrency: 1,
          periodSeconds: 1,
          scaleUpWindowSeconds: 0,
          scaleDownWindowSeconds: 1,
          tolerance: 0.1,
        },
      });
      await servingOf(handle);
      const replicas = async (n: number) => {
        while ((await handle.query(statusQuery)).replicas !== n) await new Promise((res) => setTimeout(res, 200));
      };
      // Three clients in a loop: about three requests in flight, one per replica wanted → 2 (the bound).
      const key = (await fs.readFile(new LocalLayout(name).apiKeyFile, 'utf8')).trim();
      const endpoint = (await handle.query(statusQuery)).endpoint!;
      const body = await fs.readFile(r.red.path);
      let stop = false;
      const loop = Promise.all(
        Array.from({ length: 3 }, async () => {
          while (!stop) {
            const res = await fetch(`${endpoint}/score`, {
              method: 'POST',
              headers: { authorization: `Bearer ${key}` },
              body,
            });
            await res.arrayBuffer();
          }
        }),
      );
      await replicas(2);
      stop = true;
      await loop;
      await replicas(1);
      await handle.executeUpdate(autoscaleUpdate, { args: [{ minReplicas: 2, maxReplicas: 2 }] });
      await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'recorded' }] });
      await handle.result();
      return handle.workflowId;
    },
  },
  'deploy-rollback.json': {
    run: async (r) => {
      const handle = await startDeploy(r, { name: 'recorded-rollback', ttlSeconds: null });
      await servingOf(handle);
      const labels = path.join(r.scratch, 'reversed-labels.txt');
      await fs.writeFile(
        labels,
        (await fs.readFile(r.assets.labelsPath, 'utf8')).trim().split('\n').reverse().join('\n'),
      );
      const refused = await handle
        .executeUpdate(rolloutUpdate, { args: [{ modelPath: r.assets.modelPath, labelsPath: labels, bakeSeconds: 1 }] })
        .then(
          () => false,
          () => true,
        );
      if (!refused) throw new Error('the rollout with reversed labels was expected to roll back');
      await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'recorded' }] });
      await handle.result();
      return handle.workflowId;
    },
  },
  'deploy-continued.json': {
    run: async (r) => {
      const handle = await startDeploy(r, {
        name: 'recorded-continued',
        ttlSeconds: 600,
        idleTtlSeconds: 3600,
        historyEventsPerRun: 50,
      });
      await servingOf(handle);
      for (let i = 0; (await handle.describe()).runId === handle.firstExecutionRunId; i++) {
        if (i >= 30) throw new Error('the deployment was expected to continue as new');
        await handle.executeUpdate(extendUpdate, { args: [{ seconds: 1200 }] });
      }
      await handle.executeUpdate(scaleUpdate, { args: [{ replicas: 2 }] });
      await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'recorded' }] });
      await handle.result();
      return handle.workflowId; // `temporal workflow show` shows its latest run: the continued one
    },
  },
  'batch-score.json': {
    run: async (r) => {
      const handle = await r.client.workflow.start(batchScore, {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: batchWorkflowId('recorded'),
        args: [await batchJob(r, 'recorded', path.join(r.scratch, 'out'))],
      });
      await handle.result();
      return handle.workflowId;
    },
  },
  'batch-scheduled.json': {
    run: async (r) => {
      const schedule = await r.client.schedule.create({
        scheduleId: 'recorded-nightly',
        spec: { intervals: [{ every: '365 days' }] },
        action: {
          type: 'startWorkflow',
          workflowType: batchScore,
          args: [await batchJob(r, 'recorded-nightly', path.join(r.scratch, 'nightly', '{date}'))],
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: batchWorkflowId('recorded-nightly'),
        },
        state: { paused: true },
      });
      try {
        await schedule.trigger();
        let workflowId: string | undefined;
        while (!workflowId) {
          workflowId = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId;
          await new Promise((res) => setTimeout(res, 200));
        }
        await r.client.workflow.getHandle(workflowId).result();
        return workflowId;
      } finally {
        await schedule.delete();
      }
    },
  },
  'deploy-aks.json': {
    aks: true,
    run: (r) =>
      runDeploy(r, {
        name: 'recorded-aks',
        target: 'aks',
        ttlSeconds: 1,
        timings: { readyTimeoutSeconds: 90, readinessPollSeconds: 0.2 },
      }),
  },
  'janitor.json': {
    aks: true,
    run: async (r) => {
      const handle = await r.client.workflow.start(janitor, {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: 'recorded-janitor',
        args: [{}],
      });
      const report = await handle.result();
      if (report.deleted.length === 0) throw new Error('the janitor was expected to delete the stale image');
      return handle.workflowId;
    },
  },
};

function startDeploy(r: Recorder, input: Partial<DeployInput> & Pick<DeployInput, 'name' | 'ttlSeconds'>) {
  return r.client.workflow.start(deploy, {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: deployWorkflowId(input.name),
    args: [
      {
        modelPath: r.assets.modelPath,
        target: 'local',
        replicas: 1,
        smoke: { samplePath: r.red.path, expectedLabel: 'red' },
        ...input,
      },
    ],
  });
}

async function runDeploy(r: Recorder, input: Parameters<typeof startDeploy>[1]): Promise<string> {
  const handle = await startDeploy(r, input);
  await handle.result();
  return handle.workflowId;
}

async function servingOf(handle: Awaited<ReturnType<typeof startDeploy>>): Promise<void> {
  while ((await handle.query(statusQuery)).stage !== 'serving') await new Promise((res) => setTimeout(res, 200));
}

async function batchJob(r: Recorder, name: string, outputDir: string): Promise<BatchScoreInput> {
  const images = path.join(r.scratch, 'images');
  await writeSampleImages(images, 12);
  return {
    name,
    modelPath: r.assets.modelPath,
    inputPath: images,
    outputDir,
    shardSize: 5,
    batchSize: 4,
    maxShardsInFlight: 2,
    errorThreshold: -1,
    topK: 2,
  };
}

async function main(): Promise<number> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((f) => !(f in RECORDINGS));
  if (unknown.length > 0) {
    console.error(`No recording named ${unknown.join(', ')}; known: ${Object.keys(RECORDINGS).join(', ')}`);
    return 2;
  }
  const files = Object.keys(RECORDINGS).filter((f) => wanted.length === 0 || wanted.includes(f));
  const aks = files.some((f) => RECORDINGS[f]!.aks);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-record-'));
  // The aks testbed serves HTTPS with a certificate of its own, which Node trusts only from its start.
  if (aks && !process.env.INFERCTL_TEST_TLS_KEY) {
    await buildKubernetesTools((l) => console.error(l));
    const tls = ensureTestTls(path.join(scratch, 'tls'));
    const env = { ...process.env, ...testTlsEnv(tls, path.join(scratch, 'tls')) };
    const status = spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit', env }).status ?? 1;
    await fs.rm(scratch, { recursive: true, force: true });
    return status;
  }

  installWorkerRuntime({ logLevel: 'WARN' });
  process.env.INFERCTL_HOME = path.join(scratch, 'home');
  const server = await startDevServer({ dataDir: path.join(scratch, 'temporal'), headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let bed: AksTestbed | undefined;
  let stop!: () => void;
  const until = new Promise<void>((r) => (stop = r));
  let workers: Promise<unknown> = Promise.resolve();
  let connection: Connection | undefined;
  try {
    if (aks) {
      bed = await startAksTestbed();
      // The janitor deletes an image as soon as no Deployment runs it.
      Object.assign(process.env, bed.workerEnv(), { INFERCTL_JANITOR_IMAGE_GRACE_MS: '1' });
    }
    workers = Promise.all([
      runControlWorker({ until }),
      runGpuWorker({ until, execution: { executionProvider: 'cpu', allowCpuFallback: false } }),
    ]);
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const assets = await ensureDemoAssets(path.join(scratch, 'assets'));
    const recorder: Recorder = { client, scratch, assets, red: assets.samples.find((s) => s.label === 'red')! };
    await fs.mkdir(FIXTURES, { recursive: true });
    // The Temporal CLI's JSON export: the format the Web UI downloads and historyFromJSON reads.
    const cli = await findTemporalCli();
    for (const file of files) {
      const workflowId = await RECORDINGS[file]!.run(recorder);
      const { stdout } = await execFileAsync(
        cli,
        ['workflow', 'show', '--workflow-id', workflowId, '--address', server.address, '--output', 'json'],
        { maxBuffer: 64 << 20 },
      );
      await fs.writeFile(path.join(FIXTURES, file), stdout);
      console.log(`recorded ${path.join('test/fixtures/histories', file)}`);
    }
    return 0;
  } finally {
    await connection?.close();
    stop();
    await workers;
    await bed?.stop();
    await server.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
