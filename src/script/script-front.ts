/**
 * inferctl's front for a scoring script: what a script replica answers on, in front of Microsoft's
 * azureml-inference-server-http listening on loopback (which does no authentication of its own). The same
 * properties as the ONNX scoring server (scoring-server.ts):
 *   /score (every method), /swagger.json   need `Authorization: Bearer <key>` (constant time; 401 before a
 *                  byte of the body is read, also on Expect: 100-continue) and a body within the limit
 *                  (413 on the declared or the counted size); then forwarded to the Python server as they
 *                  are, and its answer returned as it is: status, headers and bytes (hop-by-hop headers
 *                  aside). The key itself is not forwarded: the user's script never sees it.
 *                  503 until the script's init() has finished.
 *   GET /healthz   200 while the process runs;   GET /readyz 200 once init() has finished, else 503 (with
 *                  the script's error once it failed)
 *   GET /metrics   the same Prometheus counters (metrics.ts): /score answers count as scoring requests, which
 *                  the idle TTL, a rollout's bake and scale read
 *   anything else  404 (the Python server's own routes, such as GET /, are not exposed)
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

import {
  HttpError,
  answerClientError,
  answerError,
  bearerMatches,
  bodyTooLarge,
  sendJson,
  sha256,
} from '../server/http-io';
import { METRICS_CONTENT_TYPE, ServerMetrics } from '../server/metrics';

export interface ScriptState {
  /** Where the Python server listens, once it does: its Unix socket, or a port on 127.0.0.1. */
  upstream?: { socketPath: string } | { port: number };
  /** True once init() has finished (the server answers). */
  ready: boolean;
  /** Why it will never be ready (init() raised, the server exited). */
  failed?: string;
}

export interface ScriptFrontOptions {
  apiKey: string;
  maxBodyBytes: number;
  /** Read on every request. */
  state: () => ScriptState;
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  onError?: (err: unknown) => void;
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** Forwarded paths; everything else answers 404. */
const FORWARDED = new Set(['/score', '/swagger.json']);

/** Headers that describe one connection, not the message: never forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The request's headers for the Python server: all but hop-by-hop ones, Expect and the key. */
function upstreamHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || name === 'authorization' || name === 'expect') continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function downstreamHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/**
 * What pipe() does, without its dozen listeners per request: `from`'s chunks to `to`, pausing while `to` is
 * full; a message that came whole (the usual small body or answer) goes out with the end, with no separate
 * empty write. `accept` sees each chunk first and stops the forwarding by returning false.
 */
function relay(
  from: http.IncomingMessage,
  to: http.ClientRequest | http.ServerResponse,
  accept: (chunk: Buffer) => boolean = () => true,
): void {
  from.on('data', (chunk: Buffer) => {
    if (!accept(chunk)) return;
    if (from.complete && from.readableLength === 0) {
      to.end(chunk);
      return;
    }
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.once('end', () => {
    if (!to.writableEnded) to.end();
  });
}

export function createScriptFront(opts: ScriptFrontOptions): http.Server | https.Server {
  if (!opts.apiKey) throw new Error('createScriptFront needs a non-empty apiKey.');
  if (!(opts.maxBodyBytes > 0)) throw new Error('maxBodyBytes must be positive.');
  const onError =
    opts.onError ??
    ((err: unknown) => process.stderr.write(`script front: ${err instanceof Error ? err.stack : String(err)}\n`));
  // The loop-delay gauge sampled every 50 ms, not 10: fewer wake-ups taken from the Python server's cores.
  const metrics = new ServerMetrics({ loopDelayResolutionMs: 50 });
  const expectedKey = sha256(opts.apiKey);

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void => {
    if (!bearerMatches(req, expectedKey)) {
      throw new HttpError(401, 'unauthorized', 'Send the deployment key as "Authorization: Bearer <key>".', {
        'www-authenticate': 'Bearer',
      });
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > opts.maxBodyBytes) throw bodyTooLarge(opts.maxBodyBytes);
    const state = opts.state();
    if (!state.ready || state.upstream === undefined) {
      throw state.failed
        ? new HttpError(503, 'script-failed', `The scoring script cannot serve: ${state.failed}`)
        : new HttpError(503, 'not-ready', "The scoring script's init() has not finished; retry shortly.", {
            'retry-after': '1',
          });
    }
    if (expectsContinue) res.writeContinue();

    // One connection per request (gunicorn's sync worker closes each one), made directly: no Agent, which
    // `agent: false` would construct anew for every request.
    const target = state.upstream;
    const upstream = http.request({
      createConnection: () =>
        'socketPath' in target ? net.connect(target.socketPath) : net.connect(target.port, '127.0.0.1'),
      method: req.method,
      path: req.url,
      headers: [...upstreamHeaders(req.rawHeaders), 'Connection', 'close'],
    });
    let size = 0;
    const abandon = (err: unknown) => {
      upstream.destroy();
      req.unpipe?.();
      if (res.headersSent) res.destroy();
      else answerError(req, res, err, onError);
    };
    upstream.once('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, downstreamHeaders(answer.rawHeaders));
      relay(answer, res);
      answer.once('error', () => res.destroy());
    });
    upstream.once('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      abandon(new HttpError(502, 'script-unavailable', `The scoring script's server did not answer (${err.message}).`));
    });
    relay(req, upstream, (chunk) => {
      size += chunk.length;
      if (size <= opts.maxBodyBytes) return true;
      req.removeAllListeners('data');
      req.pause();
      abandon(bodyTooLarge(opts.maxBodyBytes));
      return false;
    });
    req.once('close', () => {
      if (!req.complete) upstream.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean): void => {
    const url = (req.url ?? '/').split('?')[0]!;
    res.once('finish', () => metrics.countRequest(res.statusCode, url === '/score'));
    try {
      if (FORWARDED.has(url)) {
        forward(req, res, expectsContinue);
        return;
      }
      if (url === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (url === '/readyz') {
        const state = opts.state();
        if (state.ready) return sendJson(res, 200, { status: 'ready' });
        return sendJson(res, 503, {
          status: state.failed ? 'failed' : 'loading',
          ...(state.failed ? { error: state.failed } : {}),
        });
      }
      if (url === '/metrics') {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          throw new HttpError(405, 'method-not-allowed', `${req.method} /metrics is not supported; use GET.`, {
            allow: 'GET, HEAD',
          });
        }
        metrics.render().then(
          (text) => {
            res.writeHead(200, {
              'content-type': METRICS_CONTENT_TYPE,
              'content-length': Buffer.byteLength(text),
              'cache-control': 'no-store',
            });
            res.end(req.method === 'HEAD' ? undefined : text);
          },
          (err: unknown) => answerError(req, res, err, onError),
        );
        return;
      }
      throw new HttpError(
        404,
        'not-found',
        `No route ${url}. Use /score (any method, as your script answers it), GET /swagger.json, GET /healthz, GET /readyz or GET /metrics.`,
      );
    } catch (err) {
      answerError(req, res, err, onError);
    }
  };

  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? 10_000, requestTimeout || Infinity);
  const serverOptions: http.ServerOptions = {
    requestTimeout,
    headersTimeout,
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeout / 2)),
  };
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => handle(req, res, false);
  const server = opts.tls
    ? https.createServer({ ...serverOptions, cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, listener)
    : http.createServer(serverOptions, listener);
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => handle(req, res, true));
  server.on('clientError', answerClientError);
  server.once('close', () => metrics.stop());
  return server;
}
