/**
 * What a shard's worker scored with, written into its done.json and gathered into summary.json: the
 * model output (name, classes) and the preprocessing applied to every image. Today's pipeline
 * (src/images/preprocess.ts) stretches to the input size, keeps RGB, lays out NCHW and normalises as
 * (pixel * scale - mean) / std; the record says so in the preprocessing spec's field names.
 */
import type { ModelInfo } from '../model/model-info';
import type { BatchModelOutput, BatchPreprocess } from '../shared/batch-types';

export function batchModelRecord(
  info: ModelInfo,
  classes: number,
): { output: BatchModelOutput; preprocess: BatchPreprocess } {
  return {
    output: { name: info.outputName, classes, dtype: 'float32' },
    preprocess: {
      resize: { width: info.width, height: info.height },
      channelOrder: 'RGB',
      layout: 'NCHW',
      scale: info.scale,
      mean: [...info.mean],
      std: [...info.std],
    },
  };
}
