/**
 * The model a session runs is the file the allowed-roots check read: onnxruntime gets its bytes, never the
 * path to open again. A file swapped for a link to a file outside the roots right after the check (the
 * race a link planted between check and open would win) changes nothing: the session serves the checked
 * model, and the outside file is never opened.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { buildTinyCnn, TINY_CNN_LABELS } from '../../src/demo/tiny-cnn';
import { loadOnnxModel } from '../../src/inference-protocol/server/model';
import * as modelInfo from '../../src/model/model-info';
import { preprocessImage } from '../../src/preprocess/preprocess-image';
import { Classifier } from '../../src/scoring/classifier';
import { recordReliability } from '../helpers/reliability';

describe('the session opens the bytes that were checked', () => {
  let dir: string;
  let allowed: string;
  let outside: string;
  const saved = {
    roots: process.env.INFERCTL_ALLOWED_ROOTS,
    file: modelInfo.readModelFile,
    info: modelInfo.readModelInfo,
  };

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-model-bytes-'));
    allowed = path.join(dir, 'allowed');
    outside = path.join(dir, 'outside', 'secret.onnx');
    await fs.mkdir(allowed);
    await fs.mkdir(path.dirname(outside));
    await fs.writeFile(outside, 'not a model: a file the worker must never open for this user\n');
    process.env.INFERCTL_ALLOWED_ROOTS = allowed;
  });
  after(async () => {
    process.env.INFERCTL_ALLOWED_ROOTS = saved.roots;
    if (saved.roots === undefined) delete process.env.INFERCTL_ALLOWED_ROOTS;
    Object.assign(modelInfo, { readModelFile: saved.file, readModelInfo: saved.info });
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Right after the checked read, the model file becomes a link to the outside file. */
  function swapAfterCheck(modelPath: string): void {
    const swap = async () => {
      await fs.rm(modelPath);
      await fs.symlink(outside, modelPath);
    };
    Object.assign(modelInfo, {
      readModelFile: async (p: string) => saved.file(p).then(async (bytes) => (await swap(), bytes)),
      // Older code read through readModelInfo and then opened the path: the swap goes after that read too.
      readModelInfo: async (p: string, o?: modelInfo.ModelOverrides) =>
        saved.info(p, o).then(async (info) => (await swap(), info)),
    });
  }

  test('model-swapped-after-check: the classifier serves the checked model', async () => {
    const modelPath = path.join(allowed, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    swapAfterCheck(modelPath);
    const classifier = await Classifier.load(modelPath, { intraOpNumThreads: 1 });
    Object.assign(modelInfo, { readModelFile: saved.file, readModelInfo: saved.info });
    try {
      assert.equal(await fs.readlink(modelPath), outside, 'the file was swapped for the link');
      const image = await preprocessImage(await makeColourJpeg(TINY_CNN_LABELS[2]!), classifier.info);
      const [scores] = await classifier.infer([image]);
      assert.equal(classifier.topK(scores!, 1)[0]?.label, TINY_CNN_LABELS[2]);
    } finally {
      await classifier.release();
    }
    recordReliability({
      test: 'allowed roots: the model swapped for a link after the check',
      faultsInjected: 0,
      survived: true,
      attack: 'model-swapped-after-check',
      attacksTried: 1,
      attacksRefused: 1,
    });
  });

  test('the V2 server’s model: read through the check, opened from its bytes', async () => {
    const modelPath = path.join(allowed, 'v2.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    swapAfterCheck(modelPath);
    const model = await loadOnnxModel(modelPath);
    Object.assign(modelInfo, { readModelFile: saved.file, readModelInfo: saved.info });
    try {
      assert.equal(await fs.readlink(modelPath), outside);
      assert.equal(model.inputMetadata[0]?.name, 'image', 'the checked model’s input');
    } finally {
      await model.release();
    }
    // And a link that already leaves the roots when it is checked is refused before anything is read.
    await assert.rejects(loadOnnxModel(modelPath), /outside the directories this worker may use/);
  });
});
