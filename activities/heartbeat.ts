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
