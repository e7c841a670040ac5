/**
 * Shards through the real pipeline (src/batch/shard-scorer.ts) with a decode split, for the tests of the
 * split's phases and its registry: a model whose inference is a large share of the work (a few ms per image
 * against a 64x64 JPEG's decode), real sample JPEGs, and a shard scored into its own predictions and errors
 * files, its rows and checkpoints returned.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

import type { DecodeSplitter } from '../../src/batch/decode-split';
import { EMPTY_CHECKPOINT, scoreShard } from '../../src/batch/shard-scorer';
import { writeSampleImages } from '../../src/demo/sample-images';
import { Classifier } from '../../src/scoring/classifier';
import type { ShardCheckpoint } from '../../src/shared/batch-types';
import { readJsonl } from './jsonl';
import { buildSlowCnn } from './slow-model';

export interface SplitShards {
  dir: string;
  /** The slow model on the CPU, at 2 intra-op threads, with the other settings' sessions allowed. */
  classifier: Classifier;
  inputs: string[];
}

/** Registers the set-up and clean-up of `items` inputs and the slow model; filled in before the tests run. */
export function splitShardsSuite(items: number): SplitShards {
  const s = {} as SplitShards;
  before(async () => {
    s.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-split-shards-'));
    const modelPath = path.join(s.dir, 'slow.onnx');
    await fs.writeFile(modelPath, buildSlowCnn({ layers: 8, channels: 32 }));
    s.inputs = (await writeSampleImages(path.join(s.dir, 'in'), items)).map((w) => w.path);
    s.classifier = await Classifier.load(modelPath, { intraOpNumThreads: 2, intraOpVariants: true });
  });
  after(async () => {
    await fs.rm(s.dir, { recursive: true, force: true });
  });
  return s;
}

/** Scores shard `n` (inputs n·size … (n + 1)·size) with the splitter; its prediction rows and checkpoints. */
export async function scoreSplitShard(
  s: SplitShards,
  splitter: DecodeSplitter,
  shard: { n: number; size: number; batchSize: number },
): Promise<{ rows: Array<{ index: number; path: string }>; checkpoints: ShardCheckpoint[]; predictions: string }> {
  const { n, size } = shard;
  const predictions = path.join(s.dir, `predictions-${n}.jsonl`);
  const handles = await Promise.all([predictions, path.join(s.dir, `errors-${n}.jsonl`)].map((f) => fs.open(f, 'w')));
  const checkpoints: ShardCheckpoint[] = [];
  try {
    await scoreShard({
      classifier: s.classifier,
      inputs: s.inputs.slice(n * size, (n + 1) * size),
      baseIndex: n * size,
      batchSize: shard.batchSize,
      topK: 1,
      sinks: { predictions: handles[0]!, errors: handles[1]! },
      from: EMPTY_CHECKPOINT,
      onCheckpoint: (cp) => checkpoints.push(cp),
      decodeSplit: { splitter, executionProvider: 'cpu' },
    });
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
  return { rows: await readJsonl(predictions), checkpoints, predictions };
}
