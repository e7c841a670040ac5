/**
 * `inferctl deploy`: starts the deploy workflow and follows it step by step; with `--target aks --dry-run`
 * prints what it would create and what that costs an hour, and creates nothing.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';

import { deploy, statusQuery } from '../../../workflows/deploy';
import { DEFAULT_GPU_VM_SIZE } from '../../targets/aks/gpu-sizes';
import { TARGET_TIMINGS } from '../../shared/deploy-timings';
import { CONTROL_TASK_QUEUE, deployWorkflowId } from '../../shared/deploy-types';
import type { DeployInput, DeployOutcome, DeployStatus } from '../../shared/deploy-types';
import type { AksDeploymentOptions, TargetKind } from '../../shared/target-types';
import { aksDryRun, formatDryRun } from '../../targets/aks/dry-run';
import type { DryRunReport } from '../../targets/aks/dry-run';
import { webUiUrl } from '../../temporal/connection';
import { DeploymentName, InferctlKind, ModelName, Stage, Target } from '../../shared/search-attributes';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { duration, int } from '../flag-parsers';
import { PREPROCESS_HELP, preprocessFlag } from '../preprocess-flag';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import { checkEndpointFlags, describeTls, endpointOptions, writeCa } from '../endpoint-flags';
import { AKS_HELP } from '../help-text';
import { startIndexed } from '../start-workflow';
import { formatDuration } from '../../shared/duration';
import { createOutput, describeFailure, type Output } from '../output';
import { ResultWatch } from '../result-watch';

/** `inferctl deploy`: flags in, `deployCommand` (or `deployDryRunCommand`) out. */
export function addDeployCommand(program: Command): void {
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
    .option('--preprocess <preset|file.json>', PREPROCESS_HELP)
    .option('--labels <file>', "labels, one per line in output order (over the model's own)")
    .option('--smoke-sample <image>', 'JPEG/PNG to POST once the deployment is ready')
    .option('--expect-label <label>', 'fail (and tear down) unless the smoke answer’s top label is this')
    .option(
      '--ready-timeout <duration>',
      `how long replicas may take to become ready (default: ${formatDuration(TARGET_TIMINGS.local.readyTimeoutSeconds * 1000)} on local, ${formatDuration(TARGET_TIMINGS.aks.readyTimeoutSeconds * 1000)} on aks)`,
      duration('--ready-timeout'),
    )
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .option('--detach', 'start and return at once')
    .option('--follow', 'follow until the deployment has been torn down (default: until it serves)')
    .option('--json', 'print one JSON document')
    .option('--dry-run', 'aks: print the resources it would create and their hourly cost; create nothing')
    .option('--cluster <name>', 'aks: deploy into this existing cluster (never deleted) instead of creating one')
    .option('--resource-group <name>', 'aks: resource group (default: the worker’s INFERCTL_AKS_RESOURCE_GROUP)')
    .option('--create-resource-group', 'aks: create the resource group if missing, and delete it at teardown')
    .option('--gpu-vm-size <size>', 'aks: GPU node VM size', DEFAULT_GPU_VM_SIZE)
    .option('--gpu-nodes <n>', 'aks: GPU nodes (default: one per replica)', int('--gpu-nodes', 1))
    .option(
      '--internal',
      'aks: internal load balancer (a private VNet address; HTTP inside it unless given a certificate)',
    )
    .option('--insecure-http', 'aks: plain HTTP on the public IP, the key in clear (default: HTTPS)')
    .option('--tls-cert <file>', 'aks: your certificate chain (PEM, on the worker) instead of a per-deployment one')
    .option('--tls-key <file>', 'aks: the key of --tls-cert (PEM, on the worker)')
    .option('--tls-secret <name>', 'aks, with --cluster: your kubernetes.io/tls Secret in namespace inferctl-<name>')
    .option('--tls-ca-out <file>', 'aks: write the deployment’s CA certificate (PEM) here, for clients to trust')
    .addHelpText('after', AKS_HELP)
    .action(async (o) => {
      const aks = aksOptions(o);
      checkEndpointFlags(o.target, aks, o);
      if (o.dryRun) {
        const out = createOutput(Boolean(o.json));
        await deployDryRunCommand(
          { out },
          {
            target: o.target,
            modelPath: o.model,
            name: o.name,
            replicas: o.replicas,
            ttlSeconds: o.ttl,
            topK: o.topK,
            aks,
          },
        );
        return;
      }
      const preprocess = o.preprocess ? preprocessFlag(o.preprocess) : undefined;
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await deployCommand(ctx, {
          modelPath: o.model,
          name: o.name,
          target: o.target,
          replicas: o.replicas,
          ttlSeconds: o.ttl,
          topK: o.topK,
          preprocess,
          labelsPath: o.labels,
          smokeSample: o.smokeSample,
          expectLabel: o.expectLabel,
          readyTimeoutSeconds: o.readyTimeout,
          aks: o.target === 'aks' ? aks : undefined,
          tlsCaOut: o.tlsCaOut,
          taskQueue: o.taskQueue,
          follow: o.detach ? 'detach' : o.follow ? 'end' : 'serving',
        });
        ctx.out.result(result);
      });
    });
}

