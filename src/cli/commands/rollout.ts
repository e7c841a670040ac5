/**
 * `inferctl rollout <name> --model v2.onnx`: serves a new model version behind the same endpoint, canary
 * first. Sends the deploy workflow's `rollout` Update and waits for its answer: the new version serving
 * alone, or the reason it was rolled back (the old version served throughout).
 */
import path from 'node:path';

import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';

import { rolloutUpdate } from '../../../workflows/deploy';
import { ROLLOUT_DEFAULTS } from '../../shared/deploy-types';
import type { RolloutRequest, RolloutResult } from '../../shared/deploy-types';
import { formatDuration } from '../../shared/duration';
import { CliError } from '../cli-error';
import { withClient } from '../client-context';
import type { CommandContext } from '../client-context';
import { duration, int } from '../flag-parsers';
import { PREPROCESS_HELP, preprocessFlag } from '../preprocess-flag';
import { describeDeployment, refusedAsCliError } from './deployments';

export function addRolloutCommand(program: Command): void {
  program
    .command('rollout <name>')
    .description(
      'Serve a new model version behind the same endpoint: beside the old one, smoke query, canary share, bake, ' +
        'then replace it (or roll back, saying why). Local and aks targets.',
    )
    .requiredOption('-m, --model <path>', 'the new ONNX model')
    .option('--preprocess <preset|file.json>', `${PREPROCESS_HELP} (default: the deployment's)`)
    .option('--labels <file>', "labels, one per line (default: the deployment's)")
    .addOption(
      new Option('--canary <percent>', 'share of requests the new version gets during the bake, in percent')
        .argParser(int('--canary', 1))
        .default(ROLLOUT_DEFAULTS.canaryPercent, `${ROLLOUT_DEFAULTS.canaryPercent}%`),
    )
    .addOption(
      new Option('--bake <duration>', 'how long the canary serves before it replaces the old version (e.g. 90s, 5m)')
        .argParser(duration('--bake'))
        .default(300, '5m'),
    )
    .option(
      '--max-error-rate <fraction>',
      'roll back when the canary answers more 5xx than this fraction',
      parseFloat,
      ROLLOUT_DEFAULTS.maxErrorRate,
    )
    .option('--smoke-sample <image>', "the new version's smoke query (default: the deployment's)")
    .option('--expect-label <label>', 'with --smoke-sample: the top label it must answer')
    .option('--json', 'print one JSON document')
    .action(async (name, o) => {
      const request: RolloutRequest = {
        modelPath: path.resolve(o.model),
        canaryPercent: o.canary,
        bakeSeconds: o.bake,
        maxErrorRate: o.maxErrorRate,
        ...(o.preprocess ? { preprocess: preprocessFlag(o.preprocess) } : {}),
        ...(o.labels ? { labelsPath: path.resolve(o.labels) } : {}),
        ...(o.smokeSample ? { smoke: { samplePath: path.resolve(o.smokeSample), expectedLabel: o.expectLabel } } : {}),
      };
      if (o.expectLabel && !o.smokeSample) throw new CliError('--expect-label needs --smoke-sample.', 2);
      await withClient(Boolean(o.json), (ctx) => rolloutCommand(ctx, { name, request }));
    });
}

export async function rolloutCommand(
  ctx: CommandContext,
  opts: { name: string; request: RolloutRequest },
): Promise<RolloutResult> {
  const { view, desc } = await describeDeployment(ctx, opts.name);
  if (desc.status.name !== 'RUNNING') {
    throw new CliError(`${opts.name} has ended (${desc.status.name.toLowerCase()}); deploy it again instead.`);
  }
  const { request } = opts;
  ctx.out.line(
    `Rolling out ${path.basename(request.modelPath)} to ${opts.name}: ${request.canaryPercent}% of requests for ` +
      `${formatDuration((request.bakeSeconds ?? ROLLOUT_DEFAULTS.bakeSeconds) * 1000)}, then all of them…`,
  );
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  const result = await refusedAsCliError(() => handle.executeUpdate(rolloutUpdate, { args: [request] }));
  ctx.out.line(
    `${opts.name} now serves ${path.basename(request.modelPath)} (${result.modelDigest?.slice(0, 19) ?? 'digest unknown'}); ` +
      `the canary answered ${result.bake.requests} request(s), ${result.bake.errors} error(s).`,
  );
  ctx.out.result(result);
  return result;
}
