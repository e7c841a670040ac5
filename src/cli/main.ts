/**
 * The `inferctl` command line. Each command is an exported async function taking an options object;
 * this file only parses flags, connects, and maps errors to exit codes (0 ok, 1 failed, 2 bad usage).
 */
import fs from 'node:fs';
import path from 'node:path';

import { Command, CommanderError, Option } from 'commander';

import { InvalidInputError } from '../errors';
import { inferctlHome, packageRoot } from '../paths';
import { GPU_TASK_QUEUE } from '../shared/batch-types';
import { CONTROL_TASK_QUEUE, DEPLOY_STAGES } from '../shared/deploy-types';
import { CliError } from './cli-error';
import { deployCommand, nameFromModel } from './commands/deploy';
import { janitorCommand } from './commands/janitor';
import { AKS_ENVIRONMENT } from '../targets/aks/aks-config';
import { aksDryRun, formatDryRun } from '../targets/aks/dry-run';
import type { AksDeploymentOptions } from '../shared/target-types';
import { JANITOR_SCHEDULE_ID } from '../shared/janitor-types';
import { scoreCommand, scoreStatusCommand } from './commands/score';
import { extendCommand, listCommand, statusCommand, teardownCommand } from './commands/deployments';
import { codecServerCommand } from './commands/codec-server';
import { devCommand } from './commands/dev';
import { addBatchJobOptions, batchJobFlags } from './batch-flags';
import { withClient } from './client-context';
import { duration, int } from './flag-parsers';
import { addScheduleCommands } from './schedule-program';
import type * as ControlWorkerModule from '../../worker/control';
import type * as GpuWorkerModule from '../../worker/gpu';
import type { GpuWorkerFlags } from '../../worker/gpu';

const ENV_HELP = `
Temporal connection (client and workers alike), from the SDK's environment configuration:
  TEMPORAL_ADDRESS     host:port of the frontend (default localhost:7233, as started by \`inferctl dev\`)
  TEMPORAL_NAMESPACE   namespace (default "default")
  TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE   for Temporal Cloud or TLS clusters
  INFERCTL_UI_URL      base URL of the Temporal Web UI used in printed links (default http://localhost:8233)
  INFERCTL_HOME        where local deployments keep their state (default ~/.inferctl)`;

const AKS_HELP = `
The aks target (the control worker's environment, not this command's, except for --dry-run):
${AKS_ENVIRONMENT.map(([name, what]) => `  ${name.padEnd(28)} ${what}`).join('\n')}
  Azure sign-in: DefaultAzureCredential (az login, a service principal in AZURE_CLIENT_ID/SECRET/TENANT_ID,
  or a managed/workload identity). GPU clusters bill by the hour: see "Deploy to AKS" in the README.`;

