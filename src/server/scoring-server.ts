/**
 * The scoring server: the seed's score.py in TypeScript, on node:http. `init` (loading the model)
 * happens once, before or while it starts; then `POST /score` takes raw JPEG/PNG/WebP bytes and
 * answers the top-k labels as JSON.
 *   POST /score    200 {"predictions":[{"label":"red","score":0.97},…],"modelDigest":"sha256:…"}
 *                  401 without the key · 413 over the body limit · 415 not JPEG/PNG/WebP ·
 *                  400 empty, corrupt or undecodable image · 503 while the model loads
 *   other /score   405 with Allow: POST
 *   GET /healthz   200 while the process runs;   GET /readyz 200 once the model is loaded, else 503
 *   GET /metrics   Prometheus text (see metrics.ts); like /healthz it needs no key, and it holds no secrets:
 *                  counts and durations only, no key, path, body or label
 *   /v2/…          the Open Inference Protocol (KServe V2) for the same model: see src/inference-protocol/server/routes.ts; its
 *                  errors are V2's {"error":"…"}
 *   anything else  404
 * With `tls` (a certificate chain and its key, PEM) the same routes are served over HTTPS (node:https) and
 * nothing answers plain HTTP on that port; without it, plain HTTP (the local target's loopback replicas).
 * Errors are JSON: {"error":{"code":"unsupported-format","message":"…"}}. Requires
 * `Authorization: Bearer <key>`, compared in constant time, and checks it and the declared size
 * before reading a byte of the body (also on `Expect: 100-continue`). No body can crash it: every
 * failure is answered, and a bug is a 500 while the process keeps serving.
 *
 * With `batching` enabled (main.ts turns it on by default), each request's image is decoded on its own,
 * so a bad one is answered 4xx alone, and the tensors of concurrent requests are inferred together by a
 * DynamicBatcher; an inference failure is a 500 for that batch's requests only. Without it (the option
 * left out, `enabled: false` or `maxBatchSize: 1`) every request is classified alone, as before.
 */
import http from 'node:http';
import https from 'node:https';

import { ImageError } from '../errors';
import { preprocessImage } from '../preprocess/preprocess-image';
import type { Classifier } from '../scoring/classifier';
import { DynamicBatcher, RequestAbandonedError } from './dynamic-batcher';
import type { BatchingOptions } from './dynamic-batcher';
import {
  HttpError,
  answerClientError,
  answerError,
  bearerMatches,
  bodyTooLarge,
  readBody,
  sendJson,
  sha256,
} from './http-io';
import { METRICS_CONTENT_TYPE, ServerMetrics } from './metrics';
import { v2ModelOf } from '../inference-protocol/server/model';
import type { V2Model } from '../inference-protocol/server/model';
import { createV2Routes, isV2Path, v2RouteKey } from '../inference-protocol/server/routes';

export interface ScoringServerOptions {
  /**
   * The image classifier /score serves. Left out (a model that is not an image classifier), the server
   * serves `v2Model` on the /v2 routes only and /score answers 404.
   */
  classifier?: Classifier | Promise<Classifier>;
  apiKey: string;
  topK: number;
  maxBodyBytes: number;
  /** Whole-request deadline against slow senders (default 30 s). */
  requestTimeoutMs?: number;
  /** Deadline for the headers (default 10 s). */
  headersTimeoutMs?: number;
  /** Told about 500s and a failed model load (default: one line on stderr). */
  onError?: (err: unknown) => void;
  /** Dynamic batching (DEFAULT_BATCHING is the replica default); left out: every request is inferred alone. */
  batching?: BatchingOptions;
  /** The Open Inference Protocol's model name (/v2/models/{name}); default: the model file's name without .onnx. */
  modelName?: string;
  /** The model the /v2 routes serve (see src/inference-protocol/server/routes.ts); default: the classifier. */
  v2Model?: V2Model | Promise<V2Model>;
  /** Serve HTTPS with this certificate (PEM, leaf first) and private key (PEM); left out, plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** What createScoringServer returns: node:http's server, or node:https's when given `tls`. */
export type ScoringServer = http.Server | https.Server;

const IMAGE_ERROR_STATUS: Record<string, number> = { 'unsupported-format': 415, 'too-large': 413 };

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

/** The model being served: loading, loaded (with its batcher when batching is on), or failed to load. */
class ModelSlot {
  classifier: Classifier | undefined;
  batcher: DynamicBatcher | undefined;
  loadError: string | undefined;
  /** /score requests accepted that have not reached the batcher yet (reading the body, decoding). */
  arriving = 0;
  /** Once the model is loaded: the classifier, or the V2 model of a server without one. */
  loaded = false;
  readonly v2Only: boolean;

