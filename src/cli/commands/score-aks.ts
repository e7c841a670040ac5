/**
 * `inferctl score --target aks --cluster C --gpu-nodes N [--gpu-vm-size S] [--dry-run]`: a batch job whose
 * GPU workers run on a GPU node pool the job adds to the cluster and removes when it ends (the
 * gpuPoolBatchScore workflow). The command starts it, follows the batch's progress once the workers
 * run, and prints what was removed; `--dry-run` prints the requests and the pool's estimated GPU cost
 * without Temporal or Azure. With `--entry-script`, the worker image is the script's: its environment,
 * source folder and model built in (gpu-worker-image.ts), its Dockerfile shown by `--dry-run`; the model may
 * then be an az:// prefix, copied by the control worker as for `deploy --entry-script --target aks`.
 */
import fs from 'node:fs';
import path from 'node:path';

import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';

import type { BatchOutcome } from '../../../workflows/batch-score';
import { gpuPoolBatchScore } from '../../../workflows/gpu-pool';
import { isBlobLocation } from '../../storage/blob-location';
import { batchWorkflowId } from '../../shared/batch-types';
import type { BatchScoreInput } from '../../shared/batch-types';
import { CONTROL_TASK_QUEUE } from '../../shared/deploy-types';
import type { GpuPoolBatchInput, GpuPoolOptions, GpuPoolReport } from '../../shared/gpu-pool-types';
import { AKS_DEFAULTS } from '../../targets/aks/aks-config';
import { formatGpuPoolDryRun, gpuPoolDryRun } from '../../targets/aks/gpu-pool-dry-run';
import type { GpuPoolDryRunReport } from '../../targets/aks/gpu-pool-dry-run';
import { webUiUrl } from '../../temporal/connection';
import { batchCostLines } from '../batch-cost';
import { CliError } from '../cli-error';
import type { CommandContext } from '../client-context';
import { describeFailure } from '../output';
import type { Output } from '../output';

export interface ScoreOnAksOptions {
  input: BatchScoreInput;
  pool: GpuPoolOptions;
  taskQueue?: string;
  detach: boolean;
  /** The rest of the workflow input: `score resume` passes the stopped job's (its carry-over, its timeouts). */
  more?: Omit<GpuPoolBatchInput, 'batch' | 'pool'>;
  /** Shows the batch's progress until it ends (score.ts's followBatch; passed in, so this file needs no cycle). */
  follow: (batch: WorkflowHandle, out: Output) => Promise<unknown>;
}

export interface ScoreOnAksResult {
  workflowId: string;
  uiUrl: string;
  summary?: BatchOutcome;
  pool?: GpuPoolReport;
}

/** Checks the pool flags; every problem at once, as a usage error. */
export function gpuPoolFlags(o: { cluster?: string; resourceGroup?: string; gpuNodes?: string; gpuVmSize?: string }) {
  const problems: string[] = [];
  if (!o.cluster) problems.push('--cluster <name>: the AKS cluster to add the GPU pool to');
  const nodes = Number(o.gpuNodes);
  if (o.gpuNodes === undefined || !Number.isInteger(nodes) || nodes < 1 || nodes > 100) {
    problems.push(`--gpu-nodes <n>: a whole number of GPU nodes from 1 to 100 (got ${o.gpuNodes ?? 'none'})`);
  }
  if (problems.length > 0) throw new CliError(`score --target aks needs ${problems.join('; ')}.`, 2);
  const pool: GpuPoolOptions = { cluster: o.cluster!, gpuNodes: nodes };
  if (o.resourceGroup) pool.resourceGroup = o.resourceGroup;
  // Named here, so that the ledger prices the size the pool gets even when adding it fails half-way.
  pool.gpuVmSize = o.gpuVmSize ?? AKS_DEFAULTS.gpuVmSize;
  return pool;
}

/**
 * The worker image carries the model. An ONNX job's must be a local file; a script's may be an az:// prefix,
 * which the control worker copies into the image as for an online script deployment (script-model.ts).
 */
