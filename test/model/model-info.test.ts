/**
 * readModelInfo reads a model's contract from the protobuf alone, and refuses every way a model file can
 * be unusable with a stable type and a message that says what to fix.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { onnx } from 'onnx-proto';

import { ModelError } from '../../src/errors';
import { IMAGENET_NORMALISATION, LABELS_KEY, PREPROCESS_KEY, writeLabelsFile } from '../../src/model/metadata';
import { readModelInfo } from '../../src/model/model-info';
import { ElemType, GraphBuilder } from '../../src/model/onnx-builder';
import type { Dim } from '../../src/model/onnx-builder';
import { seededRandom } from '../../src/demo/seeded-random';
import { buildTinyCnn, TINY_CNN_LABELS, TINY_CNN_PREPROCESS } from '../../src/demo/tiny-cnn';

/** Seeded random bytes: the same "random file" every run. */
function noise(length: number): Buffer {
  const random = seededRandom(7);
  return Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
}

/** A one-node model: input → GlobalAveragePool → Flatten → Softmax over 3 classes. */
function smallModel(
  opts: { input?: Dim[]; elemType?: number; extraInput?: boolean; output?: Dim[] } = {},
  metadata: Record<string, string> = { [LABELS_KEY]: '["a","b","c"]' },
): Uint8Array {
  const g = new GraphBuilder('small');
  const x = g.input('pixels', opts.input ?? ['batch', 3, 32, 32], opts.elemType);
  if (opts.extraInput) g.input('mask', ['batch', 1]);
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: 1 });
  g.node('Softmax', [pooled], { axis: 1 }, 'scores');
  g.output('scores', opts.output ?? ['batch', 3]);
  return g.build(metadata);
}

/** input (NHWC) → Transpose → GlobalAveragePool → Flatten → Softmax over 3 classes (after a Cast when not float). */
function nhwcModel(dims: Dim[], elemType: onnx.TensorProto.DataType = ElemType.FLOAT): Uint8Array {
  const g = new GraphBuilder('nhwc');
  let x = g.input('pixels', dims, elemType);
  if (elemType !== ElemType.FLOAT) x = g.node('Cast', [x], { to: ElemType.FLOAT });
  const nchw = g.node('Transpose', [x], { perm: [0, 3, 1, 2] });
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [nchw])], { axis: 1 });
  g.node('Softmax', [pooled], { axis: 1 }, 'scores');
  g.output('scores', [dims[0]!, 3]);
  return g.build({ [LABELS_KEY]: '["a","b","c"]' });
}