/** The aks choices given on the command line; only what differs from the worker's defaults. */
function aksOptions(o: {
  cluster?: string;
  resourceGroup?: string;
  createResourceGroup?: true;
  gpuVmSize: string;
  gpuNodes?: number;
  internal?: true;
  insecureHttp?: true;
  tlsCert?: string;
  tlsKey?: string;
  tlsSecret?: string;
}): AksDeploymentOptions {
  const aks: AksDeploymentOptions = {};
  if (o.cluster) aks.cluster = o.cluster;
  if (o.resourceGroup) aks.resourceGroup = o.resourceGroup;
  if (o.createResourceGroup) aks.createResourceGroup = true;
  if (o.gpuVmSize && o.gpuVmSize !== DEFAULT_GPU_VM_SIZE) aks.gpuVmSize = o.gpuVmSize;
  if (o.gpuNodes) aks.gpuNodeCount = o.gpuNodes;
  return { ...aks, ...endpointOptions(o) };
}

export interface DeployDryRunOptions {
  target: TargetKind;
  modelPath: string;
  name?: string;
  replicas: number;
  /** Priced as well as the hour: what the deployment costs if it serves its whole TTL. */
  ttlSeconds: number;
  topK: number;
  aks: AksDeploymentOptions;
}

/** `deploy --target aks --dry-run`: needs neither Temporal nor Azure, and creates nothing. */
export async function deployDryRunCommand(
  ctx: Pick<CommandContext, 'out'>,
  opts: DeployDryRunOptions,
): Promise<DryRunReport> {
  if (opts.target !== 'aks') throw new CliError('--dry-run is for --target aks (local deployments cost nothing).', 2);
  const modelPath = path.resolve(opts.modelPath);
  if (!fs.existsSync(modelPath) || !fs.statSync(modelPath).isFile()) {
    throw new CliError(`Model not found: ${modelPath}. Pass the ONNX file to deploy with --model.`, 2);
  }
  const report = await aksDryRun({
    name: opts.name ?? nameFromModel(modelPath),
    modelPath,
    replicas: opts.replicas,
    ttlSeconds: opts.ttlSeconds,
    topK: opts.topK,
    aks: opts.aks,
  });
  ctx.out.line(formatDryRun(report));
  ctx.out.result(report);
  return report;
}

