/**
 * `inferctl deploy`'s autoscaling flags: `--target-concurrency C` with `--min-replicas A --max-replicas B`
 * (A may be 0 with scale to zero's flags), and the HPA-like timings `--autoscale-period`,
 * `--scale-up-window`, `--scale-down-window`; checked here together with the scale-to-zero flags and made
 * into the deploy input. And how `status` prints the bounds and the latest decisions.
 */
import type { Command, OptionValues } from '@commander-js/extra-typings';
import { InvalidArgumentError } from '@commander-js/extra-typings';

import { AUTOSCALE_DEFAULTS } from '../shared/autoscale-types';
import type { AutoscaleInput } from '../shared/autoscale-types';
import type { DeployStatus, ScaleToZeroInput } from '../shared/deploy-types';
import { formatDuration } from '../shared/duration';
import type { TargetKind } from '../shared/target-types';
import { CliError } from './cli-error';
import { DEFAULT_GPU_VM_SIZE, GPU_VM_SIZES } from '../targets/aks/gpu-sizes';
import { duration, int } from './flag-parsers';
import { scaleToZeroInput } from './scale-to-zero-flags';
import type { ScaleToZeroFlags } from './scale-to-zero-flags';

export interface AutoscaleFlags extends ScaleToZeroFlags {
  targetConcurrency?: number;
  maxGpuNodes?: number;
  /** aks: --cluster (an adopted cluster's pool is the user's: never scaled) and --gpu-vm-size. */
  cluster?: string;
  gpuVmSize?: string;
  autoscalePeriod?: number;
  scaleUpWindow?: number;
  scaleDownWindow?: number;
}

/** A positive number (requests in flight per replica may be fractional: 0.5 is one request per two replicas). */
export function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`${flag} must be a positive number.`);
    return n;
  };
}

/** A duration that may be zero (`0`, `0s`): a stabilisation window of none. */
function windowDuration(flag: string) {
  const parse = duration(flag);
  return (value: string): number => (/^0+(\.0+)?(ms|s|m|h|d)?$/.test(value.trim()) ? 0 : parse(value));
}

const seconds = (s: number) => formatDuration(s * 1000);

/** Adds the autoscaling flags to `deploy`, in one group (after the scale-to-zero ones). */
export function addAutoscaleOptions<Args extends unknown[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return cmd
    .option(
      '--target-concurrency <n>',
      'autoscale between --min-replicas and --max-replicas, aiming at this many requests in flight per replica',
      positiveNumber('--target-concurrency'),
    )
    .option(
      '--max-gpu-nodes <n>',
      `aks, with --target-concurrency: the most nodes the GPU pool grows to (default: what --max-replicas need, one GPU each; at most ${MAX_POOL_NODES})`,
      int('--max-gpu-nodes', 1),
    )
    .option(
      '--autoscale-period <duration>',
      `with --target-concurrency: how long each reading of the load lasts (default ${seconds(AUTOSCALE_DEFAULTS.periodSeconds)})`,
      duration('--autoscale-period'),
    )
    .option(
      '--scale-up-window <duration>',
      `with --target-concurrency: scale up to the lowest recommendation over this window (default ${AUTOSCALE_DEFAULTS.scaleUpWindowSeconds}s: at once)`,
      windowDuration('--scale-up-window'),
    )
    .option(
      '--scale-down-window <duration>',
      `with --target-concurrency: scale down to the highest recommendation over this window (default ${seconds(AUTOSCALE_DEFAULTS.scaleDownWindowSeconds)})`,
      windowDuration('--scale-down-window'),
    );
}

export interface ReplicaBounds {
  /** The replicas to start with: --replicas, raised to --min-replicas. */
  replicas: number;
  scaleToZero?: ScaleToZeroInput;
  autoscale?: AutoscaleInput;
}

