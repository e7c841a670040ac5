/**
 * A model's labels, in output order, by the rule the preprocessing spec follows too (model-preprocess.ts):
 * given (`--labels`), else the model's sidecar `<model>.labels.txt`, else its "inferctl.labels" metadata,
 * else a `labels.txt` in the model's directory (one label per line).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { readFileInsideAllowedRoots, rootsAndHome } from '../allowed-roots';
import { InvalidInputError, ModelError } from '../errors';
import { LABELS_KEY, labelsSidecarPath } from './metadata';
import { FailureType } from '../shared/failure-types';
import type { LabelsSource } from '../shared/preprocess-types';

/** One label per line (CRLF tolerated, blank lines skipped): the format of --labels and of the sidecars. */
export function parseLabelsText(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** A labels file given with --labels: one label per line, in output order. */
export async function readLabelsFile(file: string): Promise<string[]> {
  let text: string;
  try {
    // Checked by what is opened (INFERCTL_ALLOWED_ROOTS), so a link swapped in after validation is refused.
    text = (await readFileInsideAllowedRoots('labels file', file, rootsAndHome())).toString('utf8');
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidInputError(
      code === 'ENOENT'
        ? `Labels file not found: ${file}. Pass a text file with one label per line, in output order, with --labels.`
        : `Cannot read the labels file ${file} (${code ?? String(err)}). Check that it exists and is readable.`,
      FailureType.MissingLabels,
    );
  }
  const labels = parseLabelsText(text);
  if (labels.length === 0) {
    throw new InvalidInputError(
      `The labels file ${file} is empty. Put one label per line, in output order.`,
      FailureType.MissingLabels,
    );
  }
  return labels;
}

/** Reads a labels sidecar; undefined where it does not exist. */
async function readSidecar(file: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelError(
      `Cannot read the labels file ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}). Check its permissions.`,
      FailureType.MissingLabels,
    );
  }
  const labels = parseLabelsText(text);
  if (labels.length > 0) return labels;
  throw new ModelError(
    `The labels file ${file} is empty. Put one label per line, in output order.`,
    FailureType.MissingLabels,
  );
}

/**
 * A model's own labels (no --labels): `<model>.labels.txt`, else the "inferctl.labels" metadata, else
 * `labels.txt` in its directory; and where they came from.
 */
export async function readLabels(
  modelPath: string,
  fromMetadata: string | undefined,
): Promise<{ labels: string[]; source: LabelsSource }> {
  const sidecar = await readSidecar(labelsSidecarPath(modelPath));
  if (sidecar) return { labels: sidecar, source: 'sidecar' };
  if (fromMetadata) {
    let labels: unknown;
    try {
      labels = JSON.parse(fromMetadata);
    } catch {
      // reported below
    }
    if (Array.isArray(labels) && labels.length > 0 && labels.every((l) => typeof l === 'string')) {
      return { labels, source: 'metadata' };
    }
    throw new ModelError(
      `${modelPath}: metadata "${LABELS_KEY}" must be a non-empty JSON array of strings. Fix it, or remove it and ` +
        `put the labels in ${path.basename(labelsSidecarPath(modelPath))} beside the model.`,
      FailureType.MissingLabels,
    );
  }
  const directory = await readSidecar(path.join(path.dirname(modelPath), 'labels.txt'));
  if (directory) return { labels: directory, source: 'directory' };
  throw new ModelError(
    `${modelPath} has no labels: add ${path.basename(labelsSidecarPath(modelPath))} (one label per line, in output order) beside it, ` +
      `or set the "${LABELS_KEY}" metadata to a JSON array.`,
    FailureType.MissingLabels,
  );
}
