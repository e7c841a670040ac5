/**
 * How long a deployment serves: the TTL (extendable, never shortened; none with `--ttl none`), an idle TTL
 * read from the replicas' request counters, or until a teardown request, whichever comes first. A warning
 * is logged ahead of the TTL's end. Deterministic: workflow time only.
 */
import { CancellationScope, condition, isCancellation, log } from '@temporalio/workflow';

import type { IdleReport } from '../../activities/idle-watch';
import type { DeployOutcome, ExtendResult } from '../../src/shared/deploy-types';
import { formatDuration } from '../../src/shared/duration';
import type { ServingCarry } from './carry';
import type { DeployStatusRecorder } from './status';

/** The longest single extension accepted: a year. */
const MAX_EXTEND_SECONDS = 365 * 86400;

/** The warning comes a tenth of the period ahead of its end, between one second and ten minutes. */
export function warnAheadSeconds(periodSeconds: number): number {
  return Math.min(600, Math.max(1, Math.round(periodSeconds / 10)));
}

export class ServingPeriod {
  teardownRequested = false;
  endedBy: DeployOutcome['endedBy'] | undefined;
  /** The wait stopped for the run to continue as new (its history is long), not because serving ended. */
  continuing = false;
  private expiresAtMs: number | undefined;
  /** The deadline the expiry warning was logged for. */
  private warnedFor: number | undefined;
  /** Bumped by each extension, so the wait recomputes its timer. */
  private changes = 0;

  constructor(
    private ttlSeconds: number | null,
    private readonly recorder: DeployStatusRecorder,
    private readonly idleTtlSeconds?: number,
    carried?: ServingCarry,
  ) {
    if (carried) {
      this.ttlSeconds = carried.ttlSeconds;
      this.expiresAtMs = carried.expiresAtMs;
      this.warnedFor = carried.warnedFor;
    }
  }

  /** Where the period stands, for the next run (continue-as-new). */
  carry(): ServingCarry {
    return {
      ttlSeconds: this.ttlSeconds,
      ...(this.expiresAtMs !== undefined ? { expiresAtMs: this.expiresAtMs } : {}),
      ...(this.warnedFor !== undefined ? { warnedFor: this.warnedFor } : {}),
    };
  }

  /** The `extend` Update's validator: throws the reason a request is refused. */
  checkExtend(seconds: unknown): void {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
      throw new Error(`extend needs a positive number of seconds (got ${String(seconds)}).`);
    }
    if (seconds > MAX_EXTEND_SECONDS) {
      throw new Error(
        `extend by at most a year (${MAX_EXTEND_SECONDS}s) at a time (got ${seconds}s); or use --ttl none.`,
      );
    }
    if (this.ttlSeconds === null) {
      throw new Error('This deployment has no TTL (--ttl none): it serves until teardown, there is nothing to extend.');
    }
  }

  /** Serve at least `seconds` from now; before serving, a TTL at least that long. */
  extend(seconds: number): ExtendResult {
    if (!(seconds > 0) || this.ttlSeconds === null) return {};
    this.changes++;
    log.info('TTL extended', { seconds });
    if (this.expiresAtMs === undefined) {
      this.ttlSeconds = Math.max(this.ttlSeconds, seconds);
      return { ttlSeconds: this.ttlSeconds };
    }
    this.expiresAtMs = Math.max(this.expiresAtMs, Date.now() + seconds * 1000);
    this.publish();
    return { expiresAt: this.recorder.status.expiresAt };
  }

  start(): void {
    if (this.ttlSeconds !== null) this.expiresAtMs = Date.now() + this.ttlSeconds * 1000;
    if (this.idleTtlSeconds !== undefined) this.recorder.status.idleTtlSeconds = this.idleTtlSeconds;
    this.publish();
  }

  /** The wait of deployments that started before idle TTLs and warnings: same timers, for replay. */
  async untilOverLegacy(): Promise<void> {
    while (!this.teardownRequested && (this.expiresAtMs ?? Infinity) > Date.now()) {
      await condition(() => this.teardownRequested, this.expiresAtMs! - Date.now());
    }
  }

  /**
   * Waits until the TTL ends, `watchIdle` (the idle-watch activity) reports the replicas idle, or a teardown
   * request arrives; sets `endedBy`. A failure of the idle watch other than its cancellation is thrown.
   * Stops early, setting `continuing`, once `historyFull` says the run should continue as new.
   */
  async untilOver(watchIdle?: () => Promise<IdleReport>, historyFull?: () => boolean): Promise<void> {
    let idle: IdleReport | undefined;
    let idleError: unknown;
    const idleScope = new CancellationScope();
    if (watchIdle) {
      idleScope.run(watchIdle).then(
        (report) => (idle = report),
        (err: unknown) => (idleError = err),
      );
    }
    for (;;) {
      if (this.teardownRequested) this.endedBy = 'signal';
      else if (idle) this.endedBy = 'idle';
      else if (this.expiresAtMs !== undefined && Date.now() >= this.expiresAtMs) this.endedBy = 'ttl';
      if (this.endedBy || idleError !== undefined) break;
      if (historyFull?.()) {
        this.continuing = true;
        break;
      }

      let wakeAt = this.expiresAtMs;
      if (this.expiresAtMs !== undefined && this.warnedFor !== this.expiresAtMs) {
        const warnAt = this.expiresAtMs - warnAheadSeconds(this.ttlSeconds!) * 1000;
        if (Date.now() >= warnAt) {
          log.warn('Deployment ends soon: its TTL runs out', { expiresAt: this.recorder.status.expiresAt });
          this.warnedFor = this.expiresAtMs;
          continue;
        }
        wakeAt = warnAt;
      }
      const seen = this.changes;
      const woken = () =>
        this.teardownRequested ||
        idle !== undefined ||
        idleError !== undefined ||
        this.changes !== seen ||
        historyFull?.() === true;
      if (wakeAt === undefined) await condition(woken);
      else await condition(woken, wakeAt - Date.now());
    }
    idleScope.cancel();
    if (idleError !== undefined && !isCancellation(idleError)) {
      throw idleError instanceof Error ? idleError : new Error(`The idle watch failed: ${JSON.stringify(idleError)}`);
    }
    if (idle) log.info('No scoring request for the idle TTL', { lastRequestAt: idle.lastRequestAt });
  }

  /** Writes when and why serving ends into the status and the Web UI's current details. */
  private publish(): void {
    const status = this.recorder.status;
    status.expiresAt = this.expiresAtMs === undefined ? undefined : new Date(this.expiresAtMs).toISOString();
    const idle =
      this.idleTtlSeconds === undefined
        ? undefined
        : `after ${formatDuration(this.idleTtlSeconds * 1000)} without a scoring request`;
    const ttl = status.expiresAt ? `when its TTL ends at ${status.expiresAt}` : undefined;
    status.endsBecause =
      ttl && idle
        ? `ends ${ttl}, or ${idle}, whichever comes first`
        : ttl
          ? `ends ${ttl}`
          : idle
            ? `ends ${idle} (no TTL)`
            : 'serves until teardown (no TTL)';
    this.recorder.publish();
  }
}
