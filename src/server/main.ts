/**
 * A scoring-server replica process (what the local target starts, and what the AKS image runs):
 *   node dist/src/server/main.js --model PATH --api-key-file PATH [--host 127.0.0.1] [--port 0]
 *        [--ready-file PATH] [--top-k 5] [--max-body-bytes 10485760]
 *        [--max-batch-size 8] [--max-queue-delay-us 2000] [--no-batching] [--model-name NAME] [--v2-only]
 *        [--preprocess spec.json] [--labels labels.txt] [--tls-cert cert.pem --tls-key key.pem]
 * --tls-cert/--tls-key (PEM; what the AKS pod mounts from the deployment's TLS Secret) serve HTTPS
 * instead of HTTP; the key file is held to the same permissions as the API key file.
 * --preprocess and --labels (what a deployment's bundle keeps) win over the model's sidecars and
 * metadata. A model whose batch dimension is fixed at 1 is served without batching, and says so.
 * Dynamic batching is on by default (DEFAULT_BATCHING): concurrent requests are inferred together, up
 * to --max-batch-size at once, a request waiting at most --max-queue-delay-us for company.
 * --no-batching (or --max-batch-size 1) infers every request alone.
 * Every replica also speaks the Open Inference Protocol (KServe V2) under /v2 (src/inference-protocol/server/routes.ts), its model
 * named --model-name (default: the file name without .onnx). --v2-only serves any ONNX model, not only
 * an image classifier, on the /v2 routes alone (/score answers 404).
 * Reads the key (refusing a file others can read; group-readable only as a Kubernetes Secret mounts it), loads the model once (init),
 * listens, then writes the ready file atomically: {"pid","port","url","modelDigest"}. Any startup
 * failure is one line on stderr and exit code 1. SIGTERM/SIGINT: stop accepting, let requests in
 * flight finish (up to 5 s, then their connections are closed), and exit 0 once an inference under way has
 * answered (into nothing if its client left: an onnxruntime run cannot be cut off, and closing its session
 * or exiting during one aborts the process); a second signal exits at once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

import { parseLabelsText } from '../model/labels';
import { keyFileProblem } from './key-file';
import type { ModelOverrides } from '../model/model-info';
import { Classifier } from '../scoring/classifier';
import { applyDecodeThreading } from '../scoring/thread-tuning';
import { DEFAULT_BATCHING } from './dynamic-batcher';
import type { BatchingOptions } from './dynamic-batcher';
import { createScoringServer } from './scoring-server';
import { loadOnnxModel } from '../inference-protocol/server/model';

const DRAIN_MS = 5_000;

function fail(message: string): never {
  process.stderr.write(`scoring server: ${message}\n`);
  process.exit(1);
}

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

function positiveInt(name: string, value: string | undefined, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer ≥ ${min}, not "${value}"`);
  return n;
}

/** Refuses a secret file (the API key, the TLS key) that is missing or that others can read. */
function checkPrivateFile(file: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    fail(`cannot read the ${what} file ${file} (${errorMessage(err)})`);
  }
  if (process.platform !== 'win32') {
    const groups = [...new Set([process.getgid!(), ...process.getgroups!()])];
    const problem = keyFileProblem(stat, groups);
    if (problem) {
      fail(
        `${what} file ${file} is ${problem}; chmod 600 it, or mount it from a Kubernetes Secret with ` +
          `defaultMode 0440 and the pod's securityContext.fsGroup set to this server's group (${process.getgid!()}).`,
      );
    }
  }
}

function readApiKey(keyFile: string): string {
  checkPrivateFile(keyFile, 'API key');
  const apiKey = fs.readFileSync(keyFile, 'utf8').trim();
  if (!apiKey) fail(`API key file ${keyFile} is empty; write the key into it.`);
  return apiKey;
}

/** The certificate chain and key for HTTPS, or undefined for plain HTTP; both flags or neither. */
function readTls(certFile: string | undefined, keyFile: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) fail('--tls-cert and --tls-key go together: pass both to serve HTTPS, or neither');
  checkPrivateFile(keyFile, 'TLS key');
  try {
    const pair = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
    // Fails here, in one line, on a malformed PEM or a key that is not the certificate's.
    tls.createSecureContext(pair);
    return pair;
  } catch (err) {
    fail(`cannot use the TLS certificate ${certFile} with key ${keyFile} (${errorMessage(err)})`);
  }
}

function writeReadyFile(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value));
  fs.renameSync(tmp, file);
}

/** The bundle's spec (JSON) and labels (one per line), read once at startup. */
function readOverrides(specFile: string | undefined, labelsFile: string | undefined): ModelOverrides {
  const overrides: ModelOverrides = {};
  try {
    if (specFile) overrides.preprocess = JSON.parse(fs.readFileSync(specFile, 'utf8')) as ModelOverrides['preprocess'];
  } catch (err) {
    fail(`cannot read the preprocessing spec ${specFile} (${errorMessage(err)})`);
  }
  try {
    if (labelsFile) overrides.labels = parseLabelsText(fs.readFileSync(labelsFile, 'utf8'));
  } catch (err) {
    fail(`cannot read the labels ${labelsFile} (${errorMessage(err)})`);
  }
  return overrides;
}

