/**
 * What a script deployment is made of, worked out from its spec once and the same way at validate, at the
 * image step and in --dry-run: the entry script inside its source folder, the environment (requirements and
 * interpreter), the model's name and version under azureml-models/, and where each lands in the app folder
 * the inference server runs from:
 *
 *   <app>/                     AML_APP_ROOT: a copy of --source-dir (the entry script inside it)
 *   <app>/azureml-models/<name>/<version>/<model file or folder>
 *                              AZUREML_MODEL_DIR is that version folder (v2 scripts); Model.get_model_path(name)
 *                              finds its one entry (v1 scripts, with azureml-core in the environment)
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { assertInsideAllowedRoots } from '../allowed-roots';
import { InvalidInputError } from '../errors';
import { FailureType } from '../shared/failure-types';
import type { ScriptSpec } from '../shared/target-types';
import { EnvironmentFileError, parseEnvironmentFile, serverOnlyEnvironment } from './environment-file';
import type { ScriptEnvironment } from './environment-file';
import { pickInterpreter } from './interpreters';
import type { Interpreter } from './interpreters';
import { lastIndexWhere } from './traceback';

const execFileAsync = promisify(execFile);

/** Azure ML's model names: letters, digits, '-', '_', '.'; a version is a whole number (Model.get_model_path's int). */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const MODEL_VERSION = /^[1-9][0-9]{0,8}$/;

export interface ScriptPlan {
  entryScript: string;
  sourceDir: string;
  /** The entry script relative to the source folder, '/'-separated (AZUREML_ENTRY_SCRIPT). */
  entryRelative: string;
  environment: ScriptEnvironment;
  environmentFile?: string;
  interpreter: Interpreter;
  modelName: string;
  modelVersion: string;
  /** The model's folder relative to the app folder: azureml-models/<name>/<version>. */
  modelDirRelative: string;
  /** The model file's or folder's own name inside it. */
  modelEntry: string;
}

/** Problems with the spec alone (paths, names), every one; [] when there are none. */
export function scriptSpecProblems(modelPath: string, script: ScriptSpec): string[] {
  const problems: string[] = [];
  const absolute = (what: string, p: string | undefined) => {
    if (p !== undefined && !path.isAbsolute(p)) problems.push(`${what} must be an absolute path (got ${p})`);
  };
  absolute('entry script', script.entryScript);
  absolute('source folder', script.sourceDir);
  absolute('environment file', script.environmentFile);
  if (!script.entryScript.endsWith('.py')) problems.push(`entry script ${script.entryScript} must be a .py file`);
  const sourceDir = script.sourceDir ?? path.dirname(script.entryScript);
  const rel = path.relative(sourceDir, script.entryScript);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    problems.push(`entry script ${script.entryScript} must be inside the source folder ${sourceDir}`);
  }
  const name = script.modelName ?? path.basename(modelPath);
  if (!MODEL_NAME.test(name)) {
    problems.push(`model name "${name}" must be letters, digits, '-', '_' or '.' (set it with --model-name)`);
  }
  if (script.modelVersion !== undefined && !MODEL_VERSION.test(script.modelVersion)) {
    problems.push(`model version "${script.modelVersion}" must be a whole number from 1 (Azure ML's model versions)`);
  }
  return problems;
}

/** Reads the environment file and picks the interpreter; throws InvalidInputError naming every problem. */
export async function planScript(modelPath: string, script: ScriptSpec): Promise<ScriptPlan> {
  const problems = scriptSpecProblems(modelPath, script);
  if (problems.length > 0) {
    throw new InvalidInputError(
      `Invalid scoring script deployment: ${problems.join('; ')}.`,
      FailureType.InvalidDeployment,
    );
  }
  const sourceDir = script.sourceDir ?? path.dirname(script.entryScript);
  assertInsideAllowedRoots('entry script', script.entryScript);
  assertInsideAllowedRoots('source folder', sourceDir);
  if (script.environmentFile) assertInsideAllowedRoots('environment file', script.environmentFile);
  let environment: ScriptEnvironment;
  if (script.environmentFile) {
    let text: string;
    try {
      text = await fs.readFile(script.environmentFile, 'utf8');
    } catch {
      throw new InvalidInputError(
        `The environment file ${script.environmentFile} does not exist on this worker; pass a requirements.txt or conda .yml with --environment.`,
        FailureType.InputNotFound,
      );
    }
    try {
      environment = parseEnvironmentFile(script.environmentFile, text);
    } catch (err) {
      if (err instanceof EnvironmentFileError) throw new InvalidInputError(err.message, FailureType.InvalidDeployment);
      throw err;
    }
  } else {
    environment = serverOnlyEnvironment();
  }
  const interpreter = await pickInterpreter(environment.pythonMinor);
  const modelName = script.modelName ?? path.basename(modelPath);
  const modelVersion = script.modelVersion ?? '1';
  return {
    entryScript: script.entryScript,
    sourceDir,
    entryRelative: path.relative(sourceDir, script.entryScript).split(path.sep).join('/'),
    environment,
    ...(script.environmentFile ? { environmentFile: script.environmentFile } : {}),
    interpreter,
    modelName,
    modelVersion,
    modelDirRelative: `azureml-models/${modelName}/${modelVersion}`,
    modelEntry: path.basename(modelPath),
  };
}

/**
 * Compiles the entry script with the chosen interpreter (nothing written: no __pycache__ in the user's
 * folder). A missing script or a syntax error is the user's, with Python's own words.
 */
export async function compileEntryScript(plan: ScriptPlan): Promise<void> {
  try {
    await fs.access(plan.entryScript);
  } catch {
    throw new InvalidInputError(
      `The entry script ${plan.entryScript} does not exist on this worker; pass your score.py with --entry-script.`,
      FailureType.InputNotFound,
    );
  }
  const check = 'import sys\nsrc = open(sys.argv[1], "rb").read()\ncompile(src, sys.argv[1], "exec")';
  try {
    await execFileAsync(plan.interpreter.executable, ['-I', '-c', check, plan.entryScript], { timeout: 60_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? err);
    const lines = stderr.trim().split('\n');
    // Python's report: the File line, the source line and caret, and the error itself.
    const from = lastIndexWhere(lines, (l) => l.trimStart().startsWith('File '));
    throw new InvalidInputError(
      `The entry script does not compile with Python ${plan.interpreter.version}:\n${lines.slice(Math.max(0, from)).join('\n')}\n` +
        'Fix it (run python -m py_compile on it) and deploy again.',
      FailureType.InvalidDeployment,
    );
  }
}
