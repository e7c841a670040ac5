/**
 * A batch job whose GPU workers exist only while it runs: add a GPU node pool to the user's AKS cluster,
 * build the worker image and start one GPU-worker pod per node on the job's own task queue, wait until
 * they run, score the job as a child batchScore workflow on that queue, then remove the pods and the pool.
 *
 * Teardown is compensation, as in the deploy workflow: once the pool has been asked for, removal runs in a
 * non-cancellable scope on success, on the failure of any step or of the batch, on cancellation, and after
 * a crash of the worker running this workflow (it resumes on another worker and gets here). The removal
 * activity is idempotent and retried until it succeeds. The janitor deletes a pool whose owner workflow
 * is closed, should all of that fail (the pool's owner tag).
 *
 * The job's cost ledger bills the pool's nodes by VM size from when the pool is asked for until its removal
 * has finished: the child keeps the line open (and checks its budget against it between shards), this
 * workflow closes it once the pool is gone. A budget stop ends the child early; the pool is removed as on
 * every other path, and the outcome says how to resume.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';

import type { createGpuPoolActivities } from '../activities/gpu-pool';
import type { BatchCarryOver } from '../src/shared/batch-types';
import { batchBill, newLedger, reconcile, summarize } from '../src/shared/cost-ledger';
import type { BatchCost } from '../src/shared/cost-types';
import { DEFAULT_PRICE_TABLE } from '../src/shared/price-table';
import { rootMessage } from '../src/shared/failure-message';
import { FailureType } from '../src/shared/failure-types';
import { gpuPoolTaskQueue } from '../src/shared/gpu-pool-types';
import type { GpuPoolBatchInput, GpuPoolBatchOutcome, GpuPoolReport, GpuPoolSpec } from '../src/shared/gpu-pool-types';
import { batchScore } from './batch-score';
import type { BatchOutcome } from './batch-score';
import { costMemo } from './batch-score/cost';

type PoolActivities = ReturnType<typeof createGpuPoolActivities>;

/** Where the worker image keeps the model and its labels, relative to its WORKDIR (gpu-worker-image.ts). */
const WORKER_MODEL = { modelPath: 'model.onnx', labelsPath: 'model.labels.txt' } as const;
/** Where a script job's worker image keeps the script's bundle, the model inside it (script-image.ts). */
const WORKER_SCRIPT_BUNDLE = '/var/azureml-app';

function poolActivities(input: GpuPoolBatchInput) {
  const heartbeatTimeout = (input.heartbeatTimeoutSeconds ?? 60) * 1000;
  const readyMs = (input.readyTimeoutSeconds ?? 20 * 60) * 1000;
  const infra: ActivityOptions = {
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5 },
  };
  const waiting: ActivityOptions = {
    startToCloseTimeout: readyMs + 60_000,
    heartbeatTimeout,
    retry: { initialInterval: '1s', maximumAttempts: 5 },
  };
  const cleanup: ActivityOptions = {
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout,
    retry: { initialInterval: '1s', maximumInterval: '1 minute' }, // unlimited attempts
  };
  const as = (options: ActivityOptions, summary: string) => proxyActivities<PoolActivities>({ ...options, summary });
  return { infra, waiting, cleanup, as };
}