async function main(): Promise<void> {
  applyDecodeThreading(); // before anything uses libuv's pool (thread-tuning.ts: decode and inference share the cores)
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' },
        'api-key-file': { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '0' },
        'ready-file': { type: 'string' },
        'top-k': { type: 'string', default: '5' },
        'max-body-bytes': { type: 'string', default: String(10 * 1024 * 1024) },
        'max-batch-size': { type: 'string', default: String(DEFAULT_BATCHING.maxBatchSize) },
        'max-queue-delay-us': { type: 'string', default: String(DEFAULT_BATCHING.maxQueueDelayMicros) },
        'no-batching': { type: 'boolean', default: false },
        gpu: { type: 'boolean', default: false },
        'allow-cpu-fallback': { type: 'boolean', default: false },
        'model-name': { type: 'string' },
        'v2-only': { type: 'boolean', default: false },
        preprocess: { type: 'string' },
        labels: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
      },
    }));
  } catch (err) {
    fail(errorMessage(err));
  }
  const modelPath = values.model;
  const keyFile = values['api-key-file'];
  if (!modelPath || !keyFile) fail('--model and --api-key-file are required');
  const port = positiveInt('port', values.port, 0);
  if (port > 65535) fail(`--port must be at most 65535, not ${port}`);
  const topK = positiveInt('top-k', values['top-k']);
  const maxBodyBytes = positiveInt('max-body-bytes', values['max-body-bytes']);
  const maxBatchSize = positiveInt('max-batch-size', values['max-batch-size']);
  const maxQueueDelayMicros = positiveInt('max-queue-delay-us', values['max-queue-delay-us'], 0);
  const host = values.host;
  const apiKey = readApiKey(keyFile);
  const overrides = readOverrides(values.preprocess, values.labels);
  const tlsFiles = readTls(values['tls-cert'], values['tls-key']);

  const modelName = values['model-name'];
  let model: { classifier?: Classifier; v2Model?: Awaited<ReturnType<typeof loadOnnxModel>> };
  let modelDigest: string;
  try {
    if (values['v2-only']) {
      const bytes = await fs.promises.readFile(modelPath);
      modelDigest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
      model = { v2Model: await loadOnnxModel(modelPath) };
    } else {
      const classifier = await Classifier.load(modelPath, {
        executionProvider: values.gpu ? 'cuda' : 'cpu',
        allowCpuFallback: values['allow-cpu-fallback'],
        overrides,
      });
      model = { classifier };
      modelDigest = classifier.info.digest;
    }
  } catch (err) {
    fail(`cannot load the model: ${errorMessage(err)}`);
  }
  const fixedBatch = model.classifier !== undefined && !model.classifier.info.dynamicBatch;
  const batching: BatchingOptions = {
    enabled: !values['no-batching'] && maxBatchSize > 1 && !fixedBatch,
    maxBatchSize,
    maxQueueDelayMicros,
  };
  const release = () => (model.classifier ?? model.v2Model)!.release();
  const served = model.classifier ? `${model.classifier.executionProvider}, ` : 'V2 only, cpu, ';
  const server = createScoringServer({
    ...model,
    ...(modelName ? { modelName } : {}),
    apiKey,
    topK,
    maxBodyBytes,
    batching,
    ...(tlsFiles ? { tls: tlsFiles } : {}),
  });
  server.once('error', (err) => fail(`cannot listen on ${host}:${port} (${errorMessage(err)})`));
  server.listen(port, host, () => {
    const actualPort = (server.address() as AddressInfo).port;
    const url = `${tlsFiles ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    const readyFile = values['ready-file'];
    if (readyFile) {
      try {
        writeReadyFile(readyFile, { pid: process.pid, port: actualPort, url, modelDigest });
      } catch (err) {
        fail(`cannot write the ready file ${readyFile} (${errorMessage(err)})`);
      }
    }
    process.stdout.write(
      `scoring server ready on ${url} (model ${modelDigest.slice(0, 19)}, ${served}` +
        `${batching.enabled ? `batching ≤ ${maxBatchSize} within ${maxQueueDelayMicros} µs` : fixedBatch ? "no batching: the model's batch dimension is fixed at 1" : 'no batching'}` +
        `${model.classifier ? `, preprocess from ${model.classifier.info.preprocessSource}` : ''})\n`,
    );
  });

  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(0);
    stopping = true;
    server.close(() => {
      const exit = () => process.exit(0);
      release().then(exit, exit);
    });
    server.closeIdleConnections();
    // At the drain's end the connections still open are closed; the process exits once the inference under
    // way has answered (release above): an onnxruntime run cannot be cut off, and exiting during one aborts.
    setTimeout(() => server.closeAllConnections(), DRAIN_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => fail(errorMessage(err)));