  constructor(opts: ScoringServerOptions, metrics: ServerMetrics, onError: (err: unknown) => void) {
    const batching = opts.batching;
    const failed = (err: unknown) => {
      this.loadError = err instanceof Error ? err.message : String(err);
      onError(err);
    };
    this.v2Only = opts.classifier === undefined;
    if (opts.classifier === undefined) {
      Promise.resolve(opts.v2Model).then(() => (this.loaded = true), failed);
      return;
    }
    Promise.resolve(opts.classifier).then((c) => {
      if (batching?.enabled && batching.maxBatchSize > 1) {
        this.batcher = new DynamicBatcher({
          maxBatchSize: batching.maxBatchSize,
          maxQueueDelayMicros: batching.maxQueueDelayMicros,
          run: (tensors) => c.infer(tensors),
          onBatch: (b) => metrics.recordBatch(b.size, b.inferenceSeconds, b.queueDelaysSeconds),
          arriving: () => this.arriving,
        });
      }
      this.classifier = c;
      this.loaded = true;
    }, failed);
  }

  /** The loaded classifier, or the 503 that says why there is none yet (404 when there is none to wait for). */
  ready(): Classifier {
    if (this.classifier) return this.classifier;
    if (this.v2Only) {
      throw new HttpError(
        404,
        'not-a-classifier',
        'This deployment serves a model that is not an image classifier, so it has no /score. Use the Open ' +
          'Inference Protocol: POST /v2/models/{name}/infer (GET /v2/models/{name} lists its inputs).',
      );
    }
    const message = this.loadError
      ? `The model failed to load: ${this.loadError}`
      : 'The model is still loading; retry shortly.';
    throw new HttpError(503, 'not-ready', message, this.loadError ? {} : { 'retry-after': '1' });
  }
}

/** The image → the model's input tensor; anything undecodable is this request's 4xx (as classify reports it). */
async function decode(body: Buffer, model: Classifier): Promise<Float32Array> {
  try {
    return await preprocessImage(body, model.info);
  } catch (err) {
    if (err instanceof ImageError) {
      throw new HttpError(IMAGE_ERROR_STATUS[err.reason] ?? 400, err.reason, err.message);
    }
    throw new HttpError(400, 'decode-failed', `The image could not be decoded (${firstLine(err)}).`);
  }
}

interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  expectsContinue: boolean;
}

interface Route {
  /** Methods the route answers; left out, any. */
  methods?: string[];
  /** What to say to any other method. */
  otherMethod?: string;
  handle(exchange: Exchange): void | Promise<void>;
}

