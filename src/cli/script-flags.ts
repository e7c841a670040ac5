/**
 * `inferctl deploy`'s scoring-script flags, together: `--entry-script` and what goes with it (`--source-dir`,
 * `--environment`, `--model-name`, `--model-version`) and the smoke query's checks of a script's answer
 * (`--expect-status`, `--expect-json`, `--expect-contains`; `--smoke-sample` and `--expect-label` are shared
 * with image classifiers), checked here for what goes with what and made into the deploy input; validate
 * checks the files. Also how a script's smoke answer is printed.
 */
import path from 'node:path';

import { InvalidArgumentError } from '@commander-js/extra-typings';
import type { Command, OptionValues } from '@commander-js/extra-typings';

import { parseExpectJson } from '../script/smoke-expectation';
import type { DeployInput, DeployStatus, RolloutRequest, ScriptSmokeSpec } from '../shared/deploy-types';
import { CliError } from './cli-error';
import type { Output } from './output';

export interface ScriptFlags {
  entryScript?: string;
  sourceDir?: string;
  environment?: string;
  modelName?: string;
  modelVersion?: string;
  expectStatus?: number;
  expectJson?: { path: string; value: string };
  expectContains?: string;
  gpu?: true;
}

export function httpStatus(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100 || n > 599) {
    throw new InvalidArgumentError('--expect-status must be an HTTP status from 100 to 599, e.g. 405.');
  }
  return n;
}

export function jsonExpectation(value: string): { path: string; value: string } {
  const parsed = parseExpectJson(value);
  if (!parsed) throw new InvalidArgumentError('--expect-json takes PATH=VALUE, e.g. predictions.0.label=lynx.');
  return parsed;
}

/** The scoring-script flags out of commander's options. */
export function scriptFlags(o: ScriptFlags): ScriptFlags {
  const {
    entryScript,
    sourceDir,
    environment,
    modelName,
    modelVersion,
    expectStatus,
    expectJson,
    expectContains,
    gpu,
  } = o;
  return {
    entryScript,
    sourceDir,
    environment,
    modelName,
    modelVersion,
    expectStatus,
    expectJson,
    expectContains,
    gpu,
  };
}

/** Adds the scoring-script flags to `deploy`, in one group. */
export function addScriptOptions<Args extends unknown[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return cmd
    .option(
      '--entry-script <score.py>',
      'serve your Azure ML scoring script (init() and run()) with azureml-inference-server-http behind inferctl’s key; --model is then the file or folder it loads',
    )
    .option('--source-dir <dir>', 'with --entry-script: the folder deployed with it (default: the script’s folder)')
    .option(
      '--environment <requirements.txt|conda.yml>',
      'with --entry-script: the Python environment to build (pip requirements, or a conda file mapped to PyPI names)',
    )
    .option(
      '--model-name <name>',
      'with --entry-script: Model.get_model_path(name) finds the model (default: its file or folder name)',
    )
    .option('--model-version <n>', 'with --entry-script: its version under azureml-models/<name>/ (default 1)')
    .option(
      '--gpu',
      'with --entry-script on --target aks: build the script’s image on NVIDIA’s CUDA base (default: the official Python image)',
    )
    .option('--expect-status <code>', 'with --entry-script: the smoke answer’s status (default 200)', httpStatus)
    .option(
      '--expect-json <path=value>',
      'with --entry-script: fail (and tear down) unless the smoke answer’s JSON holds value at path (e.g. predictions.0.label=lynx)',
      jsonExpectation,
    )
    .option(
      '--expect-contains <text>',
      'with --entry-script: fail (and tear down) unless the smoke answer contains text',
    );
}

