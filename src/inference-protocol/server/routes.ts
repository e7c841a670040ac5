/**
 * The Open Inference Protocol (KServe V2, as Triton speaks it over HTTP) on a scoring-server replica,
 * for the model it serves, whatever its inputs:
 *   GET  /v2                          {"name":"inferctl","version","extensions":["binary_tensor_data"]}
 *   GET  /v2/health/live              200 {"live":true}
 *   GET  /v2/health/ready             200 {"ready":true}; 503 {"ready":false} while the model loads
 *   GET  /v2/models/{name}            {"name","versions":["1"],"platform":"onnxruntime_onnx","inputs","outputs"}
 *                                     each tensor {"name","datatype","shape"}, -1 for a dynamic axis
 *   GET  /v2/models/{name}/ready      200 {"name","ready":true}; 503 while loading
 *   POST /v2/models/{name}/infer      JSON tensors, or the binary tensor data extension
 *   (each /v2/models/{name}… also as /v2/models/{name}/versions/1…, the one version there is)
 * Keys: `/v2/health/*` needs none, like /healthz (probes carry no secrets); everything else needs the
 * deployment's `Authorization: Bearer <key>` (401), and infer has the body limit of /score (413).
 * Infer bodies may be compressed (`Content-Encoding: gzip` or `deflate`, as the Triton client's
 * `request_compression_algorithm` sends them): the limit holds for the compressed and the decoded size.
 * Errors are V2's `{"error":"…"}`: 400 for a request the model cannot take (unknown input, wrong
 * datatype or shape, bad sizes), 404 for another model name, 503 while loading.
 *
 * Binary: a request with `Inference-Header-Content-Length: N` has N bytes of JSON then the inputs
 * that carry `parameters.binary_data_size`, in order. Outputs come back binary when asked for
 * (`outputs[i].parameters.binary_data`, or `parameters.binary_data_output` for all, which the Triton
 * client sends when it lists no outputs); the response then has the same header and layout.
 *
 * With `batching` on, concurrent infer requests of equal shape are run together on axis 0 (batcher.ts),
 * when every input and output of the model is dynamic on it and the request's inputs agree on its size.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

import type * as ort from 'onnxruntime-node';

import { packageRoot } from '../../paths';
import type { BatchingOptions } from '../../server/dynamic-batcher';
import { bodyDecoder, readBody, sendJson } from '../../server/http-io';
import { V2Batcher } from './batcher';
import type { BatchInput, Outputs } from './batcher';
import { ortTensor } from '../../scoring/tensor-dtype';
import { defaultModelName, describeTensors } from './model';
import type { TensorMetadata, V2Model } from './model';
import { V2_DATATYPES, V2Error, encodeInferResponse, isV2Datatype, parseInferRequest } from '../tensors';
import type { OutputTensor, V2Tensor } from '../tensors';

export interface V2Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  expectsContinue: boolean;
}

export interface V2Route {
  methods?: string[];
  otherMethod?: string;
  handle(exchange: V2Exchange): void | Promise<void>;
}

export interface V2RoutesOptions {
  model: V2Model | Promise<V2Model>;
  /** The name clients use in /v2/models/{name}; default: the model file's name without `.onnx`. */
  modelName?: string;
  maxBodyBytes: number;
  /** The checks made before reading a byte of the body (key: 401, declared size: 413); throws an HttpError. */
  admit(req: http.IncomingMessage): void;
  /** Dynamic batching of equal-shape requests on axis 0 (batcher.ts); left out or off: each runs alone. */
  batching?: BatchingOptions;
  /** Told about each inference: rows on axis 0, seconds, and each request's queue delay in seconds. */
  onBatch?: (rows: number, inferenceSeconds: number, queueDelaysSeconds: number[]) => void;
}

/** True for the paths whose answers (errors included) are in V2's shape. */
export function isV2Path(url: string): boolean {
  return url === '/v2' || url.startsWith('/v2/');
}

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;

/** The route-table key for a V2 path ('/v2/models/{name}/infer' for '/v2/models/tiny/infer'); else the path. */
export function v2RouteKey(url: string): string {
  const match = MODEL_PATH.exec(url);
  return match ? `/v2/models/{name}${match[3] ?? ''}` : url;
}

let serverVersion: string | undefined;
function version(): string {
  if (serverVersion === undefined) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
      serverVersion = pkg.version ?? 'unknown';
    } catch {
      serverVersion = 'unknown';
    }
  }
  return serverVersion;
}