export function createScoringServer(opts: ScoringServerOptions): ScoringServer {
  if (!opts.apiKey) throw new Error('createScoringServer needs a non-empty apiKey.');
  if (!opts.classifier && !opts.v2Model) throw new Error('createScoringServer needs a classifier or a v2Model.');
  if (!(opts.maxBodyBytes > 0) || !(opts.topK > 0)) throw new Error('maxBodyBytes and topK must be positive.');
  const onError =
    opts.onError ??
    ((err: unknown) => process.stderr.write(`scoring server: ${err instanceof Error ? err.stack : String(err)}\n`));
  const batching = opts.batching;
  if (batching?.enabled && !(Number.isInteger(batching.maxBatchSize) && batching.maxBatchSize >= 1)) {
    throw new Error(`batching.maxBatchSize must be an integer ≥ 1, not ${batching.maxBatchSize}.`);
  }
  const metrics = new ServerMetrics();
  const slot = new ModelSlot(opts, metrics, onError);
  const expectedKey = sha256(opts.apiKey);

  /** The checks made before reading a byte of the body: key and declared size (precheck adds readiness). */
  const admit = (req: http.IncomingMessage): void => {
    if (!bearerMatches(req, expectedKey)) {
      throw new HttpError(401, 'unauthorized', 'Send the deployment key as "Authorization: Bearer <key>".', {
        'www-authenticate': 'Bearer',
      });
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > opts.maxBodyBytes) throw bodyTooLarge(opts.maxBodyBytes);
  };
  const precheck = (req: http.IncomingMessage): Classifier => {
    admit(req);
    return slot.ready();
  };

  const readScoreBody = async (req: http.IncomingMessage): Promise<Buffer> => {
    const body = await readBody(req, opts.maxBodyBytes);
    if (body.length === 0) throw new HttpError(400, 'empty', 'POST the image bytes (JPEG, PNG or WebP) as the body.');
    return body;
  };
  const score = async (req: http.IncomingMessage, res: http.ServerResponse, model: Classifier): Promise<unknown> => {
    // A client that goes away before its inference starts is not inferred: no backlog for the next clients.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const abandoned = () =>
      new HttpError(400, 'aborted', 'The client closed the connection before its inference started.');
    if (slot.batcher) {
      const batcher = slot.batcher;
      slot.arriving++;
      let tensor: Float32Array;
      try {
        tensor = await decode(await readScoreBody(req), model);
      } finally {
        slot.arriving--;
      }
      const probs = await batcher.submit(tensor, gone.signal).catch((err: unknown) => {
        throw err instanceof RequestAbandonedError ? abandoned() : err;
      });
      return { predictions: model.topK(probs, opts.topK), modelDigest: model.info.digest };
    }
    const body = await readScoreBody(req);
    if (gone.signal.aborted) throw abandoned();
    const started = process.hrtime.bigint();
    const [result] = await model.classify([body], opts.topK);
    if (!result) throw new Error('The classifier returned no result.');
    if (!result.ok) throw new HttpError(IMAGE_ERROR_STATUS[result.reason] ?? 400, result.reason, result.message);
    metrics.recordBatch(1, Number(process.hrtime.bigint() - started) / 1e9);
    return { predictions: result.predictions, modelDigest: model.info.digest };
  };

  const routes: Record<string, Route> = {
    '/healthz': { handle: ({ res }) => sendJson(res, 200, { status: 'ok' }) },
    '/readyz': {
      handle: ({ res }) =>
        slot.loaded
          ? sendJson(res, 200, {
              status: 'ready',
              ...(slot.classifier ? { modelDigest: slot.classifier.info.digest } : {}),
            })
          : sendJson(res, 503, {
              status: slot.loadError ? 'failed' : 'loading',
              ...(slot.loadError ? { error: slot.loadError } : {}),
            }),
    },
    '/metrics': {
      methods: ['GET', 'HEAD'],
      otherMethod: 'use GET',
      handle: async ({ req, res }) => {
        const text = await metrics.render();
        res.writeHead(200, {
          'content-type': METRICS_CONTENT_TYPE,
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
    },
    '/score': {
      methods: ['POST'],
      otherMethod: 'POST the image bytes',
      handle: async ({ req, res, expectsContinue }) => {
        const model = precheck(req);
        if (expectsContinue) res.writeContinue();
        sendJson(res, 200, await score(req, res, model));
      },
    },
    ...createV2Routes({
      model: opts.v2Model ?? Promise.resolve(opts.classifier!).then(v2ModelOf),
      ...(opts.modelName !== undefined ? { modelName: opts.modelName } : {}),
      maxBodyBytes: opts.maxBodyBytes,
      admit,
      ...(batching ? { batching } : {}),
      onBatch: (rows, seconds, delays) => metrics.recordBatch(rows, seconds, delays),
    }),
  };

  const handle = (exchange: Exchange): void => {
    const { req, res } = exchange;
    const url = (req.url ?? '/').split('?')[0]!;
    const scoring = url === '/score' || (isV2Path(url) && url.endsWith('/infer'));
    res.once('finish', () => metrics.countRequest(res.statusCode, scoring));
    if (scoring) {
      metrics.scoringStarted();
      res.once('close', () => metrics.scoringEnded());
    }
    const fail = (err: unknown) => answerError(req, res, err, onError, isV2Path(url) ? 'v2' : 'inferctl');
    try {
      const key = isV2Path(url) ? v2RouteKey(url) : url;
      const route = Object.hasOwn(routes, key) ? routes[key] : undefined;
      if (!route) {
        throw new HttpError(
          404,
          'not-found',
          `No route ${url}. Use POST /score, GET /healthz, GET /readyz, GET /metrics, or the Open Inference ` +
            'Protocol: GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready, ' +
            'POST /v2/models/{name}/infer.',
        );
      }
      if (route.methods && !route.methods.includes(req.method ?? '')) {
        throw new HttpError(405, 'method-not-allowed', `${req.method} ${url} is not supported; ${route.otherMethod}.`, {
          allow: route.methods.join(', '),
        });
      }
      Promise.resolve(route.handle(exchange)).catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? 10_000, requestTimeout || Infinity);
  const serverOptions: http.ServerOptions = {
    requestTimeout,
    headersTimeout,
    // How often node checks those deadlines (its default, 30 s, would let a slow client hold on far longer).
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeout / 2)),
  };
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) =>
    handle({ req, res, expectsContinue: false });
  const server: ScoringServer = opts.tls
    ? https.createServer({ ...serverOptions, cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, listener)
    : http.createServer(serverOptions, listener);
  // Without this listener node answers 100 Continue to everyone; with it, a client that waits for
  // 100 Continue (curl does, past 1 MB) is refused before it sends a byte it should not.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) =>
    handle({ req, res, expectsContinue: true }),
  );
  server.on('clientError', answerClientError);
  server.once('close', () => metrics.stop());
  return server;
}
