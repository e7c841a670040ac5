/**
 * `--preprocess <preset|file.json>`: a preset name becomes `{ preset }`, a file is read and checked field
 * by field here, where the user typed it (every problem at once, exit 2); either way the spec travels as
 * plain data in the workflow input, and is fitted to the model at validate. `--decode <mode>` sets the spec's
 * `decode` on top of it, or alone on top of the model's own spec (src/preprocess/model-preprocess.ts).
 */
import fs from 'node:fs';

import { Option } from '@commander-js/extra-typings';

import { isPreset, parsePreprocessConfig } from '../preprocess/preprocess-spec';
import { DECODE_MODES, PREPROCESS_PRESETS } from '../shared/preprocess-types';
import type { DecodeMode, PreprocessConfig } from '../shared/preprocess-types';
import { CliError } from './cli-error';

export const PREPROCESS_HELP = `preprocessing: a preset (${PREPROCESS_PRESETS.join(', ')}) or a spec .json file`;

export function preprocessFlag(value: string): PreprocessConfig {
  if (isPreset(value)) return { preset: value };
  let text: string;
  try {
    text = fs.readFileSync(value, 'utf8');
  } catch (err) {
    throw new CliError(
      `--preprocess ${value}: not a preset (${PREPROCESS_PRESETS.join(', ')}) and not a readable file ` +
        `(${(err as NodeJS.ErrnoException).code ?? String(err)}).`,
      2,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliError(`--preprocess ${value} is not JSON (${(err as Error).message}).`, 2);
  }
  const { config, problems } = parsePreprocessConfig(raw);
  if (problems.length > 0) throw new CliError(`--preprocess ${value}: ${problems.join('; ')}.`, 2);
  return config;
}

/** `--decode exact|fast|draft` (commander refuses any other value, exit 2). */
export function decodeOption() {
  return new Option(
    '--decode <mode>',
    'how JPEGs decode before the resize: exact (full size), fast (a DCT scale leaving twice the resized size), ' +
      "draft (the smallest DCT scale not below it) (default: the spec's, else fast)",
  ).choices(DECODE_MODES);
}

/** The given spec from `--preprocess` and `--decode` (undefined when neither was given). */
export function givenPreprocess(
  preprocess: string | undefined,
  decode: DecodeMode | undefined,
): PreprocessConfig | undefined {
  if (!preprocess && !decode) return undefined;
  return { ...(preprocess ? preprocessFlag(preprocess) : {}), ...(decode ? { decode } : {}) };
}
