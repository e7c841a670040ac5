/**
 * The scoring server: the seed's score.py in TypeScript. `init` (loading the model) happens once at
 * start; then `POST /score` takes raw JPEG/PNG/WebP bytes and answers the top-k labels as JSON.
 *   POST /score   200 {"predictions":[{"label","score"}…],"modelDigest"}; 401 without the key; 413 over
 *                 the body limit; 415 not an image; 400 corrupt image; 503 while the model loads
 *   GET  /score   405 (as in the seed's run())
 *   GET  /healthz 200 while the process runs;  GET /readyz 200 once the model is loaded, else 503
 * Requires `Authorization: Bearer <key>`, compared in constant time. No body can crash it.
 */
import crypto from 'node:crypto';
import http from 'node:http';

import type { Classifier } from '../scoring/classifier';

export interface ScoringServerOptions {
  classifier: Classifier | Promise<Classifier>;
  apiKey: string;
  topK: number;
  maxBodyBytes: number;
  /** Whole-request deadline against slow senders (default 30 s). */
  requestTimeoutMs?: number;
  /** Deadline for the headers (default 10 s). */
  headersTimeoutMs?: number;
}

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

function digest(value: string): Buffer {
  return crypto.createHash('sha256').update(value).digest();
}

export function createScoringServer(opts: ScoringServerOptions): http.Server {
  let classifier: Classifier | undefined;
  let loadError: string | undefined;
  Promise.resolve(opts.classifier).then(
    (c) => (classifier = c),
    (err: unknown) => (loadError = err instanceof Error ? err.message : String(err)),
  );
  const expectedKey = digest(opts.apiKey);

  const authorised = (req: http.IncomingMessage): boolean => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    // Compare fixed-length digests: constant time whatever the presented key's length.
    return crypto.timingSafeEqual(digest(match?.[1]?.trim() ?? ''), expectedKey) && match !== null;
  };

  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > opts.maxBodyBytes) {
        reject(new HttpError(413, 'body-too-large', `The body is over ${opts.maxBodyBytes} bytes.`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > opts.maxBodyBytes) {
          req.removeAllListeners('data');
          req.pause();
          reject(new HttpError(413, 'body-too-large', `The body is over ${opts.maxBodyBytes} bytes.`));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const score = async (req: http.IncomingMessage): Promise<unknown> => {
    if (!authorised(req)) {
      throw new HttpError(401, 'unauthorized', 'Send the deployment key as "Authorization: Bearer <key>".', {
        'www-authenticate': 'Bearer',
      });
    }
    if (!classifier) {
      throw new HttpError(
        503,
        'not-ready',
        loadError ? `The model failed to load: ${loadError}` : 'The model is still loading.',
        {
          'retry-after': '1',
        },
      );
    }
    const body = await readBody(req);
    if (body.length === 0) throw new HttpError(400, 'empty', 'POST the image bytes (JPEG, PNG or WebP) as the body.');
    const [result] = await classifier.classify([body], opts.topK);
    if (!result!.ok) {
      const status = result!.reason === 'unsupported-format' ? 415 : result!.reason === 'too-large' ? 413 : 400;
      throw new HttpError(status, result!.reason, result!.message);
    }
    return { predictions: result!.predictions, modelDigest: classifier.info.digest };
  };

  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.headersSent) return;
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...headers,
      });
      res.end(text);
    };
    const fail = (err: unknown) => {
      if (err instanceof HttpError) {
        // After refusing a body, close the connection rather than read the rest of it.
        const close: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
        send(err.status, { error: { code: err.code, message: err.message } }, { ...err.headers, ...close });
        if (err.status === 413) req.destroy();
      } else {
        send(500, { error: { code: 'internal', message: 'The server could not score this request.' } });
      }
    };
    try {
      if (url === '/healthz') return send(200, { status: 'ok' });
      if (url === '/readyz') {
        return classifier
          ? send(200, { status: 'ready', modelDigest: classifier.info.digest })
          : send(503, { status: loadError ? 'failed' : 'loading', error: loadError });
      }
      if (url === '/score') {
        if (req.method !== 'POST') {
          req.resume();
          return send(
            405,
            { error: { code: 'method-not-allowed', message: `${req.method} is not supported; POST an image.` } },
            { allow: 'POST' },
          );
        }
        score(req).then((body) => send(200, body), fail);
        return;
      }
      req.resume();
      send(404, { error: { code: 'not-found', message: 'Try POST /score, GET /healthz or GET /readyz.' } });
    } catch (err) {
      fail(err);
    }
  });
  server.requestTimeout = opts.requestTimeoutMs ?? 30_000;
  server.headersTimeout = opts.headersTimeoutMs ?? 10_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
