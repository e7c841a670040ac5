/**
 * A shard of a script job on the GPU worker: the script's environment and app folder made ready (once per
 * content hash on this machine, src/script/batch-app.ts), a Python process lent from the worker's slots
 * (src/script/batch-pool.ts: init() ran once in it), and the mini-batches run through it by the shard
 * runner, which keeps the ONNX path's guarantees (checkpoints, heartbeats, fencing, resume). On a
 * job-owned AKS pool the app and environment come built in the worker's image instead (imageBatchApp).
 */
import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { scoreScriptShard } from '../src/batch/script-scorer';
import { imageBatchApp, prepareBatchApp } from '../src/script/batch-app';
import type { ImageScript } from '../src/script/batch-app';
import type { ScriptProcessPool } from '../src/script/batch-pool';
import type { BatchScriptSpec, ShardResult, ShardTask } from '../src/shared/batch-types';
import { withScriptModelCopy } from '../src/script/script-model';
import { FailureType } from '../src/shared/failure-types';
import { failingPermanently } from './failures';
import { withHeartbeat } from './heartbeat';
import { runShard } from './shard-runner';
import type { ShardStore } from './shard-runner';

export interface ScriptShardDeps {
  scripts: ScriptProcessPool;
  /** Where this worker keeps Python environments and script app folders. */
  envCache: string;
  /** The script job built into this worker's image (--target aks), when it was started with one. */
  imageScript?: ImageScript;
  workerName: string;
  everyMs: number;
  onBatch: (batch: { ok: number; failed: number; inferMs: number }) => void;
}

export async function runScriptShard(
  store: ShardStore,
  task: ShardTask & { script: BatchScriptSpec },
  deps: ScriptShardDeps,
): Promise<ShardResult> {
  const ctx = Context.current();
  const { imageScript } = deps;
  if (task.script.inImage && !imageScript) {
    throw ApplicationFailure.nonRetryable(
      `Job "${task.jobName}" runs the script built into its workers' image, and worker ${deps.workerName} was ` +
        "started without one (gpu-worker --script-bundle); only the job-owned pool's workers can score it.",
      FailureType.InvalidBatchJob,
    );
  }
  // Heartbeats (on a timer) keep the earlier attempt's checkpoint while the environment is built: this
  // attempt has none yet, and must not lose it.
  const app = await failingPermanently(() =>
    withHeartbeat(
      async (signal) => {
        if (task.script.inImage && imageScript) return imageBatchApp(imageScript);
        const script = await withScriptModelCopy(task.modelPath, task.script, { signal });
        return prepareBatchApp(task.modelPath, script, deps.envCache, { signal });
      },
      () => ctx.info.heartbeatDetails,
    ),
  );
  const lease = deps.scripts.lease(app, ctx.cancellationSignal);
  const script = task.script;
  try {
    return await runShard(store, {
      task,
      workerName: deps.workerName,
      everyMs: deps.everyMs,
      scorer: {
        executionProvider: 'script',
        score: async (open, onCheckpoint, signal) => {
          const started = performance.now();
          await lease.process(); // init() before the first mini-batch: its failure fails the job, not an input
          log.info('Script process ready', { shard: task.shard, ms: Math.round(performance.now() - started) });
          return scoreScriptShard({
            process: () => lease.process(),
            replace: () => lease.replace(),
            inputs: open.inputs,
            baseIndex: task.baseIndex,
            miniBatchSize: script.miniBatchSize,
            miniBatchTimeoutMs: script.miniBatchTimeoutSeconds * 1000,
            outputAction: script.outputAction,
            sinks: open.sinks,
            from: open.from,
            onCheckpoint,
            onBatch: deps.onBatch,
            signal,
            ...(open.readInput ? { readInput: open.readInput } : {}),
          });
        },
        model: () => undefined,
      },
    });
  } finally {
    lease.release();
  }
}
