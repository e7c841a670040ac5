/**
 * `npm run demo`: the whole story on one machine, no cloud account needed.
 * Starts a Temporal dev server (Web UI included) and a control worker, generates a small real ONNX
 * classifier and sample images, deploys two replicas on the local target, smoke-queries them, serves
 * for a few seconds, tears everything down, and checks that no process was left behind.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Client, Connection } from '@temporalio/client';

import { deployCommand } from '../src/cli/commands/deploy';
import { createOutput } from '../src/cli/output';
import { ensureDemoAssets } from '../src/demo/demo-assets';
import { inferctlHome } from '../src/paths';
import { LocalLayout } from '../src/targets/local/layout';
import { findProcessesByMarker } from '../src/targets/local/processes';
import { portIsFree, startDevServer } from '../src/temporal/dev-server';
import type { DevServer } from '../src/temporal/dev-server';
import { runControlWorker } from '../worker/control';
import { installWorkerRuntime } from '../worker/runtime';

async function main(): Promise<void> {
  const home = inferctlHome();
  // The terminal shows the steps; the worker's log lines (the SDK's and inferctl's) go to this file.
  const logFile = path.join(home, 'demo-worker.log');
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(logFile, '');
  installWorkerRuntime({ logLevel: 'INFO', logFile });
  const out = createOutput(false);
  const say = (text: string) => out.line(`\x1b[1m==> ${text}\x1b[0m`);
  out.line(`    worker log: ${logFile}`);

  let server: DevServer | undefined;
  if (process.env.TEMPORAL_ADDRESS) {
    say(`Using the Temporal server at ${process.env.TEMPORAL_ADDRESS}`);
  } else {
    say('Starting a Temporal dev server (the first run builds the Temporal CLI with Go, a few minutes)');
    const defaults = (await portIsFree(7233)) && (await portIsFree(8233));
    server = await startDevServer({
      dataDir: path.join(home, 'dev'),
      port: defaults ? 7233 : undefined,
      uiPort: defaults ? 8233 : undefined,
      buildCli: true,
      logFile: path.join(home, 'dev', 'temporal.log'),
    });
    process.env.TEMPORAL_ADDRESS = server.address;
    if (server.uiUrl) process.env.INFERCTL_UI_URL = server.uiUrl;
    out.line(`    Temporal ${server.address}, Web UI ${server.uiUrl}`);
  }

  try {
    say('Generating a small ONNX colour classifier and sample JPEGs');
    const assets = await ensureDemoAssets(path.join(home, 'demo-assets'));
    const sample = assets.samples.find((s) => s.label === 'red') ?? assets.samples[0]!;
    out.line(`    model ${assets.modelPath}\n    sample ${sample.path} (expected "${sample.label}")`);

    say(`Starting the control worker (its log: ${logFile})`);
    let stopWorker!: () => void;
    const workerStopped = new Promise<void>((resolve) => (stopWorker = resolve));
    const worker = runControlWorker({ until: workerStopped });

    const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    const client = new Client({ connection, namespace });
    const name = `demo-${Date.now().toString(36)}`;
    try {
      say(`Deploying "${name}": 2 replicas on the local target, smoke query, serve 5 s, teardown`);
      const result = await deployCommand(
        { client, namespace, out },
        {
          modelPath: assets.modelPath,
          name,
          target: 'local',
          replicas: 2,
          ttlSeconds: 5,
          smokeSample: sample.path,
          expectLabel: sample.label,
          follow: 'end',
        },
      );

      const left = await findProcessesByMarker(new LocalLayout(name).processMarker);
      if (left.length > 0) throw new Error(`Processes left behind: ${left.join(', ')}`);
      say('Done. No replica process was left behind.');
      out.line(`    Web UI for this run: ${result.uiUrl}`);
      out.line(`    The worker's log: ${logFile}`);
      if (server) {
        out.line(`    The dev server stops now; its history is kept. Browse it again with:`);
        out.line(`      npx inferctl dev --data-dir ${path.join(home, 'dev')}   # then open the link above`);
      }
    } finally {
      stopWorker();
      await worker;
      await connection.close();
    }
  } finally {
    await server?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
