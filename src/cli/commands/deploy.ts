/**
 * `inferctl deploy`: starts the deploy workflow and follows it step by step; with `--target aks --dry-run`
 * prints what it would create and what that costs an hour, and creates nothing.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';

import { attachUpdate, deploy } from '../../../workflows/deploy';
import { DEFAULT_GPU_VM_SIZE } from '../../targets/aks/gpu-sizes';
import { TARGET_TIMINGS } from '../../shared/deploy-timings';
import { CONTROL_TASK_QUEUE, deployWorkflowId } from '../../shared/deploy-types';
import type { DeployInput, DeployOutcome, DeployStatus } from '../../shared/deploy-types';
import type { AksDeploymentOptions, TargetKind } from '../../shared/target-types';
import { webUiUrl } from '../../temporal/connection';
import { DeploymentName, InferctlKind, ModelName, Stage, Target } from '../../shared/search-attributes';
import { searchAttributeText } from '../../temporal/search-attribute-privacy';
import { CliError } from '../cli-error';
import { workflowFailureExitCode } from '../exit-codes';
import { nameFromModel } from '../deployment-name';
import { deployDryRunCommand } from './deploy-dry-run';
import { followDeployment } from './deploy-follow';
import { scriptDryRunFromFlags } from './script-dry-run';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { duration, durationOrNone, int, noneAsNull } from '../flag-parsers';
import { PREPROCESS_HELP, decodeOption, givenPreprocess } from '../preprocess-flag';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import { aksOptions } from '../aks-flags';
import { checkEndpointFlags, writeCa } from '../endpoint-flags';
import { AKS_HELP } from '../help-text';
import { startIndexed } from '../start-workflow';
import { formatDuration } from '../../shared/duration';
import { createOutput, describeFailure } from '../output';
import { addV2SmokeOptions, v2SmokeInput } from '../v2-smoke-flags';
import type { V2SmokeFlags } from '../v2-smoke-flags';
import { addScriptOptions, scriptFlags, scriptInput } from '../script-flags';
import type { ScriptFlags } from '../script-flags';
import { addScaleToZeroOptions } from '../scale-to-zero-flags';
import { jobLocation } from '../batch-flags';
import { isBlobLocation } from '../../storage/blob-location';
import { addBudgetOptions, costInput, dryRunCost } from '../budget-flags';
import { addAutoscaleOptions, replicaBounds } from '../autoscale-flags';
import type { ReplicaBounds } from '../autoscale-flags';

/** `inferctl deploy`: flags in, `deployCommand` (or `deployDryRunCommand`) out. */
export function addDeployCommand(program: Command): void {
  const command = program
    .command('deploy')
    .description('Deploy a model: provision → build image → deploy → wait → smoke query → serve for --ttl → teardown')
    .requiredOption(
      '-m, --model <path|az://…>',
      'ONNX model to serve: an image classifier, or any model on V2 only; with --entry-script, the file or folder your script loads (or a blob prefix az://<account>/<container>/<prefix>)',
    )
    .option(
      '-n, --name <name>',
      'deployment name (default: from the model file name); the workflow id is deploy-<name>',
    )
    .addOption(new Option('-t, --target <target>', 'where to deploy').choices(['local', 'aks']).default('local'))
    .option('-r, --replicas <n>', 'replicas to run', int('--replicas', 1), 1)
    .addOption(
      new Option(
        '--ttl <duration|none>',
        'serve this long after the smoke query, then tear down (e.g. 30m, 2h); none: until inferctl teardown',
      )
        .argParser(durationOrNone('--ttl'))
        .default(3600, '1h'),
    )
    .option(
      '--idle-ttl <duration>',
      'tear down after this long without a scoring request (read from the replicas’ request counters; local target)',
      duration('--idle-ttl'),
    )
    .option('--top-k <n>', 'labels in each answer', int('--top-k', 1), 5)
    .option('--preprocess <preset|file.json>', PREPROCESS_HELP)
    .addOption(decodeOption())
    .option('--labels <file>', "labels, one per line in output order (over the model's own)")
    .option('--smoke-sample <image>', 'JPEG/PNG to POST once the deployment is ready')
    .option('--expect-label <label>', 'fail (and tear down) unless the smoke answer’s top label is this');
  addAutoscaleOptions(addBudgetOptions(addScaleToZeroOptions(addScriptOptions(addV2SmokeOptions(command)))))
    .option(
      '--ready-timeout <duration>',
      `how long replicas may take to become ready (default: ${formatDuration(TARGET_TIMINGS.local.readyTimeoutSeconds * 1000)} on local, ${formatDuration(TARGET_TIMINGS.aks.readyTimeoutSeconds * 1000)} on aks)`,
      duration('--ready-timeout'),
    )
    .option('--task-queue <queue>', 'control worker task queue', CONTROL_TASK_QUEUE)
    .option('--detach', 'start and return at once')
    .option('--follow', 'follow until the deployment has been torn down (default: until it serves)')
    .option('--json', 'print one JSON document')
    .option(
      '--dry-run',
      'aks: print what it would create, the ARM requests and Kubernetes objects (in full with --json), and the cost per hour and for the TTL; create nothing',
    )
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
    .option(
      '--allow-from <cidr...>',
      'aks: admit only clients from these address ranges (CIDR, e.g. 203.0.113.0/24) at the load balancer',
    )
    .option('--tls-ca-out <file>', 'aks: write the deployment’s CA certificate (PEM) here, for clients to trust')
    .addHelpText('after', AKS_HELP)
    .action(async (o) => {
      const aks = aksOptions(o);
      checkEndpointFlags(o.target, aks, o);
      if (!o.entryScript && isBlobLocation(o.model)) {
        throw new CliError(
          `An az:// model is for a scoring script (--entry-script); download the ONNX model and pass its file (got ${o.model}).`,
          2,
        );
      }
      if (o.dryRun && o.entryScript) return void (await scriptDryRunFromFlags(o));
      if (o.dryRun) {
        await deployDryRunCommand(
          { out: createOutput(Boolean(o.json)) },
          {
            target: o.target,
            modelPath: o.model,
            name: o.name,
            replicas: o.replicas,
            ttlSeconds: noneAsNull(o.ttl) ?? undefined,
            topK: o.topK,
            preprocess: givenPreprocess(o.preprocess, o.decode),
            labelsPath: o.labels,
            aks,
            wakeTimeoutSeconds: replicaBounds(o, o.target, o.replicas).scaleToZero?.wakeTimeoutSeconds,
            ...dryRunCost(o),
          },
        );
        return;
      }
      const preprocess = givenPreprocess(o.preprocess, o.decode);
      const cost = costInput(o, o.target, o.minReplicas !== undefined, aks);
      const bounds = replicaBounds(o, o.target, o.replicas);
      await withClient(Boolean(o.json), async (ctx) => {
        const result = await deployCommand(ctx, {
          modelPath: o.model,
          name: o.name,
          target: o.target,
          replicas: bounds.replicas,
          ttlSeconds: noneAsNull(o.ttl),
          ...(o.idleTtl !== undefined ? { idleTtlSeconds: o.idleTtl } : {}),
          scaleToZero: bounds.scaleToZero,
          autoscale: bounds.autoscale,
          cost,
          topK: o.topK,
          preprocess,
          labelsPath: o.labels,
          smokeSample: o.smokeSample,
          expectLabel: o.expectLabel,
          protocol: o.protocol,
          smokeRequest: o.smokeRequest,
          smokeExpect: o.smokeExpect,
          smokeTolerance: o.smokeTolerance,
          ...scriptFlags(o),
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

/** `scaleToZero` and `autoscale`: --min-replicas, --target-concurrency and their companions (replicaBounds). */
export interface DeployCommandOptions extends V2SmokeFlags, ScriptFlags, Omit<ReplicaBounds, 'replicas'> {
  modelPath: string;
  name?: string;
  target: TargetKind;
  replicas: number;
  /** null: serve until teardown. */
  ttlSeconds: number | null;
  idleTtlSeconds?: number;
  cost?: ReturnType<typeof costInput>; // the price table, --budget and --on-budget
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
  // A script's model may be a blob prefix (checked and written canonically); anything else is a path here.
  const modelPath = opts.entryScript ? jobLocation(opts.modelPath) : path.resolve(opts.modelPath);
  const name = opts.name ?? nameFromModel(modelPath);
  const script = scriptInput(opts);
  const input: DeployInput = {
    name,
    modelPath,
    target: opts.target,
    replicas: opts.replicas,
    ttlSeconds: opts.ttlSeconds,
    ...(opts.idleTtlSeconds !== undefined ? { idleTtlSeconds: opts.idleTtlSeconds } : {}),
    ...(opts.scaleToZero ? { scaleToZero: opts.scaleToZero } : {}),
    ...(opts.cost ? { cost: opts.cost } : {}),
    ...(opts.autoscale ? { autoscale: opts.autoscale } : {}),
    topK: opts.topK,
    ...(opts.preprocess ? { preprocess: opts.preprocess } : {}),
    ...(opts.labelsPath ? { labelsPath: path.resolve(opts.labelsPath) } : {}),
    ...script,
    smoke:
      opts.smokeSample && !script.script
        ? { samplePath: path.resolve(opts.smokeSample), expectedLabel: opts.expectLabel }
        : undefined,
    ...v2SmokeInput(opts),
    // Only what the user chose: the workflow fills in the rest from the per-target timing table.
    ...(opts.readyTimeoutSeconds ? { timings: { readyTimeoutSeconds: opts.readyTimeoutSeconds } } : {}),
    ...(opts.aks && Object.keys(opts.aks).length > 0 ? { aks: opts.aks } : {}),
  };
  if (opts.expectLabel && !opts.smokeSample && !script.script) {
    throw new CliError('--expect-label needs --smoke-sample: the label is checked against the sample’s answer.', 2);
  }
  if (!isBlobLocation(modelPath) && !fs.existsSync(modelPath)) {
    ctx.out.note(`note: ${modelPath} does not exist here; the worker will check its own filesystem.`);
  }

  const workflowId = deployWorkflowId(name);
  let handle: WorkflowHandle<typeof deploy>;
  let runId: string;
  try {
    const started = await startIndexed(
      ctx.client,
      deploy,
      {
        taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
        workflowId,
        args: [input],
        staticSummary: `Deploy ${path.basename(modelPath)} as "${name}" on ${opts.target} (${opts.replicas} replica(s), TTL ${opts.ttlSeconds === null ? 'none' : formatDuration(opts.ttlSeconds * 1000)}${opts.idleTtlSeconds ? `, idle TTL ${formatDuration(opts.idleTtlSeconds * 1000)}` : ''}${opts.cost?.budget !== undefined ? `, budget ${opts.cost.priceTable.currency} ${opts.cost.budget}` : ''})`,
        staticDetails: [
          `- **Model:** ${modelPath}`,
          ...(input.script ? [`- **Entry script:** ${input.script.entryScript}`] : []),
          `- **Target:** ${opts.target}`,
          `- **Replicas:** ${opts.replicas}`,
          ...(input.smokeRequest ? [`- **V2 smoke request:** ${input.smokeRequest.requestPath}`] : []),
          `- **Smoke sample:** ${input.smoke ? `${input.smoke.samplePath}${input.smoke.expectedLabel ? ` (expect "${input.smoke.expectedLabel}")` : ''}` : 'none'}`,
        ].join('\n'),
      },
      [
        { key: InferctlKind, value: 'deploy' },
        { key: DeploymentName, value: searchAttributeText(name) },
        { key: ModelName, value: searchAttributeText(path.basename(modelPath)) },
        { key: Target, value: opts.target },
        { key: Stage, value: 'validating' },
      ],
      ctx.out,
    );
    handle = started;
    runId = started.firstExecutionRunId;
    ctx.out.line(`Started ${workflowId} (run ${runId})`);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    ({ handle, runId } = await attach(ctx, workflowId, input));
    ctx.out.line(`${name} is already running with this spec: attached to ${workflowId} (run ${runId})`);
  }

  const uiUrl = webUiUrl({ namespace: ctx.namespace, workflowId, runId });
  ctx.out.line(`Web UI: ${uiUrl}`);
  if (opts.follow === 'detach') return { workflowId, runId, uiUrl };

  const status = await followDeployment(handle, opts.follow, ctx.out, opts.taskQueue ?? CONTROL_TASK_QUEUE);
  if (opts.tlsCaOut) writeCa(opts.tlsCaOut, status, ctx.out);
  return { workflowId, runId, uiUrl, status };
}

/**
 * Deploying a name that already runs: the workflow's `attach` Update accepts the same spec (the deploy is
 * idempotent) and refuses a different one, before anything enters its history, saying what to use instead.
 */
async function attach(
  ctx: CommandContext,
  workflowId: string,
  input: DeployInput,
): Promise<{ handle: WorkflowHandle<typeof deploy>; runId: string }> {
  const running = ctx.client.workflow.getHandle<typeof deploy>(workflowId);
  try {
    await running.executeUpdate(attachUpdate, { args: [input] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new CliError(describeFailure(err.cause ?? err), workflowFailureExitCode(err.cause ?? err));
    }
    throw err;
  }
  const { runId } = await running.describe();
  return { handle: ctx.client.workflow.getHandle<typeof deploy>(workflowId, runId), runId };
}