describe('readModelInfo', () => {
  let dir: string;
  let n = 0;
  const write = async (bytes: Uint8Array | string, name = `model-${n++}.onnx`) => {
    const file = path.join(dir, name);
    await fs.writeFile(file, bytes);
    return file;
  };
  const refuses = async (file: string, type: string, messages: RegExp | RegExp[]) => {
    await assert.rejects(readModelInfo(file), (err: unknown) => {
      assert.ok(err instanceof ModelError, String(err));
      assert.equal(err.type, type, err.message);
      for (const message of [messages].flat()) assert.match(err.message, message);
      return true;
    });
  };

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-model-info-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('reads input, output, preprocessing, labels and the file digest', async () => {
    const bytes = buildTinyCnn();
    const file = await write(bytes);
    const info = await readModelInfo(file);
    assert.deepEqual(info, {
      path: file,
      digest: `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`,
      inputName: 'image',
      inputType: 'float32',
      outputName: 'probabilities',
      outputType: 'float32',
      width: 64,
      height: 64,
      scale: TINY_CNN_PREPROCESS.scale,
      mean: TINY_CNN_PREPROCESS.mean,
      std: TINY_CNN_PREPROCESS.std,
      labels: TINY_CNN_LABELS,
      dynamicBatch: true,
      // The rest of the spec: the old metadata form is a stretch to its width × height, with the defaults.
      resize: { width: 64, height: 64 },
      channelOrder: 'RGB',
      layout: 'NCHW',
      interpolation: 'bilinear',
      orientation: 'ignore',
      output: 'auto',
      decode: 'fast',
      preprocessSource: 'metadata',
      labelsSource: 'metadata',
    });
  });

  test('without preprocess metadata: the static input size and ImageNet normalisation', async () => {
    const info = await readModelInfo(await write(smallModel({ input: [1, 3, 40, 30] })));
    assert.equal(info.width, 30);
    assert.equal(info.height, 40);
    assert.deepEqual(info.mean, IMAGENET_NORMALISATION.mean);
    assert.deepEqual(info.std, IMAGENET_NORMALISATION.std);
    assert.equal(info.dynamicBatch, false);
  });

  test('missing, unreadable and non-ONNX files', async () => {
    await refuses(
      path.join(dir, 'missing.onnx'),
      'ModelNotFound',
      /^Model file not found: .*missing\.onnx\. Pass the path/,
    );
    await refuses(dir, 'ModelNotFound', /is a directory/);
    await refuses(await write(''), 'InvalidModel', /not a valid ONNX model \(the file is empty\)\. Re-export it/);
    await refuses(await write(noise(4096)), 'InvalidModel', /not a valid ONNX model/);
    await refuses(await write('{"not": "onnx"}\n'), 'InvalidModel', /not a valid ONNX model/);
    // Decodes as a ModelProto, but has no graph.
    const hollow = onnx.ModelProto.encode({ irVersion: 8, producerName: 'someone' }).finish();
    await refuses(await write(hollow), 'InvalidModel', /no graph/);
  });

  test('inputs that are not one float32, float16 or uint8 NCHW or NHWC image', async () => {
    await refuses(
      await write(smallModel({ input: ['batch', 3] })),
      'UnsupportedModel',
      /input "pixels" is float32 \[batch, 3\]; .*\[batch, 3, height, width\] \(NCHW\)/,
    );
    await refuses(await write(smallModel({ input: ['batch', 1, 32, 32] })), 'UnsupportedModel', /\[batch, 1, 32, 32\]/);
    // uint8 inputs are accepted now (below); a dtype inferctl cannot feed is still refused.
    await refuses(
      await write(smallModel({ elemType: ElemType.DOUBLE })),
      'UnsupportedModel',
      /is double \[batch, 3, 32, 32\]; inferctl needs a float32, float16 or uint8 image input/,
    );
    await refuses(await write(smallModel({ extraInput: true })), 'UnsupportedModel', /has 2 inputs \(pixels, mask\)/);
    await refuses(await write(smallModel({ input: [8, 3, 32, 32] })), 'UnsupportedModel', /fixed batch of 8/);
  });

  test('channels-last (NHWC) inputs, float16 and uint8 inputs, and a batch fixed at 1 are accepted', async () => {
    // Was refused before issue #13 ("It looks channels-last (NHWC): export it channels-first").
    const nhwc = await readModelInfo(await write(nhwcModel(['batch', 32, 24, 3])));
    assert.deepEqual([nhwc.layout, nhwc.width, nhwc.height, nhwc.inputType], ['NHWC', 24, 32, 'float32']);
    assert.equal(nhwc.dynamicBatch, true);
    const half = await readModelInfo(await write(smallModel({ elemType: ElemType.FLOAT16 })));
    assert.deepEqual([half.layout, half.inputType], ['NCHW', 'float16']);
    const bytes = await readModelInfo(await write(nhwcModel([1, 32, 32, 3], ElemType.UINT8)));
    assert.deepEqual([bytes.layout, bytes.inputType, bytes.dynamicBatch], ['NHWC', 'uint8', false]);
  });

  test('labels: <model>.labels.txt, then metadata, then labels.txt, and their count must match', async () => {
    const unlabelled = smallModel({}, {});
    const sub = path.join(dir, 'labels');
    await fs.mkdir(sub);
    const file = path.join(sub, 'net.onnx');
    await fs.writeFile(file, unlabelled);
    await refuses(
      file,
      'MissingLabels',
      /net\.onnx has no labels: add net\.labels\.txt .*or set the "inferctl\.labels"/,
    );

    await fs.writeFile(path.join(sub, 'labels.txt'), 'x\r\ny\r\nz\r\n');
    const fromDir = await readModelInfo(file);
    assert.deepEqual(
      [fromDir.labels, fromDir.labelsSource],
      [['x', 'y', 'z'], 'directory'],
      'labels.txt, CRLF tolerated',
    );
    assert.equal(await writeLabelsFile(file, ['cat', 'dog', 'emu']), path.join(sub, 'net.labels.txt'));
    const fromSidecar = await readModelInfo(file);
    assert.deepEqual([fromSidecar.labels, fromSidecar.labelsSource], [['cat', 'dog', 'emu'], 'sidecar']);

    // With metadata too: the sidecar still comes first (as <model>.preprocess.json does), then the metadata,
    // then the directory's labels.txt.
    const both = path.join(sub, 'both.onnx');
    await fs.writeFile(both, smallModel({}, { [LABELS_KEY]: '["m1","m2","m3"]' }));
    const metadataOverDir = await readModelInfo(both);
    assert.deepEqual([metadataOverDir.labels, metadataOverDir.labelsSource], [['m1', 'm2', 'm3'], 'metadata']);
    await writeLabelsFile(both, ['s1', 's2', 's3']);
    const sidecarOverMetadata = await readModelInfo(both);
    assert.deepEqual([sidecarOverMetadata.labels, sidecarOverMetadata.labelsSource], [['s1', 's2', 's3'], 'sidecar']);
    const flag = await readModelInfo(both, { labels: ['f1', 'f2', 'f3'] });
    assert.deepEqual([flag.labels, flag.labelsSource], [['f1', 'f2', 'f3'], 'flag']);

    await writeLabelsFile(file, ['one', 'two']);
    await refuses(file, 'MissingLabels', /"scores" has 3 classes but there are 2 labels/);
    await fs.writeFile(path.join(sub, 'net.labels.txt'), '\n\n');
    await refuses(file, 'MissingLabels', /net\.labels\.txt is empty/);

    await refuses(
      await write(smallModel({}, { [LABELS_KEY]: '{"a":1}' })),
      'MissingLabels',
      /must be a non-empty JSON array/,
    );
    // A dynamic class dimension cannot be checked against the labels, and is not.
    const dynamic = await write(smallModel({ output: ['batch', 'classes'] }, { [LABELS_KEY]: '["only"]' }));
    assert.deepEqual((await readModelInfo(dynamic)).labels, ['only']);
  });

  test('preprocess metadata is checked, every problem at once', async () => {
    const labels = { [LABELS_KEY]: '["a","b","c"]' };
    await refuses(
      await write(smallModel({}, { ...labels, [PREPROCESS_KEY]: 'width=64' })),
      'InvalidModel',
      /"inferctl\.preprocess" is not a JSON object/,
    );
    const bad = JSON.stringify({ width: 64, height: -1, layout: 'NHWC', scale: 0, mean: [0, 0], std: [1, 0, 1] });
    await refuses(await write(smallModel({}, { ...labels, [PREPROCESS_KEY]: bad })), 'UnsupportedModel', [
      /width 64 disagrees with the input's fixed width 32/,
      /height must be a positive integer, not -1/,
      /mean must be 3 finite numbers/,
      /std must be 3 finite numbers, none zero/,
      /scale must be a positive number, not 0/,
      /layout "NHWC" is not supported/,
    ]);
    await refuses(
      await write(smallModel({ input: ['batch', 3, 'h', 'w'] })),
      'UnsupportedModel',
      /height is not fixed \(h\) and "inferctl\.preprocess" gives no height/,
    );
    const sized = { ...labels, [PREPROCESS_KEY]: JSON.stringify({ width: 48, height: 24 }) };
    const info = await readModelInfo(await write(smallModel({ input: ['batch', 3, 'h', 'w'] }, sized)));
    assert.deepEqual([info.width, info.height, info.scale], [48, 24, 1 / 255]);
  });
});