/** The deploy input's `script` and `scriptSmoke` from the flags; a flag without the one it needs is exit 2. */
export function scriptInput(
  flags: ScriptFlags & { smokeSample?: string; expectLabel?: string },
): Pick<DeployInput, 'script' | 'scriptSmoke'> {
  const scriptOnly = [
    flags.sourceDir !== undefined ? '--source-dir' : undefined,
    flags.environment !== undefined ? '--environment' : undefined,
    flags.modelName !== undefined ? '--model-name' : undefined,
    flags.modelVersion !== undefined ? '--model-version' : undefined,
    flags.expectStatus !== undefined ? '--expect-status' : undefined,
    flags.expectJson !== undefined ? '--expect-json' : undefined,
    flags.expectContains !== undefined ? '--expect-contains' : undefined,
    flags.gpu ? '--gpu' : undefined,
  ].filter((f) => f !== undefined);
  if (!flags.entryScript) {
    if (scriptOnly.length > 0) throw new CliError(`${scriptOnly.join(', ')} go with --entry-script.`, 2);
    return {};
  }
  const checks = [flags.expectLabel, flags.expectJson, flags.expectContains].filter((c) => c !== undefined);
  if (checks.length > 1) throw new CliError('Give one of --expect-label, --expect-json and --expect-contains.', 2);
  if (!flags.smokeSample && (checks.length > 0 || flags.expectStatus !== undefined)) {
    throw new CliError('--expect-* need --smoke-sample: they check the answer to it.', 2);
  }
  const scriptSmoke: ScriptSmokeSpec | undefined = flags.smokeSample
    ? {
        samplePath: path.resolve(flags.smokeSample),
        ...(flags.expectStatus !== undefined ? { expectStatus: flags.expectStatus } : {}),
        ...(flags.expectLabel !== undefined ? { expectLabel: flags.expectLabel } : {}),
        ...(flags.expectJson ? { expectJson: flags.expectJson } : {}),
        ...(flags.expectContains !== undefined ? { expectContains: flags.expectContains } : {}),
      }
    : undefined;
  return {
    script: {
      entryScript: path.resolve(flags.entryScript),
      ...(flags.sourceDir ? { sourceDir: path.resolve(flags.sourceDir) } : {}),
      ...(flags.environment ? { environmentFile: path.resolve(flags.environment) } : {}),
      ...(flags.modelName ? { modelName: flags.modelName } : {}),
      ...(flags.modelVersion ? { modelVersion: flags.modelVersion } : {}),
      ...(flags.gpu ? { gpu: true } : {}),
    },
    ...(scriptSmoke ? { scriptSmoke } : {}),
  };
}

/**
 * `rollout`'s smoke query from --smoke-sample and its checks: a script candidate gets `scriptSmoke` (every
 * check), an ONNX one `smoke` (its top label); the workflow picks by the candidate's kind, and refuses
 * --expect-status/--expect-json/--expect-contains for an ONNX candidate.
 */
export function rolloutSmokeInput(
  o: Pick<ScriptFlags, 'expectStatus' | 'expectJson' | 'expectContains'> & {
    smokeSample?: string;
    expectLabel?: string;
  },
): Pick<RolloutRequest, 'smoke' | 'scriptSmoke'> {
  const scriptOnly = o.expectStatus !== undefined || o.expectJson !== undefined || o.expectContains !== undefined;
  const checks = [o.expectLabel, o.expectJson, o.expectContains].filter((c) => c !== undefined);
  if (checks.length > 1) throw new CliError('Give one of --expect-label, --expect-json and --expect-contains.', 2);
  if (!o.smokeSample) {
    if (checks.length > 0 || o.expectStatus !== undefined) {
      throw new CliError('--expect-* need --smoke-sample: they check the answer to it.', 2);
    }
    return {};
  }
  const samplePath = path.resolve(o.smokeSample);
  return {
    ...(scriptOnly ? {} : { smoke: { samplePath, expectedLabel: o.expectLabel } }),
    scriptSmoke: {
      samplePath,
      ...(o.expectStatus !== undefined ? { expectStatus: o.expectStatus } : {}),
      ...(o.expectLabel !== undefined ? { expectLabel: o.expectLabel } : {}),
      ...(o.expectJson ? { expectJson: o.expectJson } : {}),
      ...(o.expectContains !== undefined ? { expectContains: o.expectContains } : {}),
    },
  };
}

/** The script smoke answer's line and the endpoint's; false when the deployment is not a script's. */
export function printScriptServing(status: DeployStatus, out: Output): boolean {
  if (status.scriptSmoke) {
    const s = status.scriptSmoke;
    out.line(
      `Smoke answer: ${s.status}${s.checked ? ` (${s.checked})` : ''}: ${s.excerpt.slice(0, 120)} (${s.latencyMs} ms)`,
    );
  }
  if (!status.endpoint || status.protocol !== 'script') return false;
  out.line(
    `Endpoint: ${status.endpoint}/score, any method, as your script answers it  (key: ${status.apiKeyRef ?? 'see target'})`,
  );
  return true;
}
