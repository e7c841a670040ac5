/**
 * `inferctl deploy`'s scale-to-zero flags, together: `--min-replicas 0 --max-replicas N [--scale-down-after
 * 10m] [--wake-timeout 15m]`, checked here for what goes with what and made into the deploy input; and how
 * `status` prints where such a deployment stands (cold, waking, warm; the last wake).
 */
import type { Command, OptionValues } from '@commander-js/extra-typings';

import { SCALE_TO_ZERO_DEFAULTS } from '../shared/deploy-types';
import type { DeployStatus, ScaleToZeroInput } from '../shared/deploy-types';
import { formatDuration } from '../shared/duration';
import type { TargetKind } from '../shared/target-types';
import { CliError } from './cli-error';
import { duration, int } from './flag-parsers';

export interface ScaleToZeroFlags {
  minReplicas?: number;
  maxReplicas?: number;
  scaleDownAfter?: number;
  wakeTimeout?: number;
}

/** Adds the scale-to-zero flags to `deploy`, in one group. */
export function addScaleToZeroOptions<Args extends unknown[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return cmd
    .option(
      '--min-replicas <n>',
      '0: scale to zero when unused and wake on the next request, the endpoint kept; with --target-concurrency: the fewest replicas',
      int('--min-replicas', 0),
    )
    .option(
      '--max-replicas <n>',
      'with --min-replicas 0 or --target-concurrency: the most replicas (default with --min-replicas 0: --replicas)',
      int('--max-replicas', 1),
    )
    .option(
      '--scale-down-after <duration>',
      `with --min-replicas 0: go to zero replicas after this long without a scoring request (default ${formatDuration(SCALE_TO_ZERO_DEFAULTS.scaleDownAfterSeconds * 1000)})`,
      duration('--scale-down-after'),
    )
    .option(
      '--wake-timeout <duration>',
      `with --min-replicas 0: how long a request waits for a replica to wake, then 503 with Retry-After (default ${formatDuration(SCALE_TO_ZERO_DEFAULTS.wakeTimeoutSeconds * 1000)})`,
      duration('--wake-timeout'),
    );
}

/** The deploy input's `scaleToZero` from the flags; a flag without the one it needs is exit 2. */
export function scaleToZeroInput(
  flags: ScaleToZeroFlags,
  target: TargetKind,
  replicas: number,
): ScaleToZeroInput | undefined {
  const { minReplicas, maxReplicas, scaleDownAfter, wakeTimeout } = flags;
  if (minReplicas === undefined) {
    if (maxReplicas !== undefined || scaleDownAfter !== undefined || wakeTimeout !== undefined) {
      throw new CliError('--max-replicas, --scale-down-after and --wake-timeout go with --min-replicas 0.', 2);
    }
    return undefined;
  }
  if (minReplicas !== 0) {
    throw new CliError(
      '--min-replicas takes 0 (scale to zero), or a count with --target-concurrency (autoscale); for a fixed count use --replicas, and inferctl scale.',
      2,
    );
  }
  // Both targets hold the endpoint at zero: the local gateway, and on aks the front on the system pool.
  if (!['local', 'aks'].includes(target)) throw new CliError(`--min-replicas 0 is not for --target ${target}.`, 2);
  const max = maxReplicas ?? replicas;
  if (replicas > max) throw new CliError(`--replicas ${replicas} is more than --max-replicas ${max}.`, 2);
  return {
    maxReplicas: max,
    scaleDownAfterSeconds: scaleDownAfter ?? SCALE_TO_ZERO_DEFAULTS.scaleDownAfterSeconds,
    wakeTimeoutSeconds: wakeTimeout ?? SCALE_TO_ZERO_DEFAULTS.wakeTimeoutSeconds,
  };
}

/** `status`'s lines for a deployment that scales to zero; none for one that does not. */
export function scaleToZeroLines(status: DeployStatus): string[] {
  const z = status.scaleToZero;
  if (!z) return [];
  const lines = [
    `  scale to zero: ${z.state} (0-${z.maxReplicas} replicas; to zero after ${formatDuration(z.scaleDownAfterSeconds * 1000)} without a scoring request; a request waits up to ${formatDuration(z.wakeTimeoutSeconds * 1000)} for a wake)`,
  ];
  if (z.lastWakeAt) {
    const took = z.lastWakeMs === undefined ? 'in progress' : `took ${formatDuration(z.lastWakeMs)}`;
    lines.push(`  last wake ${z.lastWakeAt} (${took}; ${z.lastWakeHeld ?? 0} request(s) held; ${z.wakes} wake(s))`);
  }
  if (z.state === 'cold' && z.coldSince) lines.push(`  cold since ${z.coldSince}`);
  return lines;
}
