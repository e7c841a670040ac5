import { Context } from '@temporalio/activity';

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
