/** The deployment (or job) name inferctl derives from a file name when `--name` is not given. */
import path from 'node:path';

/** `ResNet50_v2.onnx` → `resnet50-v2`: lowercase letters, digits and single hyphens, at most 40 characters. */
export function nameFromModel(modelPath: string): string {
  const base = path
    .basename(modelPath, path.extname(modelPath))
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return base || 'model';
}
