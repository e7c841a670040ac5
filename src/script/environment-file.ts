/**
 * A scoring script's environment file, read into what pip installs: a requirements file as is, or a conda
 * environment file (`dependencies:` mapped to PyPI names through conda-names.ts, its `pip:` list as is, a
 * `python=3.X` pin kept as the interpreter to build with). Every problem is collected and reported at once;
 * `azureml-inference-server-http` is added when the file does not name it.
 */
import path from 'node:path';

import { parse as parseYaml } from 'yaml';

import { IMPLIED, pypiNameOf } from './conda-names';

/** The server every script environment gets, in the version inferctl is tested with, when the file names none. */
export const INFERENCE_SERVER_REQUIREMENT = 'azureml-inference-server-http==1.5.1';

export interface ScriptEnvironment {
  /** Lines of a requirements file, in order. */
  requirements: string[];
  /** `3.11` when the file pins Python's minor version. */
  pythonMinor?: string;
  /** What was mapped from conda names, for the validate summary ("tensorflow-gpu → tensorflow"). */
  renamed: string[];
}

/** Thrown when an environment file cannot be turned into a pip install; `problems` lists every reason. */
export class EnvironmentFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`The environment file ${file} cannot be used: ${problems.join('; ')}.`);
    this.name = 'EnvironmentFileError';
  }
}

export function isCondaFile(file: string): boolean {
  return /\.ya?ml$/i.test(file);
}

/** Reads `text` (the content of `file`) into the requirements pip installs; throws EnvironmentFileError. */
export function parseEnvironmentFile(file: string, text: string): ScriptEnvironment {
  const env = isCondaFile(file) ? parseConda(file, text) : parseRequirements(file, text);
  if (!env.requirements.some((r) => requirementName(r) === 'azureml-inference-server-http')) {
    env.requirements.push(INFERENCE_SERVER_REQUIREMENT);
  }
  return env;
}

/** The environment of a script deployed without an environment file: the server alone. */
export function serverOnlyEnvironment(): ScriptEnvironment {
  return { requirements: [INFERENCE_SERVER_REQUIREMENT], renamed: [] };
}

/** The normalised project name a requirement line names (`Foo_Bar[x]>=1` → `foo-bar`), or '' for none. */
export function requirementName(line: string): string {
  const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(line);
  return m ? m[1]!.toLowerCase().replace(/[._]+/g, '-') : '';
}

function parseRequirements(file: string, text: string): ScriptEnvironment {
  const problems: string[] = [];
  const requirements: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const problem = requirementProblem(line);
    if (problem) problems.push(`line ${i + 1} "${line}": ${problem}`);
    else requirements.push(line);
  }
  if (problems.length > 0) throw new EnvironmentFileError(file, problems);
  return { requirements, renamed: [] };
}

/**
 * A line pip would read relative to a folder, or from a file, that the built environment cannot see:
 * refused, saying what to write instead. Index options (--index-url, --extra-index-url) stay: the user
 * named those hosts.
 */
function requirementProblem(line: string): string | undefined {
  if (/^(-r|--requirement|-c|--constraint)\b/.test(line)) return 'include the other file’s lines here instead';
  if (/^(-e|--editable)\b/.test(line)) return 'editable installs are not supported; name the package or a wheel URL';
  if (line.startsWith('-') && !/^--(index-url|extra-index-url|find-links|pre|prefer-binary)\b/.test(line)) {
    return 'this pip option is not supported in an environment file';
  }
  if (/^(\.{0,2}\/|~)/.test(line) || /^file:/i.test(line)) {
    return 'a local path cannot be installed into the environment; put the code in --source-dir instead';
  }
  return undefined;
}

/** A conda match spec (`numpy`, `numpy=1.26`, `tensorflow-gpu = 1.12`, `conda-forge::ujson>=5`) → name and pip version. */
function condaSpec(spec: string): { name: string; version: string } | undefined {
  const m = /^\s*(?:[\w.-]+::)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$/.exec(spec);
  if (!m) return undefined;
  const name = m[1]!.toLowerCase();
  let version = m[2]!.replace(/\s+/g, '');
  // conda's "=1.12" is "1.12.*"; "=1.12=build" pins a build pip has no word for: the version is kept.
  if (/^=[^=<>!]/.test(version)) {
    const v = version.slice(1).split('=')[0]!;
    version = v.includes('*') ? `==${v}` : `==${v}.*`;
  } else if (/^[0-9]/.test(version)) {
    version = `==${version.split('=')[0]!}`;
  } else if (/^==.*=/.test(version)) {
    version = version.replace(/^(==[^=]+)=.*$/, '$1');
  }
  return { name, version };
}

/** `python=3.11`, `python==3.11.7`, `python=3.11.*`, `python 3.11` → `3.11`. */
function pythonPin(version: string): string | undefined {
  const m = /^(?:==?|)(3\.\d+)(?:\.[0-9*]+)?(?:\.\*)?$/.exec(version.replace(/\.\*$/, ''));
  return m?.[1];
}

function parseConda(file: string, text: string): ScriptEnvironment {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new EnvironmentFileError(file, [`it is not valid YAML (${(err as Error).message.split('\n')[0]})`]);
  }
  const deps = (doc as { dependencies?: unknown } | null)?.dependencies;
  if (!Array.isArray(deps)) {
    throw new EnvironmentFileError(file, ['it has no `dependencies:` list (a conda environment file has one)']);
  }
  const problems: string[] = [];
  const unmappable: string[] = [];
  const requirements: string[] = [];
  const renamed: string[] = [];
  let pythonMinor: string | undefined;
  for (const dep of deps as unknown[]) {
    if (dep !== null && typeof dep === 'object' && Array.isArray((dep as { pip?: unknown }).pip)) {
      for (const line of (dep as { pip: unknown[] }).pip) {
        const text = String(line).trim();
        const problem = requirementProblem(text);
        if (problem) problems.push(`pip entry "${text}": ${problem}`);
        else if (text) requirements.push(text);
      }
      continue;
    }
    if (typeof dep !== 'string' && typeof dep !== 'number') {
      problems.push(`dependency ${JSON.stringify(dep)} is neither a package nor a pip: list`);
      continue;
    }
    const spec = condaSpec(String(dep));
    if (!spec) {
      problems.push(`dependency "${String(dep)}" is not a conda package spec`);
      continue;
    }
    if (spec.name === 'python') {
      pythonMinor = pythonPin(spec.version);
      if (!pythonMinor) problems.push(`python "${String(dep)}": pin a minor version, e.g. python=3.11`);
      continue;
    }
    if (IMPLIED.has(spec.name)) continue;
    const pypi = pypiNameOf(spec.name);
    if (!pypi) {
      unmappable.push(spec.name);
      continue;
    }
    if (pypi !== spec.name) renamed.push(`${spec.name} → ${pypi}`);
    requirements.push(`${pypi}${spec.version}`);
  }
  if (unmappable.length > 0) {
    problems.push(
      `conda dependencies with no known PyPI name: ${unmappable.join(', ')} (list each under \`pip:\` by its PyPI ` +
        'name, or drop it: system libraries such as cudatoolkit come inside the PyPI wheels)',
    );
  }
  if (problems.length > 0) throw new EnvironmentFileError(file, problems);
  return { requirements, renamed, ...(pythonMinor ? { pythonMinor } : {}) };
}

/** The requirements file's name inside an environment: stable, so the content hash alone tells environments apart. */
export function environmentLabel(file: string | undefined): string {
  return file ? path.basename(file) : 'server only';
}
