/**
 * Interop with the Open Inference Protocol's real client: NVIDIA's `tritonclient[http]` (Python, from
 * PyPI, in test/.venv made from test/interop/requirements.txt on first run) against real replica
 * processes (dist/src/server/main.js) on loopback with the deployment's bearer key: the tiny image
 * classifier, and a six-input model that is not a classifier served with --v2-only. The client infers
 * with binary tensors (its default), with JSON, and with binary requests it compresses with gzip and with
 * deflate (`request_compression_algorithm`), and each output tensor it decodes must equal, byte for byte,
 * onnxruntime run directly on the same inputs. Skipped, with a note, where python3 is missing.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

import * as ort from 'onnxruntime-node';

import { seededRandom } from '../../src/demo/seeded-random';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { ortTensor } from '../../src/scoring/tensor-dtype';
import { INTEROP_REQUIREMENTS, TEST_VENV, pythonVenv } from '../helpers/python-venv';
import { float16Bits } from '../../src/inference-protocol/tensors';
import { buildMultiInputModel } from '../inference-protocol/fixtures';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const PYTHON = path.join(TEST_VENV, 'bin', 'python');
const CLIENT = path.join(ROOT, 'test', 'interop', 'triton_client.py');
const SERVER_MAIN = path.resolve(__dirname, '..', '..', 'src', 'server', 'main.js');
const KEY = 'interop-key-0123456789';

const hasPython = spawnSync('python3', ['--version']).status === 0;

interface Replica {
  child: ChildProcess;
  url: string;
}

async function startReplica(dir: string, name: string, args: string[]): Promise<Replica> {
  const readyFile = path.join(dir, `${name}.ready.json`);
  const child = spawn(
    process.execPath,
    [SERVER_MAIN, '--api-key-file', path.join(dir, 'key'), '--ready-file', readyFile, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 400 && child.exitCode === null; i++) {
    const ready = await fs.readFile(readyFile, 'utf8').then(
      (t) => JSON.parse(t) as { url: string },
      () => undefined,
    );
    if (ready) return { child, url: ready.url };
    await delay(50);
  }
  child.kill('SIGKILL');
  throw new Error(`replica ${name} did not start: ${stderr}`);
}

interface Input {
  name: string;
  datatype: string;
  shape: number[];
  ortType: ort.Tensor.Type;
  data: ArrayBufferView;
}

interface ClientReport {
  live: boolean;
  ready: boolean;
  model_ready: boolean;
  server: { name: string; extensions: string[] };
  metadata: { name: string; platform: string; inputs: unknown[]; outputs: unknown[] };
  outputs: Record<
    string,
    { id: string; model_name: string; tensors: Record<string, { datatype: string; shape: number[]; binary: boolean }> }
  >;
  no_key_error: { status: string; message: string } | null;
  bad_input_error: { status: string; message: string } | null;
}

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Runs the Python client on `inputs`; returns its report and the output bytes it wrote, per mode and name. */
async function runClient(dir: string, replica: Replica, model: string, inputs: Input[], outputs: string[]) {
  const work = await fs.mkdtemp(path.join(dir, `${model}-`));
  const spec = {
    model,
    outputs,
    inputs: await Promise.all(
      inputs.map(async (t) => {
        const file = path.join(work, `${t.name}.in`);
        await fs.writeFile(file, bytes(t.data));
        return { name: t.name, datatype: t.datatype, shape: t.shape, file };
      }),
    ),
  };
  await fs.writeFile(path.join(work, 'spec.json'), JSON.stringify(spec));
  const { stdout } = await execFileAsync(
    PYTHON,
    [CLIENT, new URL(replica.url).host, path.join(dir, 'key'), path.join(work, 'spec.json'), path.join(work, 'out')],
    { maxBuffer: 16 << 20 },
  );
  const report = JSON.parse(stdout.trim().split('\n').pop()!) as ClientReport;
  const read = (mode: string, name: string) => fs.readFile(path.join(work, 'out', mode, `${name}.bin`));
  return { report, read };
}

