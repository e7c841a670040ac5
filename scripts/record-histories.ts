/**
 * `npm run record-histories [-- <file>...]`: records the histories the replay test checks every workflow
 * change against (test/fixtures/histories/). Runs a deploy (TTL ends it), a deploy steered by Updates
 * (extend, scale, rollout, ended by its idle TTL) and a batch job end to end on a private dev server with the real
 * workers; given file names (e.g. `deploy-updates.json`), it writes only those. Re-record only for a new
 * workflow shape; keep the old files, so that workflows started on older code keep replaying (changes
 * that alter their commands are guarded with patched()).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Client, Connection } from '@temporalio/client';

import { writeSampleImages } from '../src/demo/sample-images';
import { ensureDemoAssets } from '../src/demo/demo-assets';
import { batchWorkflowId } from '../src/shared/batch-types';
import { deployWorkflowId } from '../src/shared/deploy-types';
import { findTemporalCli } from '../src/temporal/cli-binary';
import { startDevServer } from '../src/temporal/dev-server';
import { batchScore } from '../workflows/batch-score';
import { deploy, extendUpdate, rolloutUpdate, scaleUpdate, statusQuery } from '../workflows/deploy';
import { runControlWorker } from '../worker/control';
import { runGpuWorker } from '../worker/gpu';
import { installWorkerRuntime } from '../worker/runtime';

const execFileAsync = promisify(execFile);
const FIXTURES = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'histories');

async function main(): Promise<void> {
  installWorkerRuntime({ logLevel: 'WARN' });
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-record-'));
  process.env.INFERCTL_HOME = path.join(scratch, 'home');
  const server = await startDevServer({ dataDir: path.join(scratch, 'temporal'), headless: true, buildCli: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  let stop!: () => void;
  const until = new Promise<void>((r) => (stop = r));
  const control = runControlWorker({ until });
  const gpu = runGpuWorker({ until, execution: { executionProvider: 'cpu', allowCpuFallback: false } });
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const assets = await ensureDemoAssets(path.join(scratch, 'assets'));
    const red = assets.samples.find((s) => s.label === 'red')!;
    const deployed = await client.workflow.start(deploy, {
      taskQueue: 'inferctl-control',
      workflowId: deployWorkflowId('recorded'),
      args: [
        {
          name: 'recorded',
          modelPath: assets.modelPath,
          target: 'local',
          replicas: 1,
          ttlSeconds: 1,
          smoke: { samplePath: red.path, expectedLabel: 'red' },
        },
      ],
    });
    await deployed.result();
    const steered = await client.workflow.start(deploy, {
      taskQueue: 'inferctl-control',
      workflowId: deployWorkflowId('recorded-updates'),
      args: [
        {
          name: 'recorded-updates',
          modelPath: assets.modelPath,
          target: 'local',
          replicas: 1,
          ttlSeconds: 600,
          idleTtlSeconds: 3,
          smoke: { samplePath: red.path, expectedLabel: 'red' },
        },
      ],
    });
    while ((await steered.query(statusQuery)).stage !== 'serving') await new Promise((r) => setTimeout(r, 200));
    await steered.executeUpdate(extendUpdate, { args: [{ seconds: 1200 }] });
    await steered.executeUpdate(scaleUpdate, { args: [{ replicas: 2 }] });
    await steered.executeUpdate(rolloutUpdate, {
      args: [{ modelPath: assets.modelPath, canaryPercent: 50, bakeSeconds: 1 }],
    });
    await steered.result();
    const images = path.join(scratch, 'images');
    await writeSampleImages(images, 12);
    const scored = await client.workflow.start(batchScore, {
      taskQueue: 'inferctl-control',
      workflowId: batchWorkflowId('recorded'),
      args: [
        {
          name: 'recorded',
          modelPath: assets.modelPath,
          inputPath: images,
          outputDir: path.join(scratch, 'out'),
          shardSize: 5,
          batchSize: 4,
          maxShardsInFlight: 2,
          errorThreshold: -1,
          topK: 2,
        },
      ],
    });
    await scored.result();
    await fs.mkdir(FIXTURES, { recursive: true });
    // The Temporal CLI's JSON export: the format the Web UI downloads and historyFromJSON reads.
    const cli = await findTemporalCli();
    const wanted = process.argv.slice(2);
    for (const [file, workflowId] of [
      ['deploy.json', deployed.workflowId],
      ['deploy-updates.json', steered.workflowId],
      ['batch-score.json', scored.workflowId],
    ] as const) {
      if (wanted.length > 0 && !wanted.includes(file)) continue;
      const { stdout } = await execFileAsync(
        cli,
        ['workflow', 'show', '--workflow-id', workflowId, '--address', server.address, '--output', 'json'],
        { maxBuffer: 64 << 20 },
      );
      await fs.writeFile(path.join(FIXTURES, file), stdout);
      console.log(`recorded ${path.join('test/fixtures/histories', file)}`);
    }
  } finally {
    await connection.close();
    stop();
    await Promise.all([control, gpu]);
    await server.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
