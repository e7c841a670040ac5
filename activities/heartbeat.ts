import { Context, log } from '@temporalio/activity';

import type { StepProgress } from '../src/targets/target';

/**
 * Runs `work` while heartbeating every `everyMs`, so a hung call or a dead worker is noticed within the
 * activity's heartbeat timeout, and the workflow's cancellation reaches `work` through the abort signal.
 */
export async function withHeartbeat<T>(
  work: (signal: AbortSignal) => Promise<T>,
  details?: () => unknown,
  everyMs = 2000,
): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat(details?.());
  const timer = setInterval(() => ctx.heartbeat(details?.()), everyMs);
  try {
    return await work(ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/**
 * Heartbeats `details()` whenever nothing was heartbeated for `everyMs`, on a timer on the main thread
 * (so it goes on while a long call runs elsewhere, such as a batch in an inference thread); `beat`
 * sends one now and restarts the wait. `stop` ends it.
 */
export class HeartbeatKeeper {
  private last = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ctx: Context,
    everyMs: number,
    details: () => unknown,
  ) {
    this.timer = setInterval(
      () => {
        if (performance.now() - this.last >= everyMs) this.beat(details());
      },
      Math.max(10, everyMs / 2),
    );
  }

  beat(details: unknown): void {
    this.last = performance.now();
    this.ctx.heartbeat(details);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Runs one target step with heartbeats whose details are the step's latest progress line (`{ progress }`,
 * shown by the Web UI under the pending activity, and logged).
 */
export function targetStep<T>(work: (signal: AbortSignal, progress: StepProgress) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  let latest: { progress: string } | undefined;
  const progress: StepProgress = (detail) => {
    latest = { progress: detail };
    log.info(detail);
    ctx.heartbeat(latest);
  };
  return withHeartbeat(
    (signal) => work(signal, progress),
    () => latest,
  );
}
