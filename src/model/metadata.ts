/**
 * inferctl's model metadata convention: two ONNX `metadata_props` that make a model self-describing.
 *   inferctl.preprocess  JSON: a preprocessing spec (docs/preprocessing.md: resize, crop, channelOrder,
 *                        scale, mean, std, layout, interpolation, orientation, output, or a preset), or the
 *                        original form {"width","height","layout":"NCHW","scale","mean":[3],"std":[3]}
 *   inferctl.labels      JSON array of label strings, in output order
 * One rule for both: the flag (`--preprocess`, `--labels`), then the model's sidecar (`<model>.preprocess.json`,
 * `<model>.labels.txt`, one label per line), then this metadata, then a fallback (defaults from the input
 * shape; a `labels.txt` in the model's directory): model-preprocess.ts and labels.ts.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export const PREPROCESS_KEY = 'inferctl.preprocess';
export const LABELS_KEY = 'inferctl.labels';

export interface PreprocessSpec {
  width: number;
  height: number;
  layout: 'NCHW';
  /** Pixel values (0-255) are multiplied by this, then normalised: (pixel * scale - mean) / std. */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** torchvision's ImageNet normalisation: what most exported classifiers expect when they do not say. */
export const IMAGENET_NORMALISATION: Pick<PreprocessSpec, 'scale' | 'mean' | 'std'> = {
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** The metadata props for a model with this preprocessing and these labels. */
export function modelMetadata(preprocess: PreprocessSpec, labels: string[]): Record<string, string> {
  return { [PREPROCESS_KEY]: JSON.stringify(preprocess), [LABELS_KEY]: JSON.stringify(labels) };
}

/** `dir/name.onnx` → `dir/name.labels.txt`, the sidecar read when a model carries no labels. */
export function labelsSidecarPath(modelPath: string): string {
  return `${modelPath.replace(/\.onnx$/i, '')}.labels.txt`;
}

/** Writes the labels sidecar for a model (one label per line), atomically; returns its path. */
export async function writeLabelsFile(modelPath: string, labels: string[]): Promise<string> {
  const bad = labels.find((l) => l.trim() !== l || l.length === 0 || l.includes('\n'));
  if (bad !== undefined) throw new Error(`Label ${JSON.stringify(bad)} cannot be written one per line.`);
  const file = labelsSidecarPath(modelPath);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fs.writeFile(tmp, labels.join('\n') + '\n');
  await fs.rename(tmp, file);
  return file;
}
