/**
 * Which preprocessing spec a model is served with, in precedence order: the one given (`--preprocess`,
 * carried in the workflow input), then a sidecar `<model>.preprocess.json`, then the model's
 * `inferctl.preprocess` metadata (the old {"width","height","layout","scale","mean","std"} form included),
 * then defaults from the input shape (a stretch to the input size, ImageNet normalisation). The labels follow
 * the same rule (labels.ts). A given spec of `decode` alone (`--decode` without `--preprocess`) changes only how
 * JPEGs decode, on top of the spec the other sources give.
 * A bad given or sidecar spec is an InvalidInputError (InvalidPreprocess); bad metadata a ModelError, as
 * before; each lists every problem at once.
 */
import fs from 'node:fs/promises';

import { InvalidInputError, ModelError } from '../errors';
import { PREPROCESS_KEY } from '../model/metadata';
import { fitPreprocess, parsePreprocessConfig } from './preprocess-spec';
import type { InputShape } from './preprocess-spec';
import { FailureType } from '../shared/failure-types';
import type { PreprocessConfig, PreprocessSource, ResolvedPreprocess } from '../shared/preprocess-types';

/** `dir/name.onnx` → `dir/name.preprocess.json`, the sidecar spec read when no spec is given. */
export function preprocessSidecarPath(modelPath: string): string {
  return `${modelPath.replace(/\.onnx$/i, '')}.preprocess.json`;
}

export async function modelPreprocess(
  modelPath: string,
  input: InputShape,
  given: PreprocessConfig | undefined,
  metadata: string | undefined,
): Promise<{ spec: ResolvedPreprocess; source: PreprocessSource }> {
  // `--decode` alone sets how JPEGs decode on top of whichever spec is used; any other given field is a spec.
  const { decode, ...rest } = given ?? {};
  const resolved = await specFromSources(modelPath, input, Object.keys(rest).length > 0 ? given : undefined, metadata);
  return decode ? { ...resolved, spec: { ...resolved.spec, decode } } : resolved;
}

async function specFromSources(
  modelPath: string,
  input: InputShape,
  given: PreprocessConfig | undefined,
  metadata: string | undefined,
): Promise<{ spec: ResolvedPreprocess; source: PreprocessSource }> {
  if (given !== undefined) {
    return { spec: fitted(modelPath, given, input, 'the given preprocessing spec (--preprocess)'), source: 'flag' };
  }
  const sidecar = preprocessSidecarPath(modelPath);
  let text: string | undefined;
  try {
    text = await fs.readFile(sidecar, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new InvalidInputError(
        `Cannot read the preprocessing spec ${sidecar} (${(err as NodeJS.ErrnoException).code ?? String(err)}). Check its permissions.`,
        FailureType.InvalidPreprocess,
      );
    }
  }
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidInputError(
        `${sidecar} is not JSON (${(err as Error).message}). Write the spec as a JSON object (see README, "Bring your model").`,
        FailureType.InvalidPreprocess,
      );
    }
    return { spec: fitted(modelPath, parsed, input, sidecar), source: 'sidecar' };
  }
  return metadata ? { spec: fromMetadata(modelPath, metadata, input), source: 'metadata' } : defaults(modelPath, input);
}

/** A given or sidecar spec, parsed and fitted; every problem in one InvalidPreprocess error. */
function fitted(modelPath: string, raw: unknown, input: InputShape, source: string): ResolvedPreprocess {
  const { config, problems } = parsePreprocessConfig(raw);
  const fit = fitPreprocess(config, input, source);
  const all = [...problems, ...fit.problems];
  if (all.length > 0) {
    throw new InvalidInputError(
      `${source} cannot be used with ${modelPath}: ${all.join('; ')}. Fix the spec and try again.`,
      FailureType.InvalidPreprocess,
    );
  }
  return fit.spec;
}

function fromMetadata(modelPath: string, raw: string, input: InputShape): ResolvedPreprocess {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  } catch (err) {
    throw new ModelError(
      `${modelPath}: metadata "${PREPROCESS_KEY}" is not a JSON object (${(err as Error).message}). ` +
        'Write it as {"width":224,"height":224,"layout":"NCHW","scale":0.00392156862745098,"mean":[...],"std":[...]}, ' +
        'or pass the spec with --preprocess.',
      FailureType.InvalidModel,
    );
  }
  const { config, problems } = parsePreprocessConfig(parsed);
  const fit = fitPreprocess(config, input, `"${PREPROCESS_KEY}"`);
  const all = [...problems, ...fit.problems];
  if (all.length > 0) {
    throw new ModelError(
      `${modelPath}: metadata "${PREPROCESS_KEY}" is unusable: ${all.join('; ')}. Fix the metadata and re-export, ` +
        'or pass a spec with --preprocess.',
      FailureType.UnsupportedModel,
    );
  }
  return fit.spec;
}

function defaults(modelPath: string, input: InputShape): { spec: ResolvedPreprocess; source: PreprocessSource } {
  const fit = fitPreprocess({}, input, `"${PREPROCESS_KEY}"`);
  if (fit.problems.length > 0) {
    throw new ModelError(
      `${modelPath}: the input size cannot be determined: ${fit.problems.join('; ')}. ` +
        'Pass a spec with --preprocess (e.g. {"resize":{"width":224,"height":224}}), or fix the metadata and re-export.',
      FailureType.UnsupportedModel,
    );
  }
  return { spec: fit.spec, source: 'defaults' };
}
