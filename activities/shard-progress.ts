/**
 * Tells a batch workflow how far a running shard is, so that its `progress` query and the Web UI's
 * current details move inside a shard (a one-shard job otherwise shows 0% until the end). A signal to
 * the shard's own workflow at most every `everyMs`, never in the shard's first `everyMs` (short shards
 * cost the history nothing), one at a time; best effort: a signal that fails is logged and the shard
 * goes on (the count catches up with the next one, or with the shard's result).
 */
import type { Context } from '@temporalio/activity';
import { log } from '@temporalio/activity';

import { SHARD_PROGRESS_SIGNAL } from '../src/shared/batch-types';
import type { ShardCheckpoint, ShardProgress, ShardTask } from '../src/shared/batch-types';
import { HeartbeatKeeper } from './heartbeat';

export class ShardProgressReporter {
  private lastSent = performance.now();
  private sending = false;
  private disabled: boolean;

  constructor(
    private readonly ctx: Context,
    private readonly shard: number,
    private readonly everyMs: number,
  ) {
    this.disabled = !(everyMs > 0);
  }

  /** Called with each checkpoint; sends it when the interval has passed since the last one. */
  update(cp: ShardCheckpoint): void {
    if (this.disabled || this.sending || performance.now() - this.lastSent < this.everyMs) return;
    let client: Context['client'] | undefined;
    try {
      client = this.ctx.client;
    } catch {
      // No client (a test environment without one): nothing to tell.
    }
    const workflowId = this.ctx.info.workflowExecution?.workflowId;
    if (!client || !workflowId) {
      this.disabled = true;
      return;
    }
    const progress: ShardProgress = { shard: this.shard, itemsDone: cp.itemsDone, itemsFailed: cp.itemsFailed };
    this.sending = true;
    this.lastSent = performance.now();
    client.workflow
      .getHandle(workflowId)
      .signal(SHARD_PROGRESS_SIGNAL, progress)
      .catch((err: unknown) => {
        log.warn('Shard progress signal failed', {
          shard: this.shard,
          error: err instanceof Error ? err.message : String(err),
        });
      })
      .finally(() => (this.sending = false));
  }
}

/**
 * What a shard attempt does with each checkpoint, in both shard runners (files and blob): heartbeat it
 * (and keep heartbeating the latest one while a batch runs in an inference thread) and report it to the
 * workflow as progress inside the shard. `stop` ends the heartbeat timer.
 */
export function shardCheckpointing(
  ctx: Context,
  task: Pick<ShardTask, 'shard' | 'progressIntervalSeconds'>,
  heartbeatEveryMs: number,
  from: ShardCheckpoint,
): { onCheckpoint: (checkpoint: ShardCheckpoint) => void; stop: () => void } {
  const reporter = new ShardProgressReporter(ctx, task.shard, (task.progressIntervalSeconds ?? 10) * 1000);
  let latest = from;
  const keeper = new HeartbeatKeeper(ctx, heartbeatEveryMs, () => latest);
  return {
    onCheckpoint: (checkpoint) => {
      latest = checkpoint;
      keeper.beat(checkpoint);
      reporter.update(checkpoint);
    },
    stop: () => keeper.stop(),
  };
}
