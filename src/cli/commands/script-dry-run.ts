/**
 * `inferctl deploy --entry-script … --dry-run`: what a script deployment would build, creating nothing and
 * needing no worker: the entry script compiled with the interpreter chosen, the requirements pip would
 * install (conda names mapped), the environment's hash and whether it is built already, where the script
 * and the model land and the server command; for `--target aks`, the Python image's Dockerfile, the
 * container's arguments and the Secrets mounted with their modes (with --gpu, the CUDA base, and a warning
 * when nothing in the environment uses a GPU).
 */
import fs from 'node:fs';
import path from 'node:path';

import { InvalidInputError } from '../../errors';
import { environmentHash } from '../../script/python-env';
import { compileEntryScript, planScript } from '../../script/script-plan';
import type { ScriptSpec, TargetKind } from '../../shared/target-types';
import { scriptImage } from '../../targets/aks/script-image';
import type { ScriptImage } from '../../targets/aks/script-image';
import { pythonEnvCache } from '../../targets/local/script-replica';
import { inferctlHome } from '../../paths';
import { CliError } from '../cli-error';
import type { CommandContext } from '../client-context';
import { nameFromModel } from '../deployment-name';
import { createOutput } from '../output';
import { scriptFlags, scriptInput } from '../script-flags';
import type { ScriptFlags } from '../script-flags';
import { jobLocation } from '../batch-flags';
import { isBlobLocation } from '../../storage/blob-location';

export interface ScriptDryRunReport {
  name: string;
  target: TargetKind;
  entryScript: string;
  python: string;
  requirements: string[];
  renamed: string[];
  environment: { hash: string; dir: string; built: boolean };
  app: { AML_APP_ROOT: string; AZUREML_ENTRY_SCRIPT: string; AZUREML_MODEL_DIR: string; model: string };
  command: string[];
  image?: ScriptImage;
}

export async function scriptDryRunCommand(
  ctx: Pick<CommandContext, 'out'>,
  opts: { target: TargetKind; modelPath: string; name?: string; script: ScriptSpec; tls: boolean },
): Promise<ScriptDryRunReport> {
  // A blob prefix is listed and copied by the worker (validate, image step), not here.
  const modelPath = jobLocation(opts.modelPath);
  if (!isBlobLocation(modelPath) && !fs.existsSync(modelPath))
    throw new CliError(`Model not found: ${modelPath}. Pass the file or folder with --model.`, 2);
  if (opts.script.gpu && opts.target !== 'aks') {
    throw new CliError('--gpu (a CUDA base image for the script) is for --target aks.', 2);
  }
  let plan;
  try {
    plan = await planScript(modelPath, opts.script);
    await compileEntryScript(plan);
  } catch (err) {
    if (err instanceof InvalidInputError) throw new CliError(err.message, 2);
    throw err;
  }
  const hash = environmentHash(plan.interpreter, plan.environment);
  const envDir = path.join(pythonEnvCache(path.join(inferctlHome(), 'local')), hash.slice(0, 24));
  const name = opts.name ?? nameFromModel(modelPath);
  const app = '<bundle>/app';
  const report: ScriptDryRunReport = {
    name,
    target: opts.target,
    entryScript: plan.entryScript,
    python: `${plan.interpreter.version} (${plan.interpreter.executable})`,
    requirements: plan.environment.requirements,
    renamed: plan.environment.renamed,
    environment: { hash, dir: envDir, built: fs.existsSync(path.join(envDir, '.inferctl-env.json')) },
    app: {
      AML_APP_ROOT: `${app} (a copy of ${plan.sourceDir})`,
      AZUREML_ENTRY_SCRIPT: plan.entryRelative,
      AZUREML_MODEL_DIR: `${app}/${plan.modelDirRelative}`,
      model: `${app}/${plan.modelDirRelative}/${plan.modelEntry}`,
    },
    command: [
      'python',
      '-m',
      'gunicorn',
      '--bind',
      '127.0.0.1:<free port>',
      'azureml_inference_server_http.server.entry:app',
    ],
    ...(opts.target === 'aks'
      ? { image: scriptImage(plan, { name, tls: opts.tls, ...(opts.script.gpu ? { gpu: true } : {}) }) }
      : {}),
  };
  const lines = [
    `Dry run: scoring script ${plan.entryRelative} as "${name}" on ${opts.target}; nothing is created.`,
    `  Python ${report.python}; the script compiles.`,
    `  Environment ${hash.slice(0, 12)}: ${report.environment.built ? `built already (${envDir})` : `to build in ${envDir}`}`,
    ...report.requirements.map((r) => `    ${r}`),
    ...(report.renamed.length > 0 ? [`  conda names mapped: ${report.renamed.join(', ')}`] : []),
    `  AML_APP_ROOT ${report.app.AML_APP_ROOT}; AZUREML_ENTRY_SCRIPT ${report.app.AZUREML_ENTRY_SCRIPT}`,
    `  AZUREML_MODEL_DIR ${report.app.AZUREML_MODEL_DIR}; the model at ${report.app.model}`,
    `  Python server: ${report.command.join(' ')}, behind inferctl's front (key, limits, /readyz, /metrics)`,
  ];
  if (report.image) {
    lines.push(
      `  The image ACR Tasks would build (base ${report.image.base}):`,
      ...report.image.dockerfile
        .trimEnd()
        .split('\n')
        .map((l) => `    ${l}`),
      `  container: node ${report.image.args.join(' ')}`,
      `  runs as ${report.image.user}; mounted: ${report.image.mounts.map((m) => `${m.path} (${m.mode}, ${m.from})`).join('; ')}`,
      ...report.image.warnings.map((w) => `  Warning: ${w}`),
    );
  }
  ctx.out.line(lines.join('\n'));
  ctx.out.result(report);
  return report;
}

/** The dry run from `deploy`'s flags (with --entry-script). */
export function scriptDryRunFromFlags(
  o: ScriptFlags & {
    target: TargetKind;
    model: string;
    name?: string;
    insecureHttp?: true;
    json?: true;
    smokeSample?: string;
    expectLabel?: string;
  },
): Promise<ScriptDryRunReport> {
  const { script } = scriptInput({ ...scriptFlags(o), smokeSample: o.smokeSample, expectLabel: o.expectLabel });
  return scriptDryRunCommand(
    { out: createOutput(Boolean(o.json)) },
    { target: o.target, modelPath: o.model, name: o.name, script: script!, tls: !o.insecureHttp },
  );
}