export async function gpuPoolBatchScore(input: GpuPoolBatchInput): Promise<GpuPoolBatchOutcome<BatchOutcome>> {
  const ownerId = workflowInfo().workflowId;
  const spec: GpuPoolSpec = {
    ...input.pool,
    jobName: input.batch.name,
    ownerId,
    taskQueue: gpuPoolTaskQueue(ownerId),
    modelPath: input.batch.modelPath,
    ...(input.batch.labelsPath ? { labelsPath: input.batch.labelsPath } : {}),
    ...(input.batch.preprocess ? { preprocess: input.batch.preprocess } : {}),
    ...(input.batch.script ? { script: input.batch.script } : {}),
    storage: { inputs: [input.batch.inputPath], outputs: [input.batch.outputDir] },
  };
  const { infra, waiting, cleanup, as } = poolActivities(input);
  let pool: GpuPoolReport = {
    poolName: '',
    vmSize: input.pool.gpuVmSize ?? '',
    nodes: input.pool.gpuNodes,
    removed: [],
  };
  let asked = false;
  let outcome: BatchOutcome | undefined;
  let failure: unknown;
  const billedFrom = new Date().toISOString();
  try {
    asked = true;
    pool = await as(infra, `Add a pool of ${spec.gpuNodes} GPU node(s) to ${spec.cluster}`).addGpuPool(spec);
    const started = await as(infra, 'Build the worker image, start the GPU-worker pods').startGpuWorkers(spec);
    pool.imageRef = started.imageRef;
    await as(waiting, 'Wait until every GPU worker runs').waitForGpuWorkers(spec, {
      timeoutSeconds: input.readyTimeoutSeconds ?? 20 * 60,
      pollIntervalMs: (input.pollIntervalSeconds ?? 5) * 1000,
    });
    outcome = await executeChild(batchScore, {
      workflowId: `${ownerId}-batch`,
      args: [
        childBatch(input, spec, started.preprocess, pool, billedFrom),
        ...(input.resume ? [input.resume] : []),
      ] as [typeof input.batch, BatchCarryOver?],
    });
  } catch (err) {
    failure = err;
  }

  if (asked) {
    const removed = await CancellationScope.nonCancellable(() =>
      as(cleanup, `Remove the GPU pool and pods of ${spec.jobName}`).removeGpuPool(spec),
    );
    pool = { ...pool, removed };
    log.info('GPU pool removed', { job: spec.jobName, removed: removed.length });
  }
  const cost = closeLedger(input, outcome, pool, billedFrom, asked);
  pool = { ...pool, billedFrom, billedUntil: cost.at };
  if (failure !== undefined) {
    if (isCancellation(failure)) {
      // Thrown as a CancelledFailure (not the child's failure wrapping one), the job ends Cancelled.
      throw failure instanceof CancelledFailure
        ? failure
        : new CancelledFailure(`Batch job "${spec.jobName}" cancelled`);
    }
    throw ApplicationFailure.create({
      type: FailureType.GpuPoolJobFailed,
      message:
        `Batch job "${spec.jobName}" on a GPU pool of ${spec.cluster} failed (${rootMessage(failure)}). ` +
        `The GPU pool and its pods were removed (${pool.removed.join(', ') || 'nothing was left'}).`,
      nonRetryable: true,
      cause: failure instanceof Error ? failure : undefined,
    });
  }
  const batch: BatchOutcome = { ...outcome!, cost };
  if (batch.stopped) {
    const carry = { ...batch.stopped.resume.carry, cost: { ledger: cost.ledger } };
    batch.stopped = { ...batch.stopped, spent: cost.total, resume: { ...batch.stopped.resume, carry } };
    return { batch, pool, resume: { ...input, resume: carry } };
  }
  return { batch, pool };
}

/** The batch the child scores on the pool's workers: the control worker lists and summarises with the model it
 * has; the pods score with the image's copy (the ONNX model, or the script's bundle). */
function childBatch(
  input: GpuPoolBatchInput,
  spec: GpuPoolSpec,
  imagePreprocess: GpuPoolBatchInput['batch']['preprocess'],
  pool: GpuPoolReport,
  billedFrom: string,
): GpuPoolBatchInput['batch'] {
  return {
    ...input.batch,
    gpuTaskQueue: spec.taskQueue,
    ...(input.batch.script ? {} : { preprocess: input.batch.preprocess ?? imagePreprocess }),
    onWorkers: input.batch.script
      ? { modelPath: WORKER_SCRIPT_BUNDLE, scriptInImage: true }
      : { modelPath: WORKER_MODEL.modelPath, labelsPath: WORKER_MODEL.labelsPath },
    gpuPool: { vmSize: pool.vmSize, nodes: pool.nodes, since: billedFrom },
  };
}

/** The job's ledger once the pool is gone: the child's (or a new one), its pool line closed now; also the memo. */
function closeLedger(
  input: GpuPoolBatchInput,
  outcome: BatchOutcome | undefined,
  pool: GpuPoolReport,
  billedFrom: string,
  asked: boolean,
): BatchCost {
  const table = input.batch.cost?.priceTable ?? DEFAULT_PRICE_TABLE;
  const ledger = outcome?.cost?.ledger ?? input.resume?.cost?.ledger ?? newLedger(table);
  const vmSize = pool.vmSize || input.pool.gpuVmSize || 'unknown VM size';
  // A child that never ran left no pool line: it billed from when the pool was asked for all the same.
  if (asked)
    reconcile(
      ledger,
      batchBill(table, { pool: { vmSize, nodes: pool.nodes }, shardsInFlight: 0 }),
      Date.parse(billedFrom),
    );
  reconcile(ledger, [], Date.now());
  const budgetState = outcome?.cost?.budgetState;
  const cost: BatchCost = { ...summarize(ledger, Date.now()), ledger, ...(budgetState ? { budgetState } : {}) };
  if (patched('gpu-pool-cost-memo')) upsertMemo({ cost: costMemo(cost) });
  return cost;
}