describe('Triton HTTP client against a replica', { skip: hasPython ? false : 'python3 not found: skipped' }, () => {
  let dir: string;
  const replicas: Replica[] = [];
  let unavailable: string | undefined;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-interop-'));
    await fs.writeFile(path.join(dir, 'key'), `${KEY}\n`, { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'tiny.onnx'), buildTinyCnn());
    await fs.writeFile(path.join(dir, 'adder.onnx'), buildMultiInputModel());
    const env = await pythonVenv(INTEROP_REQUIREMENTS);
    unavailable = env.skip;
  });
  after(async () => {
    for (const r of replicas) r.child.kill('SIGKILL');
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** onnxruntime on the same model file and inputs, in this process. */
  async function direct(model: string, inputs: Input[]): Promise<ort.InferenceSession.ReturnType> {
    const session = await ort.InferenceSession.create(path.join(dir, model), { executionProviders: ['cpu'] });
    try {
      return await session.run(Object.fromEntries(inputs.map((t) => [t.name, ortTensor(t.ortType, t.data, t.shape)])));
    } finally {
      await session.release();
    }
  }

  test('the image classifier: metadata, health, and the same probabilities as onnxruntime, binary, JSON, gzip and deflate', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const replica = await startReplica(dir, 'tiny', ['--model', path.join(dir, 'tiny.onnx')]);
    replicas.push(replica);
    const random = seededRandom(4242);
    const image = Float32Array.from({ length: 3 * 3 * 64 * 64 }, () => random() * 2 - 1);
    const inputs: Input[] = [
      { name: 'image', datatype: 'FP32', shape: [3, 3, 64, 64], ortType: 'float32', data: image },
    ];
    const { report, read } = await runClient(dir, replica, 'tiny', inputs, ['probabilities']);

    assert.deepEqual([report.live, report.ready, report.model_ready], [true, true, true]);
    assert.equal(report.server.name, 'inferctl');
    assert.ok(report.server.extensions.includes('binary_tensor_data'));
    assert.deepEqual(report.metadata.inputs, [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 64, 64] }]);
    assert.deepEqual(report.metadata.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 8] }]);

    const expected = bytes((await direct('tiny.onnx', inputs)).probabilities!.data as Float32Array);
    for (const mode of ['binary', 'json', 'gzip', 'deflate']) {
      const seen = report.outputs[mode]!;
      assert.equal(seen.id, `interop-${mode}`);
      assert.equal(seen.model_name, 'tiny');
      assert.deepEqual(seen.tensors.probabilities, { datatype: 'FP32', shape: [3, 8], binary: mode !== 'json' });
      assert.deepEqual(await read(mode, 'probabilities'), expected, `${mode}: byte for byte what onnxruntime answers`);
    }
    assert.equal(report.no_key_error?.status, '401');
    assert.match(report.no_key_error.message, /Authorization: Bearer/);
    assert.equal(report.bad_input_error?.status, '400');
    assert.match(report.bad_input_error.message, /The model has no input "nope"; it takes "image"/);
  });

  test('a six-input model that is not a classifier (--v2-only): INT64, FP32, FP16, UINT8, INT32, BOOL', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const replica = await startReplica(dir, 'adder', [
      '--model',
      path.join(dir, 'adder.onnx'),
      '--v2-only',
      '--model-name',
      'adder',
    ]);
    replicas.push(replica);
    const random = seededRandom(99);
    const rows = 4;
    const inputs: Input[] = [
      {
        name: 'a',
        datatype: 'INT64',
        shape: [rows, 3],
        ortType: 'int64',
        data: BigInt64Array.from({ length: rows * 3 }, (_, k) => BigInt(k * 1_000_003 - 5) * 2n ** 30n),
      },
      {
        name: 'b',
        datatype: 'FP32',
        shape: [rows, 3],
        ortType: 'float32',
        data: Float32Array.from({ length: rows * 3 }, () => random() * 100 - 50),
      },
      {
        name: 'h',
        datatype: 'FP16',
        shape: [rows, 2],
        ortType: 'float16',
        data: Uint16Array.from({ length: rows * 2 }, () => float16Bits(random() * 20 - 10)),
      },
      {
        name: 'u',
        datatype: 'UINT8',
        shape: [rows, 2],
        ortType: 'uint8',
        data: Uint8Array.from({ length: rows * 2 }, () => Math.floor(random() * 256)),
      },
      {
        name: 'i',
        datatype: 'INT32',
        shape: [rows, 2],
        ortType: 'int32',
        data: Int32Array.from({ length: rows * 2 }, () => Math.floor(random() * 2e9 - 1e9)),
      },
      {
        name: 'flag',
        datatype: 'BOOL',
        shape: [rows, 2],
        ortType: 'bool',
        data: Uint8Array.from({ length: rows * 2 }, () => (random() < 0.5 ? 1 : 0)),
      },
    ];
    const outputs = ['sum', 'neg', 'square', 'isum', 'not'];
    const { report, read } = await runClient(dir, replica, 'adder', inputs, outputs);

    assert.deepEqual([report.live, report.ready, report.model_ready], [true, true, true]);
    assert.equal(report.metadata.platform, 'onnxruntime_onnx');
    assert.equal(report.metadata.inputs.length, 6);
    const expected = await direct('adder.onnx', inputs);
    const datatypes: Record<string, string> = { sum: 'FP32', neg: 'INT64', square: 'FP16', isum: 'INT32', not: 'BOOL' };
    for (const mode of ['binary', 'json', 'gzip', 'deflate']) {
      const seen = report.outputs[mode]!;
      assert.deepEqual(Object.keys(seen.tensors), outputs, mode);
      for (const name of outputs) {
        const shape = name === 'sum' || name === 'neg' ? [rows, 3] : [rows, 2];
        assert.deepEqual(
          seen.tensors[name],
          { datatype: datatypes[name], shape, binary: mode !== 'json' },
          `${mode} ${name}`,
        );
        assert.deepEqual(
          await read(mode, name),
          bytes(expected[name]!.data as ArrayBufferView),
          `${mode} ${name} = onnxruntime`,
        );
      }
    }
    assert.equal(report.no_key_error?.status, '401');
    assert.equal(report.bad_input_error?.status, '400');
    assert.match(report.bad_input_error.message, /no input "nope"/);
  });
});