interface Served {
  name: string;
  model: V2Model;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  /** Set when batching is on and every input and output is dynamic on axis 0. */
  batcher?: V2Batcher;
}

const dynamicFirstAxis = (tensors: TensorMetadata[]) => tensors.every((t) => t.shape.length > 0 && t.shape[0] === -1);

export function createV2Routes(opts: V2RoutesOptions): Record<string, V2Route> {
  let served: Served | undefined;
  let loadError: string | undefined;
  Promise.resolve(opts.model).then(
    (model) => {
      const inputs = describeTensors(model.inputMetadata);
      const outputs = describeTensors(model.outputMetadata);
      const batching = opts.batching;
      const batcher =
        batching?.enabled && batching.maxBatchSize > 1 && dynamicFirstAxis(inputs) && dynamicFirstAxis(outputs)
          ? new V2Batcher({
              maxBatchSize: batching.maxBatchSize,
              maxQueueDelayMicros: batching.maxQueueDelayMicros,
              run: (feeds, fetches) => runModel(model, feeds, fetches),
              ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
            })
          : undefined;
      served = {
        name: opts.modelName ?? defaultModelName(model.path),
        model,
        inputs,
        outputs,
        ...(batcher ? { batcher } : {}),
      };
    },
    (err: unknown) => {
      // The scoring server reports the failed load; here it is the 503's reason.
      loadError = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    },
  );

  const notReady = (): V2Error =>
    new V2Error(
      loadError ? `The model failed to load: ${loadError}` : 'The model is still loading; retry shortly.',
      503,
    );

  /** The served model, if `url` names it; 404 for another name or version, 503 while loading. */
  const modelAt = (url: string): Served => {
    const [, rawName, modelVersion] = MODEL_PATH.exec(url) ?? [];
    let name: string;
    try {
      name = decodeURIComponent(rawName ?? '');
    } catch {
      throw new V2Error(`The model name in ${url} is not valid percent-encoding.`);
    }
    if (!served) throw notReady();
    if (name !== served.name || (modelVersion !== undefined && modelVersion !== '1')) {
      const what = name !== served.name ? `model "${name}"` : `version "${modelVersion}" of model "${name}"`;
      throw new V2Error(`There is no ${what}; this server serves "${served.name}" (version 1).`, 404);
    }
    return served;
  };

  const path = (req: http.IncomingMessage) => (req.url ?? '/').split('?')[0]!;
  const get = { methods: ['GET'], otherMethod: 'use GET' };

  return {
    '/v2': {
      ...get,
      handle: ({ req, res }) => {
        opts.admit(req);
        sendJson(res, 200, { name: 'inferctl', version: version(), extensions: ['binary_tensor_data'] });
      },
    },
    '/v2/health/live': { ...get, handle: ({ res }) => sendJson(res, 200, { live: true }) },
    '/v2/health/ready': {
      ...get,
      handle: ({ res }) => sendJson(res, served ? 200 : 503, { ready: served !== undefined }),
    },
    '/v2/models/{name}': {
      ...get,
      handle: ({ req, res }) => {
        opts.admit(req);
        const { name, inputs, outputs } = modelAt(path(req));
        sendJson(res, 200, { name, versions: ['1'], platform: 'onnxruntime_onnx', inputs, outputs });
      },
    },
    '/v2/models/{name}/ready': {
      ...get,
      handle: ({ req, res }) => {
        opts.admit(req);
        sendJson(res, 200, { name: modelAt(path(req)).name, ready: true });
      },
    },
    '/v2/models/{name}/infer': {
      methods: ['POST'],
      otherMethod: 'POST an inference request',
      handle: async ({ req, res, expectsContinue }) => {
        opts.admit(req);
        const target = modelAt(path(req));
        const decode = bodyDecoder(req, opts.maxBodyBytes);
        if (expectsContinue) res.writeContinue();
        const body = await decode(await readBody(req, opts.maxBodyBytes));
        const header = req.headers['inference-header-content-length'];
        const request = parseInferRequest(body, Array.isArray(header) ? header[0] : header);
        const outputs = await infer(target, request.inputs, request.outputs, request.binaryOutputs, opts);
        const encoded = encodeInferResponse(target.name, request.id, outputs);
        if (res.headersSent || res.destroyed) return;
        res.writeHead(200, {
          'content-type': encoded.headerLength === undefined ? 'application/json' : 'application/octet-stream',
          'content-length': encoded.body.length,
          'cache-control': 'no-store',
          ...(encoded.headerLength === undefined
            ? {}
            : { 'Inference-Header-Content-Length': String(encoded.headerLength) }),
        });
        res.end(encoded.body);
      },
    },
  };
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Checks the inputs against the model's (names, datatypes, fixed axes): every mismatch is a 400 naming it. */
function checkInputs(served: Served, inputs: V2Tensor[]): void {
  const expected = new Map(served.inputs.map((i) => [i.name, i]));
  const names = served.inputs.map((i) => `"${i.name}"`).join(', ');
  for (const input of inputs) {
    const spec = expected.get(input.name);
    if (!spec) throw new V2Error(`The model has no input "${input.name}"; it takes ${names}.`);
    if (spec.datatype !== input.datatype) {
      throw new V2Error(
        `Input "${input.name}" is ${input.datatype} but the model takes ${spec.datatype ?? 'a non-tensor'}.`,
      );
    }
    const fits =
      spec.shape.length === input.shape.length && spec.shape.every((d, i) => d === -1 || d === input.shape[i]);
    if (!fits) {
      throw new V2Error(
        `Input "${input.name}" has shape ${shapeText(input.shape)} but the model takes ${shapeText(spec.shape)} (-1: any size).`,
      );
    }
  }
  const missing = served.inputs.filter((i) => !inputs.some((given) => given.name === i.name));
  if (missing.length > 0) {
    throw new V2Error(
      `The request lacks input ${missing.map((i) => `"${i.name}"`).join(', ')}; the model takes ${names}.`,
    );
  }
}

async function infer(
  served: Served,
  inputs: V2Tensor[],
  requested: Array<{ name: string; binary: boolean }> | undefined,
  binaryOutputs: boolean,
  opts: V2RoutesOptions,
): Promise<OutputTensor[]> {
  checkInputs(served, inputs);
  const wanted = requested ?? served.outputs.map((o) => ({ name: o.name, binary: binaryOutputs }));
  for (const w of wanted) {
    if (!served.outputs.some((o) => o.name === w.name)) {
      const names = served.outputs.map((o) => `"${o.name}"`).join(', ');
      throw new V2Error(`The model has no output "${w.name}"; it has ${names}.`);
    }
  }
  const feeds: BatchInput[] = inputs.map((i) => ({
    name: i.name,
    type: V2_DATATYPES[i.datatype].ort,
    shape: i.shape,
    data: i.data,
  }));
  const fetches = wanted.map((w) => w.name);
  const rows = inputs[0]?.shape[0];
  let results: Outputs;
  if (served.batcher && rows !== undefined && rows > 0 && inputs.every((i) => i.shape[0] === rows)) {
    results = await served.batcher.submit(feeds, fetches, rows);
  } else {
    const started = process.hrtime.bigint();
    results = await runModel(served.model, feeds, fetches);
    opts.onBatch?.(rows ?? 1, Number(process.hrtime.bigint() - started) / 1e9, []);
  }
  return wanted.map(({ name, binary }) => {
    const value = results[name];
    if (!value || typeof value !== 'object' || !('dims' in value)) {
      throw new Error(`The model returned no tensor "${name}".`);
    }
    const datatype = value.type;
    const v2 = Object.entries(V2_DATATYPES).find(([, d]) => d.ort === datatype)?.[0];
    if (!isV2Datatype(v2)) throw new Error(`Output "${name}" is ${datatype}, which V2 infer cannot return.`);
    return { name, datatype: v2, shape: value.dims.map(Number), data: value.data, binary };
  });
}

/** One inference on the session; a failure is the request's 400. */
async function runModel(model: V2Model, inputs: BatchInput[], fetches: readonly string[]): Promise<Outputs> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) feeds[input.name] = ortTensor(input.type, input.data, input.shape);
  try {
    // The feeds were decoded for this run alone: their buffers go to the inference thread, not copies.
    return (await model.runFeeds(feeds, fetches, { transfer: true })) as unknown as Outputs;
  } catch (err) {
    // The inputs fit the model's declared types and shapes, so what is left is how they combine
    // (two dynamic axes that must agree, a value an operator refuses): the request's fault.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
    throw new V2Error(`The model could not run on these inputs: ${why}`);
  }
}