function aksOptions(o: Record<string, unknown>): AksDeploymentOptions {
  const aks: AksDeploymentOptions = {};
  if (o.cluster) aks.cluster = o.cluster as string;
  if (o.resourceGroup) aks.resourceGroup = o.resourceGroup as string;
  if (o.createResourceGroup) aks.createResourceGroup = true;
  if (o.gpuVmSize && o.gpuVmSize !== 'Standard_NC6s_v3') aks.gpuVmSize = o.gpuVmSize as string;
  if (o.gpuNodes) aks.gpuNodeCount = o.gpuNodes as number;
  return aks;
}

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('inferctl')
    .description(
      'Deploy ONNX models as GPU web services and prove they answer, as durable Temporal workflows\n' +
        'that always tear down what they created.',
    )
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', ENV_HELP);

  program
    .command('deploy')
    .description('Deploy a model: provision → build image → deploy → wait → smoke query → serve for --ttl → teardown')
    .requiredOption('-m, --model <path>', 'ONNX image classifier to serve')
    .option(
      '-n, --name <name>',
      'deployment name (default: from the model file name); the workflow id is deploy-<name>',
    )
    .addOption(new Option('-t, --target <target>', 'where to deploy').choices(['local', 'aks']).default('local'))
    .option('-r, --replicas <n>', 'replicas to run', int('--replicas', 1), 1)
    .option(
      '--ttl <duration>',
      'serve this long after the smoke query, then tear down (e.g. 30m, 2h)',
      duration('--ttl'),
      3600,
    )
    .option('--top-k <n>', 'labels in each answer', int('--top-k', 1), 5)
    .option('--smoke-sample <image>', 'JPEG/PNG to POST once the deployment is ready')
    .option('--expect-label <label>', 'fail (and tear down) unless the smoke answer’s top label is this')
    .option('--ready-timeout <duration>', 'how long replicas may take to become ready', duration('--ready-timeout'))
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .option('--detach', 'start and return at once')
    .option('--follow', 'follow until the deployment has been torn down (default: until it serves)')
    .option('--json', 'print one JSON document')
    .option('--dry-run', 'aks: print the resources it would create and their hourly cost; create nothing')
    .option('--cluster <name>', 'aks: deploy into this existing cluster (never deleted) instead of creating one')
    .option('--resource-group <name>', 'aks: resource group (default: the worker’s INFERCTL_AKS_RESOURCE_GROUP)')
    .option('--create-resource-group', 'aks: create the resource group if missing, and delete it at teardown')
    .option('--gpu-vm-size <size>', 'aks: GPU node VM size', 'Standard_NC6s_v3')
    .option('--gpu-nodes <n>', 'aks: GPU nodes (default: one per replica)', int('--gpu-nodes', 1))
    .addHelpText('after', AKS_HELP)
    .action(async (o: Record<string, unknown>) => {
      const aks = aksOptions(o);
      if (o.dryRun) {
        if (o.target !== 'aks')
          throw new CliError('--dry-run is for --target aks (local deployments cost nothing).', 2);
        const model = path.resolve(o.model as string);
        if (!fs.existsSync(model) || !fs.statSync(model).isFile()) {
          throw new CliError(`Model not found: ${model}. Pass the ONNX file to deploy with --model.`, 2);
        }
        const report = await aksDryRun({
          name: (o.name as string | undefined) ?? nameFromModel(path.resolve(o.model as string)),
          modelPath: path.resolve(o.model as string),
          replicas: o.replicas as number,
          topK: o.topK as number,
          aks,
        });
        if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else process.stdout.write(formatDryRun(report) + '\n');
        return;
      }
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await deployCommand({
          ...ctx,
          modelPath: o.model as string,
          name: o.name as string | undefined,
          target: o.target as 'local' | 'aks',
          replicas: o.replicas as number,
          ttlSeconds: o.ttl as number,
          topK: o.topK as number,
          smokeSample: o.smokeSample as string | undefined,
          expectLabel: o.expectLabel as string | undefined,
          readyTimeoutSeconds: o.readyTimeout as number | undefined,
          aks: o.target === 'aks' ? aks : undefined,
          taskQueue: o.taskQueue as string,
          follow: o.detach ? 'detach' : o.follow ? 'end' : 'serving',
        });
        ctx.out.result(result);
      });
    });

  program
    .command('status <name>')
    .description('Show a deployment: stage, endpoint, per-step timings, last error, Web UI link')
    .option('--json', 'print one JSON document')
    .action(async (name: string, o: { json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => statusCommand(ctx, name));
    });

  program
    .command('list')
    .description('List running deployments (a Temporal visibility query)')
    .option('-a, --all', 'include ended deployments')
    .addOption(new Option('--stage <stage>', 'only deployments in this stage').choices(DEPLOY_STAGES))
    .addOption(new Option('--target <target>', 'only deployments on this target').choices(['local', 'aks']))
    .option('--limit <n>', 'at most this many', int('--limit', 1), 50)
    .option('--json', 'print one JSON document')
    .action(async (o: { all?: boolean; limit: number; stage?: string; target?: string; json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) =>
        listCommand(ctx, { all: Boolean(o.all), limit: o.limit, stage: o.stage, target: o.target }),
      );
    });

  program
    .command('teardown <name>')
    .description('Stop serving now and delete everything the deployment created')
    .option('--no-wait', 'return once the request is sent')
    .option('--reason <text>', 'recorded in the workflow log')
    .option('--json', 'print one JSON document')
    .action(async (name: string, o: { wait: boolean; reason?: string; json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => teardownCommand(ctx, name, { wait: o.wait, reason: o.reason }));
    });

  program
    .command('extend <name>')
    .description('Keep a deployment serving longer')
    .requiredOption('--ttl <duration>', 'serve at least this long from now (e.g. 30m)', duration('--ttl'))
    .option('--json', 'print one JSON document')
    .action(async (name: string, o: { ttl: number; json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => extendCommand(ctx, name, o.ttl));
    });

  program
    .command('worker')
    .description('Run the control worker (deploy workflows and their activities) until Ctrl-C')
    .option('--task-queue <queue>', 'task queue to poll', CONTROL_TASK_QUEUE)
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics on 127.0.0.1:<port>/metrics (default: INFERCTL_METRICS_PORT)',
      int('--metrics-port', 1),
    )
    .action(async (o: { taskQueue: string; metricsPort?: number }) => {
      // Loaded here, not at the top: the worker SDK is heavy and only this command needs it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { runControlWorker } = require('../../worker/control') as typeof ControlWorkerModule;
      await runControlWorker({
        taskQueue: o.taskQueue,
        metricsPort: o.metricsPort,
        onReady: ({ address, namespace, taskQueue }) =>
          process.stdout.write(
            `Control worker polling "${taskQueue}" on ${address} (namespace ${namespace}). Ctrl-C stops it.\n`,
          ),
      });
    });

  const score = addBatchJobOptions(
    program
      .command('score')
      .description('Score a directory or manifest of images with a model on the GPU workers, with a live progress bar'),
    'where predictions.jsonl, errors.jsonl and summary.json go',
  )
    .option('-n, --name <name>', 'job name; the workflow id is score-<name> (default: from the input and the time)')
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .option('--detach', 'start and return at once')
    .option('--json', 'print one JSON document')
    .action(async (o: Record<string, unknown>) => {
      const flags = batchJobFlags(o, 'score');
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await scoreCommand({
          ...ctx,
          ...flags,
          name: o.name as string | undefined,
          taskQueue: o.taskQueue as string,
          detach: Boolean(o.detach),
        });
        ctx.out.result(result);
      });
    });
  score
    .command('status <name>')
    .description('Show a batch job: progress while it runs, its summary or failure once it ended')
    .option('--json', 'print one JSON document')
    .action(async (name: string, o: { json?: boolean }) => {
      await withClient(Boolean(o.json), (ctx) => scoreStatusCommand(ctx, name));
    });

  program
    .command('gpu-worker')
    .description('Run a GPU scoring worker (batch shards, onnxruntime-node) until Ctrl-C')
    .option('--task-queue <queue>', 'task queue to poll', GPU_TASK_QUEUE)
    .option('--gpu', 'use the CUDA execution provider (CUDA 12 + cuDNN 9 and the CUDA provider install; see README)')
    .option('--device-id <n>', 'CUDA device', '0')
    .option('--allow-cpu-fallback', 'with --gpu: run on CPU when CUDA cannot load instead of failing')
    .option('--max-concurrent-shards <n>', 'shards this process scores at once', '2')
    .option('--intra-op-threads <n>', 'onnxruntime intra-op threads (default: onnxruntime decides)')
    .option('--graph-optimization <level>', 'disabled | basic | extended | all', 'all')
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics on 127.0.0.1:<port>/metrics (default: INFERCTL_METRICS_PORT)',
    )
    .action(async (o: GpuWorkerFlags) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const gpu = require('../../worker/gpu') as typeof GpuWorkerModule;
      await gpu.runGpuWorker({
        ...gpu.gpuWorkerOptions({ ...o, gpu: Boolean(o.gpu), allowCpuFallback: Boolean(o.allowCpuFallback) }),
        onReady: ({ address, namespace, taskQueue }) =>
          process.stdout.write(
            `GPU worker polling "${taskQueue}" on ${address} (namespace ${namespace}). Ctrl-C stops it.\n`,
          ),
      });
    });

  program
    .command('janitor')
    .description(
      'Delete AKS clusters and resource groups tagged inferctl-owner whose workflow is closed, terminated or unknown',
    )
    .option('--dry-run', 'list what would be deleted; delete nothing')
    .option(
      '--every <duration>',
      `run it on a Temporal Schedule (id ${JANITOR_SCHEDULE_ID}) this often instead of now`,
      duration('--every'),
    )
    .option('--task-queue <queue>', 'control worker task queue (its worker needs the aks settings)', CONTROL_TASK_QUEUE)
    .option('--json', 'print one JSON document')
    .addHelpText('after', AKS_HELP)
    .action(async (o: { dryRun?: boolean; every?: number; taskQueue: string; json?: boolean }) => {
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await janitorCommand(ctx, {
          dryRun: Boolean(o.dryRun),
          everySeconds: o.every,
          taskQueue: o.taskQueue,
        });
        ctx.out.result(result);
      });
    });

  addScheduleCommands(program);

  program
    .command('codec-server')
    .description('Decode encrypted payloads for the Web UI (payload encryption: INFERCTL_CODEC_KEYS) until Ctrl-C')
    .option('--port <port>', 'port to listen on', int('--port', 1), 8888)
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .option('--ui-origin <origin...>', 'Web UI origin(s) allowed to call it', [
      'http://localhost:8233',
      'http://127.0.0.1:8233',
    ])
    .action(async (o: { port: number; ip: string; uiOrigin: string[] }) => {
      await codecServerCommand({ port: o.port, ip: o.ip, allowedOrigins: o.uiOrigin });
    });

  program
    .command('dev')
    .description('Run a local Temporal dev server (SQLite file, Web UI, inferctl search attributes) until Ctrl-C')
    .option('--data-dir <dir>', 'where the SQLite file lives', path.join(inferctlHome(), 'dev'))
    .option('--port <port>', 'gRPC port', int('--port', 1), 7233)
    .option('--ui-port <port>', 'Web UI port', int('--ui-port', 1), 8233)
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .action(async (o: { dataDir: string; port: number; uiPort: number; ip: string }) => {
      await devCommand({ dataDir: path.resolve(o.dataDir), port: o.port, uiPort: o.uiPort, ip: o.ip });
    });

  for (const cmd of allCommands(program)) cmd.showHelpAfterError('(run with --help for usage)');
  return program;
}

/** A command and every command under it, at any depth. */
function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap((c) => allCommands(c))];
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Usage errors anywhere (subcommands of subcommands too) come back here to exit 2, not 1.
  for (const cmd of allCommands(program)) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      process.stderr.write(`inferctl: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof InvalidInputError) {
      process.stderr.write(`inferctl: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`inferctl: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`inferctl: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
