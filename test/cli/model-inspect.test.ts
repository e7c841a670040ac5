/** `inferctl model inspect`, through the binary: what it reads from a model, and the answer for a sample. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import type { ModelInspectResult, V2InspectResult } from '../../src/cli/commands/model';
import { buildMultiInputModel } from '../inference-protocol/fixtures';
import { demoAssets } from '../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');
// No Temporal: an unreachable address proves none is needed.
const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' };
const run = (args: string[]) => promisify(execFile)(process.execPath, [BIN, 'model', 'inspect', ...args], { env });

describe('inferctl model inspect', () => {
  test('prints the input, output, spec and its source, and the top-k answer for each sample', async () => {
    const assets = await demoAssets();
    for (const sample of assets.samples.slice(0, 3)) {
      const { stdout } = await run([assets.modelPath, '--sample', sample.path, '--top-k', '2', '--json']);
      const result = JSON.parse(stdout) as ModelInspectResult;
      assert.equal(result.model.inputName, 'image');
      assert.equal(result.model.layout, 'NCHW');
      assert.equal(result.model.labelCount, 8);
      assert.equal(result.model.preprocessSource, 'metadata');
      assert.equal(result.sample?.predictions.length, 2);
      assert.equal(result.sample?.predictions[0]?.label, sample.label, `${sample.path} is ${sample.label}`);
    }
    const { stdout } = await run([assets.modelPath]);
    assert.match(stdout, /input {3}image: float32, NCHW, 64×64, batch dynamic/);
    assert.match(stdout, /Preprocessing \(from the model's metadata "inferctl\.preprocess"\):/);
    assert.match(stdout, /labels from the sidecar tiny-cnn\.labels\.txt/);
    assert.doesNotMatch(stdout, /Sample/);
  });

  test('a spec from --preprocess or a sidecar says where it came from; one that cannot fit is exit 2', async () => {
    const assets = await demoAssets();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-inspect-'));
    try {
      const model = path.join(dir, 'colours.onnx');
      await fs.copyFile(assets.modelPath, model);
      await fs.copyFile(assets.labelsPath, path.join(dir, 'colours.labels.txt'));
      await fs.writeFile(path.join(dir, 'colours.preprocess.json'), JSON.stringify({ preset: 'unit' }));
      const sidecar = JSON.parse((await run([model, '--json'])).stdout) as ModelInspectResult;
      assert.equal(sidecar.model.preprocessSource, 'sidecar');
      assert.equal(sidecar.model.scale, 1 / 255);
      assert.deepEqual(sidecar.model.mean, [0, 0, 0]);

      const flagged = JSON.parse((await run([model, '--preprocess', 'raw', '--json'])).stdout) as ModelInspectResult;
      assert.equal(flagged.model.preprocessSource, 'flag');
      assert.equal(flagged.model.scale, 1);

      const refused = await run([model, '--preprocess', 'torchvision']).then(
        () => assert.fail('a 224×224 spec was accepted for a 64×64 model'),
        (e: unknown) => e as { code: number; stderr: string },
      );
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /width 224 disagrees with the input's fixed width 64/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('--decode sets how JPEGs decode on top of the spec from any source; a sidecar may set it; a bad mode is exit 2', async () => {
    const assets = await demoAssets();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-inspect-decode-'));
    try {
      const model = path.join(dir, 'colours.onnx');
      await fs.copyFile(assets.modelPath, model);
      await fs.copyFile(assets.labelsPath, path.join(dir, 'colours.labels.txt'));
      const inspect = async (args: string[]) =>
        JSON.parse((await run([model, ...args, '--json'])).stdout) as ModelInspectResult;

      // The metadata's spec, decoded the default way; --decode alone keeps the metadata as the source.
      const plain = await inspect([]);
      assert.equal(plain.model.preprocessSource, 'metadata');
      assert.equal(plain.model.decode, 'fast');
      const exact = await inspect(['--decode', 'exact']);
      assert.equal(exact.model.preprocessSource, 'metadata');
      assert.equal(exact.model.decode, 'exact');
      assert.deepEqual({ ...exact.model, decode: 'fast' }, plain.model);
      assert.match(
        (await run([model, '--decode', 'draft'])).stdout,
        /decode {2}draft \(JPEG: at the smallest DCT scale/,
      );

      // A sidecar's decode, and the flag over it.
      await fs.writeFile(
        path.join(dir, 'colours.preprocess.json'),
        JSON.stringify({ preset: 'unit', decode: 'exact' }),
      );
      const sidecar = await inspect([]);
      assert.equal(sidecar.model.preprocessSource, 'sidecar');
      assert.equal(sidecar.model.decode, 'exact');
      const over = await inspect(['--decode', 'draft']);
      assert.equal(over.model.preprocessSource, 'sidecar');
      assert.equal(over.model.scale, 1 / 255);
      assert.equal(over.model.decode, 'draft');
      // --preprocess with --decode: the flag's spec with the flag's decode.
      const both = await inspect(['--preprocess', 'raw', '--decode', 'exact']);
      assert.equal(both.model.preprocessSource, 'flag');
      assert.equal(both.model.scale, 1);
      assert.equal(both.model.decode, 'exact');

      const refused = await run([model, '--decode', 'quick']).then(
        () => assert.fail('--decode quick was accepted'),
        (e: unknown) => e as { code: number; stderr: string },
      );
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stderr,
        /--decode <mode>' argument 'quick' is invalid. Allowed choices are exact, fast, draft/,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('a missing model or sample is exit 2 saying what to pass', async () => {
    const missing = await run(['/nonexistent/model.onnx']).then(
      () => assert.fail('accepted a missing model'),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Model file not found: \/nonexistent\/model\.onnx/);
    const { modelPath } = await demoAssets();
    const noSample = await run([modelPath, '--sample', '/nonexistent/cat.jpg']).then(
      () => assert.fail('accepted a missing sample'),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(noSample.code, 2);
    assert.match(noSample.stderr, /Sample image not found: \/nonexistent\/cat\.jpg/);
  });
  test('a model that is not an image classifier prints its V2 signature; classifier flags on it are exit 2', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-inspect-v2-'));
    try {
      const model = path.join(dir, 'tabular.onnx');
      await fs.writeFile(model, buildMultiInputModel());
      const result = JSON.parse((await run([model, '--json'])).stdout) as V2InspectResult;
      assert.equal(result.protocol, 'v2');
      assert.deepEqual(
        result.signature.inputs.map((t) => `${t.name} ${t.datatype} ${t.shape.join('x')}`),
        ['a INT64 -1x3', 'b FP32 -1x3', 'h FP16 -1x2', 'u UINT8 -1x2', 'i INT32 -1x2', 'flag BOOL -1x2'],
      );
      assert.deepEqual(
        result.signature.outputs.map((t) => t.name),
        ['sum', 'neg', 'square', 'isum', 'not'],
      );
      const { stdout } = await run([model]);
      assert.match(stdout, /served on the Open Inference Protocol only/);
      assert.match(stdout, /input {3}h: FP16 \[-1, 2\]/);
      const refused = await run([model, '--preprocess', 'unit']).then(
        () => assert.fail('a preprocessing spec was accepted for a model without an image input'),
        (e: unknown) => e as { code: number },
      );
      assert.equal(refused.code, 2);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('one rule for the spec and the labels: flag, sidecar, metadata; inspect names where each came from', async () => {
    const assets = await demoAssets();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-rule-'));
    try {
      // The demo model carries both in its metadata (inferctl.preprocess, inferctl.labels).
      const model = path.join(dir, 'colours.onnx');
      await fs.copyFile(assets.modelPath, model);
      const renamed = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];
      // A directory-wide labels.txt is the fallback: the metadata comes before it.
      await fs.writeFile(path.join(dir, 'labels.txt'), renamed.map((l) => `dir-${l}`).join('\n'));
      const own = JSON.parse((await run([model, '--json'])).stdout) as ModelInspectResult;
      assert.deepEqual([own.model.preprocessSource, own.model.labelsSource], ['metadata', 'metadata']);
      assert.notEqual(own.model.firstLabels[0], 'dir-c0');

      // The sidecars come before the metadata, for the labels as for the spec.
      await fs.writeFile(path.join(dir, 'colours.labels.txt'), renamed.join('\n'));
      await fs.writeFile(path.join(dir, 'colours.preprocess.json'), JSON.stringify({ preset: 'unit' }));
      const sidecars = JSON.parse((await run([model, '--json'])).stdout) as ModelInspectResult;
      assert.deepEqual([sidecars.model.preprocessSource, sidecars.model.labelsSource], ['sidecar', 'sidecar']);
      assert.deepEqual(sidecars.model.firstLabels, renamed);
      const text = (await run([model])).stdout;
      assert.match(text, /labels from the sidecar colours\.labels\.txt/);
      assert.match(text, /Preprocessing \(from the sidecar colours\.preprocess\.json\)/);

      // The flags come before both.
      const labels = path.join(dir, 'given.txt');
      await fs.writeFile(labels, renamed.map((l) => `flag-${l}`).join('\n'));
      const flagged = JSON.parse(
        (await run([model, '--labels', labels, '--preprocess', 'raw', '--json'])).stdout,
      ) as ModelInspectResult;
      assert.deepEqual([flagged.model.preprocessSource, flagged.model.labelsSource], ['flag', 'flag']);
      assert.equal(flagged.model.firstLabels[0], 'flag-c0');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