function assertModelForImage(input: BatchScoreInput): void {
  if (!isBlobLocation(input.modelPath) || input.script) return;
  throw new CliError(
    `--target aks builds the model into the GPU workers' image, so --model must be a local ONNX file ` +
      `(got ${input.modelPath}). Download it first; --input and --output may stay in blob storage.`,
    2,
  );
}

export async function scoreOnAksCommand(ctx: CommandContext, opts: ScoreOnAksOptions): Promise<ScoreOnAksResult> {
  const { input } = opts;
  assertModelForImage(input);
  const workflowId = batchWorkflowId(input.name);
  let handle;
  try {
    handle = await ctx.client.workflow.start(gpuPoolBatchScore, {
      taskQueue: opts.taskQueue ?? CONTROL_TASK_QUEUE,
      workflowId,
      args: [{ ...opts.more, batch: input, pool: opts.pool }],
      staticSummary:
        `Score ${path.basename(input.inputPath)} on ${opts.pool.gpuNodes} GPU node(s) added to ${opts.pool.cluster}` +
        ` → ${input.outputDir}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(
        `A batch job named "${input.name}" is already running (workflow ${workflowId}). Pick another --name.`,
      );
    }
    throw err;
  }
  const uiUrl = webUiUrl({ namespace: ctx.namespace, workflowId });
  ctx.out.line(`Started ${workflowId}: adding ${opts.pool.gpuNodes} GPU node(s) to cluster ${opts.pool.cluster}`);
  ctx.out.line(`Web UI: ${uiUrl}`);
  if (opts.detach) return { workflowId, uiUrl };

  // The batch runs as a child once the workers run; follow it, then the pool's removal.
  const child = ctx.client.workflow.getHandle(`${workflowId}-batch`);
  for (;;) {
    const started = await child.describe().then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      },
    );
    if (started) break;
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  await opts.follow(child, ctx.out).catch(() => undefined); // its failure is the job's, reported below
  try {
    const outcome = await handle.result();
    ctx.out.line(`Removed: ${outcome.pool.removed.join(', ') || 'nothing was left'}.`);
    for (const line of batchCostLines(outcome.batch.cost)) ctx.out.line(`${line[0]!.toUpperCase()}${line.slice(1)}`);
    return { workflowId, uiUrl, summary: outcome.batch, pool: outcome.pool };
  } catch (err) {
    throw new CliError(describeFailure(err));
  }
}

export async function scoreOnAksDryRun(
  ctx: Pick<CommandContext, 'out'>,
  opts: { input: BatchScoreInput; pool: GpuPoolOptions; hours?: number },
): Promise<GpuPoolDryRunReport> {
  assertModelForImage(opts.input);
  const { script } = opts.input;
  // A script's az:// model is listed and copied by the control worker at the image step, not here.
  const blob = isBlobLocation(opts.input.modelPath);
  const modelPath = blob ? opts.input.modelPath : path.resolve(opts.input.modelPath);
  // A script's model may be a folder (a SavedModel, a checkpoint directory); an ONNX job's is one file.
  if (!blob && (!fs.existsSync(modelPath) || (!script && !fs.statSync(modelPath).isFile()))) {
    const what = script ? "your script's model file or folder" : 'the ONNX file to score with';
    throw new CliError(`Model not found: ${modelPath}. Pass ${what} with --model.`, 2);
  }
  const report = await gpuPoolDryRun({
    jobName: opts.input.name,
    modelPath,
    pool: opts.pool,
    ...(opts.hours !== undefined ? { hours: opts.hours } : {}),
    ...(opts.input.cost ? { table: opts.input.cost.priceTable } : {}),
    ...(opts.input.cost?.budget !== undefined ? { budget: opts.input.cost.budget } : {}),
    ...(opts.input.preprocess ? { preprocess: opts.input.preprocess } : {}),
    ...(opts.input.labelsPath ? { labelsPath: opts.input.labelsPath } : {}),
    ...(script ? { script } : {}),
  });
  ctx.out.line(formatGpuPoolDryRun(report));
  ctx.out.result(report);
  return report;
}
