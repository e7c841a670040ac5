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
 *   anything else  404
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
import crypto from 'node:crypto';
import http from 'node:http';

import { ImageError } from '../errors';
import { preprocessImage } from '../images/preprocess';
import type { Classifier } from '../scoring/classifier';
import { DynamicBatcher } from './dynamic-batcher';
import type { BatchingOptions } from './dynamic-batcher';
import { METRICS_CONTENT_TYPE, ServerMetrics } from './metrics';

export interface ScoringServerOptions {
  classifier: Classifier | Promise<Classifier>;
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
}

/** Thrown inside the server for an answer other than 200; never escapes it. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const IMAGE_ERROR_STATUS: Record<string, number> = { 'unsupported-format': 415, 'too-large': 413 };

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

function sha256(value: string): Buffer {
  return crypto.createHash('sha256').update(value, 'utf8').digest();
}

export function createScoringServer(opts: ScoringServerOptions): http.Server {
  if (!opts.apiKey) throw new Error('createScoringServer needs a non-empty apiKey.');
  if (!(opts.maxBodyBytes > 0) || !(opts.topK > 0)) throw new Error('maxBodyBytes and topK must be positive.');
  const onError =
    opts.onError ??
    ((err: unknown) => process.stderr.write(`scoring server: ${err instanceof Error ? err.stack : String(err)}\n`));

  const batching = opts.batching;
  if (batching?.enabled && !(Number.isInteger(batching.maxBatchSize) && batching.maxBatchSize >= 1)) {
    throw new Error(`batching.maxBatchSize must be an integer ≥ 1, not ${batching.maxBatchSize}.`);
  }
  const metrics = new ServerMetrics();
  let classifier: Classifier | undefined;
  let batcher: DynamicBatcher | undefined;
  let loadError: string | undefined;
  Promise.resolve(opts.classifier).then(
    (c) => {
      if (batching?.enabled && batching.maxBatchSize > 1) {
        batcher = new DynamicBatcher({
          maxBatchSize: batching.maxBatchSize,
          maxQueueDelayMicros: batching.maxQueueDelayMicros,
          run: (tensors) => c.infer(tensors),
          onBatch: (b) => metrics.recordBatch(b.size, b.inferenceSeconds, b.queueDelaysSeconds),
        });
      }
      classifier = c;
    },
    (err: unknown) => {
      loadError = err instanceof Error ? err.message : String(err);
      onError(err);
    },
  );
  const expectedKey = sha256(opts.apiKey);

  /** Fixed-length digests make timingSafeEqual constant time whatever the presented key's length. */
  const authorised = (req: http.IncomingMessage): boolean => {
    const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
    const same = crypto.timingSafeEqual(sha256(match?.[1] ?? ''), expectedKey);
    return same && match !== null;
  };

  /** The checks made before reading a byte of the body: key, declared size, readiness. */
  const precheck = (req: http.IncomingMessage): Classifier => {
    if (!authorised(req)) {
      throw new HttpError(401, 'unauthorized', 'Send the deployment key as "Authorization: Bearer <key>".', {
        'www-authenticate': 'Bearer',
      });
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > opts.maxBodyBytes) throw bodyTooLarge();
    if (!classifier) {
      const message = loadError
        ? `The model failed to load: ${loadError}`
        : 'The model is still loading; retry shortly.';
      throw new HttpError(503, 'not-ready', message, loadError ? {} : { 'retry-after': '1' });
    }
    return classifier;
  };

  const bodyTooLarge = () =>
    new HttpError(413, 'body-too-large', `The body is over ${opts.maxBodyBytes} bytes. Send a smaller image.`);

  /** Reads the body up to the limit; past it, stops reading and rejects (the rest is never buffered). */
  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > opts.maxBodyBytes) {
          req.off('data', onData);
          req.pause();
          chunks.length = 0;
          reject(bodyTooLarge());
          return;
        }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => resolve(Buffer.concat(chunks)));
      req.once('error', reject);
      req.once('close', () => {
        if (!req.complete)
          reject(new HttpError(400, 'aborted', 'The client closed the request before the body ended.'));
      });
    });

  /** The image → the model's input tensor; anything undecodable is this request's 4xx (as classify reports it). */
  const decode = async (body: Buffer, model: Classifier): Promise<Float32Array> => {
    try {
      return await preprocessImage(body, model.info);
    } catch (err) {
      if (err instanceof ImageError) {
        throw new HttpError(IMAGE_ERROR_STATUS[err.reason] ?? 400, err.reason, err.message);
      }
      throw new HttpError(400, 'decode-failed', `The image could not be decoded (${firstLine(err)}).`);
    }
  };

  const score = async (req: http.IncomingMessage, model: Classifier): Promise<unknown> => {
    const body = await readBody(req);
    if (body.length === 0) throw new HttpError(400, 'empty', 'POST the image bytes (JPEG, PNG or WebP) as the body.');
    if (batcher) {
      const probs = await batcher.submit(await decode(body, model));
      return { predictions: model.topK(probs, opts.topK), modelDigest: model.info.digest };
    }
    const started = process.hrtime.bigint();
    const [result] = await model.classify([body], opts.topK);
    if (!result) throw new Error('The classifier returned no result.');
    if (!result.ok) throw new HttpError(IMAGE_ERROR_STATUS[result.reason] ?? 400, result.reason, result.message);
    metrics.recordBatch(1, Number(process.hrtime.bigint() - started) / 1e9);
    return { predictions: result.predictions, modelDigest: model.info.digest };
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void => {
    res.once('finish', () => metrics.countRequest(res.statusCode));
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.headersSent || res.destroyed) return;
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
        ...headers,
      });
      res.end(text);
    };
    const fail = (err: unknown) => {
      if (!(err instanceof HttpError)) {
        onError(err);
        send(500, { error: { code: 'internal', message: 'The server failed on this request; it was logged.' } });
        return;
      }
      // A body we will not read: answer, close the connection once the answer is out, read no more.
      const unread = !req.complete;
      send(
        err.status,
        { error: { code: err.code, message: err.message } },
        unread ? { ...err.headers, connection: 'close' } : err.headers,
      );
      if (unread) {
        req.pause();
        res.once('finish', () => req.socket.destroySoon());
      }
    };
    const safeFail = (err: unknown) => {
      try {
        fail(err);
      } catch (failure) {
        onError(failure);
        res.destroy();
      }
    };

    try {
      const url = (req.url ?? '/').split('?')[0];
      if (url === '/healthz') return send(200, { status: 'ok' });
      if (url === '/readyz') {
        return classifier
          ? send(200, { status: 'ready', modelDigest: classifier.info.digest })
          : send(503, { status: loadError ? 'failed' : 'loading', ...(loadError ? { error: loadError } : {}) });
      }
      if (url === '/metrics') {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          throw new HttpError(405, 'method-not-allowed', `${req.method} /metrics is not supported; use GET.`, {
            allow: 'GET, HEAD',
          });
        }
        metrics.render().then((text) => {
          res.writeHead(200, {
            'content-type': METRICS_CONTENT_TYPE,
            'content-length': Buffer.byteLength(text),
            'cache-control': 'no-store',
          });
          res.end(req.method === 'HEAD' ? undefined : text);
        }, safeFail);
        return;
      }
      if (url !== '/score') {
        throw new HttpError(
          404,
          'not-found',
          `No route ${url}. Use POST /score, GET /healthz, GET /readyz or GET /metrics.`,
        );
      }
      if (req.method !== 'POST') {
        throw new HttpError(405, 'method-not-allowed', `${req.method} /score is not supported; POST the image bytes.`, {
          allow: 'POST',
        });
      }
      const model = precheck(req);
      if (expectsContinue) res.writeContinue();
      score(req, model)
        .then((body) => send(200, body))
        .catch(safeFail);
    } catch (err) {
      safeFail(err);
    }
  };

  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? 10_000, requestTimeout || Infinity);
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout,
      // How often node checks those deadlines (its default, 30 s, would let a slow client hold on far longer).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeout / 2)),
    },
    (req, res) => handle(req, res, false),
  );
  // Without this listener node answers 100 Continue to everyone; with it, a client that waits for
  // 100 Continue (curl does, past 1 MB) is refused before it sends a byte it should not.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => handle(req, res, true));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed requests and timeouts: answer if the socket can still take it, never throw.
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  return server;
}
