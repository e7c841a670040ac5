/**
 * What a shard's worker scored with, written into its done.json and gathered into summary.json: the
 * model output (name, classes) and the preprocessing applied to every image: the resolved spec
 * (src/preprocess/preprocess-spec.ts), in the spec's own field names.
 */
import type { ModelInfo } from '../model/model-info';
import { configOf } from '../preprocess/preprocess-spec';
import type { BatchModelOutput, BatchPreprocess } from '../shared/batch-types';

export function batchModelRecord(
  info: ModelInfo,
  classes: number,
): { output: BatchModelOutput; preprocess: BatchPreprocess } {
  // Raw rows are float32 whatever the model's output dtype (a float16 output is widened).
  return { output: { name: info.outputName, classes, dtype: 'float32' }, preprocess: { ...configOf(info) } };
}