export interface DeployCommandOptions {
  modelPath: string;
  name?: string;
  target: TargetKind;
  replicas: number;
  ttlSeconds: number;
  topK?: number;
  /** --preprocess, read and checked (preprocessFlag); fitted to the model at validate. */
  preprocess?: PreprocessConfig;
  /** --labels, as typed; made absolute here. */
  labelsPath?: string;
  smokeSample?: string;
  expectLabel?: string;
  readyTimeoutSeconds?: number;
  /** Choices for the aks target. */
  aks?: AksDeploymentOptions;
  /** Write the deployment's CA certificate (PEM) here once provisioning made it. */
  tlsCaOut?: string;
  taskQueue?: string;
  /** 'detach': return once started; 'serving': follow until it serves (default); 'end': follow until torn down. */
  follow: 'detach' | 'serving' | 'end';
}

export interface DeployCommandResult {
  workflowId: string;
  runId: string;
  uiUrl: string;
  status?: DeployStatus | DeployOutcome;
}

export async function deployCommand(ctx: CommandContext, opts: DeployCommandOptions): Promise<DeployCommandResult> {
  const modelPath = path.resolve(opts.modelPath);
  const name = opts.name ?? nameFromModel(modelPath);
  const input: DeployInput = {
    name,
    modelPath,
    target: opts.target,
    replicas: opts.replicas,
    ttlSeconds: opts.ttlSeconds,
    topK: opts.topK,
    ...(opts.preprocess ? { preprocess: opts.preprocess } : {}),
    ...(opts.labelsPath ? { labelsPath: path.resolve(opts.labelsPath) } : {}),
    smoke: opts.smokeSample
      ? { samplePath: path.resolve(opts.smokeSample), expectedLabel: opts.expectLabel }
      : undefined,
    // Only what the user chose: the workflow fills in the rest from the per-target timing table.
    ...(opts.readyTimeoutSeconds ? { timings: { readyTimeoutSeconds: opts.readyTimeoutSeconds } } : {}),
    ...(opts.aks && Object.keys(opts.aks).length > 0 ? { aks: opts.aks } : {}),
  };
  if (opts.expectLabel && !opts.smokeSample) {
    throw new CliError('--expect-label needs --smoke-sample: the label is checked against the sample’s answer.', 2);
  }
  if (!fs.existsSync(modelPath)) {
    ctx.out.note(`note: ${modelPath} does not exist here; the worker will check its own filesystem.`);
  }

  const workflowId = deployWorkflowId(name);
  let handle: WorkflowHandleWithFirstExecutionRunId;
  try {
    handle = await startIndexed(
      ctx.client,
      deploy,
      {
        taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
        workflowId,
        args: [input],
        staticSummary: `Deploy ${path.basename(modelPath)} as "${name}" on ${opts.target} (${opts.replicas} replica(s), TTL ${formatDuration(opts.ttlSeconds * 1000)})`,
        staticDetails: [
          `- **Model:** ${modelPath}`,
          `- **Target:** ${opts.target}`,
          `- **Replicas:** ${opts.replicas}`,
          `- **Smoke sample:** ${input.smoke ? `${input.smoke.samplePath}${input.smoke.expectedLabel ? ` (expect "${input.smoke.expectedLabel}")` : ''}` : 'none'}`,
        ].join('\n'),
      },
      [
        { key: InferctlKind, value: 'deploy' },
        { key: DeploymentName, value: name },
        { key: ModelName, value: path.basename(modelPath) },
        { key: Target, value: opts.target },
        { key: Stage, value: 'validating' },
      ],
      ctx.out,
    );
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(
        `A deployment named "${name}" is already running (workflow ${workflowId}). ` +
          `Pick another --name, or tear it down first: inferctl teardown ${name}`,
      );
    }
    throw err;
  }

  const uiUrl = webUiUrl({ namespace: ctx.namespace, workflowId, runId: handle.firstExecutionRunId });
  const runId = handle.firstExecutionRunId;
  ctx.out.line(`Started ${workflowId} (run ${runId})`);
  ctx.out.line(`Web UI: ${uiUrl}`);
  if (opts.follow === 'detach') return { workflowId, runId, uiUrl };

  const status = await followDeployment(handle, opts.follow, ctx.out, opts.taskQueue ?? CONTROL_TASK_QUEUE);
  if (opts.tlsCaOut) writeCa(opts.tlsCaOut, status, ctx.out);
  return { workflowId, runId, uiUrl, status };
}

