/**
 * `inferctl scale NAME --replicas N`: the `scale` Update (scaleCommand, deployments.ts). And, for a
 * deployment that autoscales, `inferctl scale NAME --min-replicas A --max-replicas B [--target-concurrency C]`:
 * new bounds, sent as the `autoscale` Update. Its validator refuses bad bounds with the reason (exit 2); the
 * answer is the bounds now and the replicas, moved into them if they were not.
 */
import type { Command } from '@commander-js/extra-typings';

import { autoscaleUpdate } from '../../../workflows/deploy';
import type { AutoscaleRequest, AutoscaleResult } from '../../shared/autoscale-types';
import { positiveNumber } from '../autoscale-flags';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { int } from '../flag-parsers';
import { describeDeployment, refusedAsCliError, scaleCommand } from './deployments';

export function addScaleCommand(program: Command): void {
  program
    .command('scale <name>')
    .description('Change how many replicas serve a deployment, or an autoscaled one’s bounds; returns once ready')
    .option('-r, --replicas <n>', 'replicas to run (within the target’s limit and GPU capacity)', int('--replicas', 1))
    .option(
      '--min-replicas <n>',
      'autoscaled: the fewest replicas (0 only if deployed with it)',
      int('--min-replicas', 0),
    )
    .option('--max-replicas <n>', 'autoscaled: the most replicas', int('--max-replicas', 1))
    .option(
      '--target-concurrency <n>',
      'autoscaled: requests in flight per replica',
      positiveNumber('--target-concurrency'),
    )
    .option('--json', 'print one JSON document')
    .action(async (name, o) => {
      const { replicas, minReplicas, maxReplicas, targetConcurrency } = o;
      const bounds = minReplicas !== undefined || maxReplicas !== undefined || targetConcurrency !== undefined;
      if (bounds === (replicas !== undefined)) {
        throw new CliError(
          'scale takes --replicas N, or (for an autoscaled deployment) --min-replicas, --max-replicas, --target-concurrency.',
          2,
        );
      }
      await withClient(Boolean(o.json), async (ctx) => {
        if (replicas !== undefined) await scaleCommand(ctx, { name, replicas });
        else await autoscaleCommand(ctx, { name, minReplicas, maxReplicas, targetConcurrency });
      });
    });
}

export async function autoscaleCommand(
  ctx: CommandContext,
  opts: { name: string } & AutoscaleRequest,
): Promise<AutoscaleResult> {
  const { name, ...request } = opts;
  const { view, desc } = await describeDeployment(ctx, name);
  if (desc.status.name !== 'RUNNING') {
    throw new CliError(`${name} has ended (${desc.status.name.toLowerCase()}); only a running deployment scales.`);
  }
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  const result = await refusedAsCliError(() => handle.executeUpdate(autoscaleUpdate, { args: [request] }));
  const moved = result.replicas !== result.previousReplicas ? ` (was ${result.previousReplicas})` : '';
  ctx.out.line(
    `${name} autoscales between ${result.minReplicas} and ${result.maxReplicas} replicas, target ` +
      `${result.targetConcurrency} in flight per replica; it serves ${result.replicas} replica(s)${moved}.`,
  );
  ctx.out.result(result);
  return result;
}