/** The deploy input's replica count, `scaleToZero` and `autoscale` from the flags; a bad mix is exit 2. */
export function replicaBounds(flags: AutoscaleFlags, target: TargetKind, replicas: number): ReplicaBounds {
  const { targetConcurrency, autoscalePeriod, scaleUpWindow, scaleDownWindow, maxGpuNodes } = flags;
  if (targetConcurrency === undefined) {
    if (
      autoscalePeriod !== undefined ||
      scaleUpWindow !== undefined ||
      scaleDownWindow !== undefined ||
      maxGpuNodes !== undefined
    ) {
      throw new CliError(
        '--autoscale-period, --scale-up-window, --scale-down-window and --max-gpu-nodes go with --target-concurrency.',
        2,
      );
    }
    const scaleToZero = scaleToZeroInput(flags, target, replicas);
    return { replicas, ...(scaleToZero ? { scaleToZero } : {}) };
  }
  if (flags.maxReplicas === undefined) {
    throw new CliError('--target-concurrency needs --max-replicas (the most replicas it may scale to).', 2);
  }
  const min = flags.minReplicas ?? 1;
  const max = flags.maxReplicas;
  if (min > max) throw new CliError(`--min-replicas ${min} is more than --max-replicas ${max}.`, 2);
  const start = Math.max(replicas, min);
  if (start > max) throw new CliError(`--replicas ${start} is more than --max-replicas ${max}.`, 2);
  checkMaxGpuNodes(flags, target, min);
  let scaleToZero: ScaleToZeroInput | undefined;
  if (min === 0) scaleToZero = scaleToZeroInput(flags, target, start);
  else if (flags.scaleDownAfter !== undefined || flags.wakeTimeout !== undefined) {
    throw new CliError('--scale-down-after and --wake-timeout go with --min-replicas 0.', 2);
  }
  return {
    replicas: start,
    ...(scaleToZero ? { scaleToZero } : {}),
    autoscale: {
      minReplicas: min,
      maxReplicas: max,
      targetConcurrency,
      periodSeconds: autoscalePeriod ?? AUTOSCALE_DEFAULTS.periodSeconds,
      scaleUpWindowSeconds: scaleUpWindow ?? AUTOSCALE_DEFAULTS.scaleUpWindowSeconds,
      scaleDownWindowSeconds: scaleDownWindow ?? AUTOSCALE_DEFAULTS.scaleDownWindowSeconds,
      tolerance: AUTOSCALE_DEFAULTS.tolerance,
      ...(maxGpuNodes !== undefined ? { maxGpuNodes } : {}),
    },
  };
}

/** AKS's most nodes in one pool. */
const MAX_POOL_NODES = 1000;

/** --max-gpu-nodes: aks only, a pool inferctl scales, and room for --min-replicas (one GPU per replica). */
function checkMaxGpuNodes(flags: AutoscaleFlags, target: TargetKind, minReplicas: number): void {
  const n = flags.maxGpuNodes;
  if (n === undefined) return;
  if (target !== 'aks') throw new CliError('--max-gpu-nodes is for --target aks (a GPU node pool to grow).', 2);
  if (flags.cluster) {
    throw new CliError(
      '--max-gpu-nodes grows a pool inferctl created; with --cluster the GPU pool is yours and is never scaled (leave it out).',
      2,
    );
  }
  if (n > MAX_POOL_NODES)
    throw new CliError(`--max-gpu-nodes ${n} is more than an AKS pool holds (${MAX_POOL_NODES}).`, 2);
  // The documented sizes have one GPU a node; another size may have more, which the worker reads from Azure.
  const size = flags.gpuVmSize ?? DEFAULT_GPU_VM_SIZE;
  if (!GPU_VM_SIZES.some((s) => s.size === size)) return;
  if (n < minReplicas) {
    throw new CliError(
      `--max-gpu-nodes ${n} is fewer than --min-replicas ${minReplicas} need (${minReplicas} node(s) of ${size}, ` +
        `one GPU each); raise it to ${minReplicas} or more, or lower --min-replicas.`,
      2,
    );
  }
}

/** How many of the latest decisions `status` prints. */
const DECISIONS_SHOWN = 5;

/** `status`'s lines for an autoscaled deployment: the bounds, the timings, the latest decisions. */
export function autoscaleLines(status: DeployStatus): string[] {
  const a = status.autoscale;
  if (!a) return [];
  const lines = [
    `  autoscale: ${a.minReplicas}-${a.maxReplicas} replicas, target ${a.targetConcurrency} in flight per replica ` +
      `(reads ${seconds(a.periodSeconds)}; up over ${seconds(a.scaleUpWindowSeconds)}, down over ${seconds(a.scaleDownWindowSeconds)}; ` +
      `tolerance ${Math.round(a.tolerance * 100)}%); scaled up ${a.scaledUp}, down ${a.scaledDown} time(s)`,
  ];
  const p = a.gpuPool;
  if (p?.managed) {
    lines.push(
      `  GPU pool: ${p.nodes} of at most ${p.maxNodes} node(s) (${p.gpusPerNode} GPU each); grown ${p.grown}, ` +
        `shrunk ${p.shrunk} time(s)${p.held ? `; held at ${p.nodes} node(s): ${p.held}` : ''}`,
    );
  }
  for (const d of a.decisions.slice(-DECISIONS_SHOWN)) lines.push(`  decision ${d.at}: ${d.reason}`);
  return lines;
}
