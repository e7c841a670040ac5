/**
 * `inferctl rollout <name> --model v2.onnx`: serves a new model version behind the same endpoint, canary
 * first, or, with `--mirror PCT --compare …`, after comparing its answers with the current version's on a
 * copy of live traffic (the candidate answers no client). `--entry-script` makes the new version a script. Sends the deploy workflow's `rollout` Update and waits for its answer: the new version serving
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
import { MIRROR_DEFAULTS } from '../../shared/mirror-types';
import { agreementFlag, compareFlag, mirrorRequest, percent, printMirror } from '../mirror-flags';
import { PREPROCESS_HELP, preprocessFlag } from '../preprocess-flag';
import { httpStatus, jsonExpectation, rolloutSmokeInput, scriptFlags, scriptInput } from '../script-flags';
import { describeDeployment, refusedAsCliError } from './deployments';

export function addRolloutCommand(program: Command): void {
  program
    .command('rollout <name>')
    .description(
      'Serve a new model version behind the same endpoint: beside the old one, smoke query, canary share (or, with ' +
        '--mirror, a copy of live traffic compared with the old answers), bake, then replace it (or roll back, saying ' +
        'why). Local and aks targets, --mirror included (on aks a front is placed before the serving pods for the bake).',
    )
    .requiredOption('-m, --model <path>', 'the new ONNX model (with --entry-script: the file or folder it loads)')
    .option(
      '--entry-script <score.py>',
      'the new version is your scoring script (as deploy --entry-script); left out, the serving kind (a script deployment keeps its script, with the new --model)',
    )
    .option('--onnx-server', 'the new version is inferctl’s ONNX server, also on a script deployment (the fast path)')
    .option('--source-dir <dir>', 'with --entry-script: the folder deployed with it')
    .option('--environment <requirements.txt|conda.yml>', 'with --entry-script: its Python environment')
    .option('--model-name <name>', 'with --entry-script: Model.get_model_path(name) finds the model')
    .option('--model-version <n>', 'with --entry-script: its version under azureml-models/<name>/')
    .option('--preprocess <preset|file.json>', `${PREPROCESS_HELP} (default: the deployment's)`)
    .option('--labels <file>', "labels, one per line (default: the deployment's)")
    .addOption(
      new Option(
        '--canary <percent>',
        `share of requests the new version gets during the bake, in percent (default: ${ROLLOUT_DEFAULTS.canaryPercent}%)`,
      ).argParser(int('--canary', 1)),
    )
    .option(
      '--mirror <percent>',
      'instead of a canary: copy this share of the requests the current version answers to the new one, compare the answers, never return its own',
      percent,
    )
    .option('--compare <top1|tolerance:X>', 'with --mirror: how a pair of answers agrees', compareFlag)
    .option(
      '--min-agreement <fraction>',
      `with --mirror: promote only when this share of pairs agree (default: ${MIRROR_DEFAULTS.minAgreement})`,
      agreementFlag,
    )
    .option(
      '--min-pairs <n>',
      `with --mirror: promote only after this many pairs are compared (default: ${MIRROR_DEFAULTS.minPairs})`,
      int('--min-pairs', 1),
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
    .option(
      '--smoke-sample <file>',
      "the new version's smoke query, on every candidate replica (default: the deployment's)",
    )
    .option('--expect-label <label>', 'with --smoke-sample: the top label it must answer')
    .option(
      '--expect-status <code>',
      'with --smoke-sample, a script version: the answer’s status (default 200)',
      httpStatus,
    )
    .option(
      '--expect-json <path=value>',
      'with --smoke-sample, a script version: the answer’s JSON must hold value at path (e.g. label=green)',
      jsonExpectation,
    )
    .option('--expect-contains <text>', 'with --smoke-sample, a script version: the answer must contain text')
    .option('--json', 'print one JSON document')
    .action(async (name, o) => {
      const mirror = mirrorRequest(o, o.canary !== undefined);
      const { expectStatus, expectJson, expectContains, ...flags } = scriptFlags(o);
      const { script } = scriptInput(flags);
      const smoke = rolloutSmokeInput({ ...o, expectStatus, expectJson, expectContains });
      if (script && o.onnxServer) throw new CliError('--onnx-server and --entry-script choose two kinds; give one.', 2);
      if (script && (o.preprocess || o.labels)) {
        throw new CliError('--preprocess and --labels do not apply to a scoring script (it does its own).', 2);
      }
      const request: RolloutRequest = {
        modelPath: path.resolve(o.model),
        canaryPercent: o.canary ?? ROLLOUT_DEFAULTS.canaryPercent,
        bakeSeconds: o.bake,
        maxErrorRate: o.maxErrorRate,
        ...(o.preprocess ? { preprocess: preprocessFlag(o.preprocess) } : {}),
        ...(o.labels ? { labelsPath: path.resolve(o.labels) } : {}),
        ...smoke,
        ...(script ? { script } : {}),
        ...(mirror ? { mirror } : {}),
        ...(o.onnxServer ? { onnxServer: true } : {}),
      };
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
  const version = path.basename(request.script?.entryScript ?? request.modelPath);
  const bake = formatDuration((request.bakeSeconds ?? ROLLOUT_DEFAULTS.bakeSeconds) * 1000);
  ctx.out.line(
    request.mirror
      ? `Rolling out ${version} to ${opts.name}: ${request.mirror.percent}% of requests mirrored to it for ${bake}, ` +
          `promoted if ${(100 * request.mirror.minAgreement).toFixed(1)}% of at least ${request.mirror.minPairs} pairs agree…`
      : `Rolling out ${version} to ${opts.name}: ${request.canaryPercent}% of requests for ${bake}, then all of them…`,
  );
  const handle = ctx.client.workflow.getHandle(view.workflowId, view.runId);
  const result = await refusedAsCliError(() => handle.executeUpdate(rolloutUpdate, { args: [request] }));
  if (result.mirror) printMirror(result.mirror, ctx.out);
  ctx.out.line(
    `${opts.name} now serves ${version} (${result.modelDigest?.slice(0, 19) ?? 'digest unknown'}); ` +
      (result.mirror
        ? `the mirror compared ${result.mirror.pairs} pair(s).`
        : `the canary answered ${result.bake.requests} request(s), ${result.bake.errors} error(s).`),
  );
  ctx.out.result(result);
  return result;
}