/**
 * The local target's defaults fit seconds-long steps. A cloud GPU rollout pulls a multi-gigabyte CUDA image
 * onto fresh nodes, so aks waits up to 20 minutes for readiness and a minute between heartbeats.
 */

/** Derives a valid deployment name from a model file name: `ResNet_50.onnx` → `resnet-50`. */
export function nameFromModel(modelPath: string): string {
  const base = path
    .basename(modelPath, path.extname(modelPath))
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return base || 'model';
}

/**
 * Polls the `status` query and prints each step as it starts and ends. Returns the status once the
 * deployment serves (mode 'serving') or the workflow's outcome once it has ended (mode 'end').
 */
export async function followDeployment(
  handle: WorkflowHandle,
  mode: 'serving' | 'end',
  out: Output,
  taskQueue: string,
): Promise<DeployStatus | DeployOutcome> {
  const watch = new ResultWatch<DeployOutcome>(handle);

  const printed = new Map<number, 'started' | 'ended'>();
  const startedAt = Date.now();
  let hinted = false;
  let last: DeployStatus | undefined;
  for (;;) {
    if (!watch.ended) {
      try {
        last = await handle.query(statusQuery);
      } catch {
        if (!hinted && Date.now() - startedAt > 5000) {
          out.note(`Waiting for a control worker on task queue "${taskQueue}". Start one with: inferctl worker`);
          hinted = true;
        }
      }
    }
    if (last) printSteps(last, printed, out);
    if (watch.ended) break;
    if (mode === 'serving' && last?.stage === 'serving') {
      printServing(last, out);
      return last;
    }
    await watch.pause(300);
  }

  const outcome = watch.outcome;
  if (outcome) {
    printSteps(outcome, printed, out);
    if (outcome.smoke) printServing({ ...outcome, endpoint: undefined, expiresAt: undefined }, out);
    if (outcome.endpoint) out.line(`Served at ${outcome.endpoint} until the teardown.`);
    out.line(
      `Torn down (${outcome.endedBy === 'ttl' ? 'TTL ended' : 'teardown requested'}): ${outcome.teardownRemoved?.length ?? 0} resource(s) removed.`,
    );
    return outcome;
  }
  throw new CliError(describeFailure(watch.failure));
}

function printSteps(status: DeployStatus, printed: Map<number, 'started' | 'ended'>, out: Output): void {
  status.steps.forEach((step, i) => {
    const state = printed.get(i);
    if (step.ok === undefined) {
      if (state === undefined && step.step !== 'serve') out.line(`  … ${step.step}`);
      if (state === undefined) printed.set(i, 'started');
      return;
    }
    if (state === 'ended') return;
    const mark = step.ok ? '✔' : '✘';
    const took = step.durationMs !== undefined ? ` (${formatDuration(step.durationMs)})` : '';
    out.line(`  ${mark} ${step.step}${took}${step.detail ? `: ${step.detail}` : ''}`);
    printed.set(i, 'ended');
  });
}

function printServing(status: DeployStatus, out: Output): void {
  if (status.smoke) {
    const answer = status.smoke.predictions
      .slice(0, 3)
      .map((p) => `${p.label} ${p.score.toFixed(3)}`)
      .join(', ');
    out.line(`Smoke answer: ${answer} (${status.smoke.latencyMs} ms)`);
  }
  if (status.endpoint) out.line(`Endpoint: POST ${status.endpoint}/score  (key: ${status.apiKeyRef ?? 'see target'})`);
  if (status.tls) out.line(describeTls(status.tls));
  if (status.expiresAt) out.line(`Serving until ${status.expiresAt}. Stop sooner: inferctl teardown ${status.name}`);
}
