/**
 * The scoring server's request and response plumbing on node:http: JSON answers, error answers that
 * never read a body they refused, a body reader that stops at the limit, compressed bodies
 * (`Content-Encoding: gzip` or `deflate`) decoded within the same limit, and the bearer-key check.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/** Thrown inside the server for an answer other than 200; never escapes it. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sha256(value: string): Buffer {
  // The one-shot form: no Hash object per request (the key check runs on every request).
  return crypto.hash('sha256', value, 'buffer');
}

/** True when the request carries `Authorization: Bearer <key>` whose sha256 is `expected`, in constant time. */
export function bearerMatches(req: http.IncomingMessage, expected: Buffer): boolean {
  // Fixed-length digests make timingSafeEqual constant time whatever the presented key's length.
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  const same = crypto.timingSafeEqual(sha256(match?.[1] ?? ''), expected);
  return same && match !== null;
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/**
 * Answers `err`: an HttpError with its status and code, anything else as a logged 500. A body still
 * unread is never read: the connection closes once the answer is out. Never throws. The body is
 * `{"error":{"code","message"}}`, or the Open Inference Protocol's `{"error":"message"}` for `shape: 'v2'`.
 */
export function answerError(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  err: unknown,
  onError: (err: unknown) => void,
  shape: 'inferctl' | 'v2' = 'inferctl',
): void {
  const body = (code: string, message: string) => ({ error: shape === 'v2' ? message : { code, message } });
  try {
    if (!(err instanceof HttpError)) {
      onError(err);
      sendJson(res, 500, body('internal', 'The server failed on this request; it was logged.'));
      return;
    }
    const unread = !req.complete;
    sendJson(
      res,
      err.status,
      body(err.code, err.message),
      unread ? { ...err.headers, connection: 'close' } : err.headers,
    );
    if (unread) {
      req.pause();
      res.once('finish', () => req.socket.destroySoon());
    }
  } catch (failure) {
    onError(failure);
    res.destroy();
  }
}

export function bodyTooLarge(maxBodyBytes: number): HttpError {
  return new HttpError(413, 'body-too-large', `The body is over ${maxBodyBytes} bytes. Send a smaller image.`);
}

/** Reads the body up to the limit; past it, stops reading and rejects (the rest is never buffered). */
export function readBody(req: http.IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        reject(bodyTooLarge(maxBodyBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new HttpError(400, 'aborted', 'The client closed the request before the body ended.'));
    });
  });
}

const DECODERS: Record<string, (body: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
};

/** The request's content codings, in the order they were applied ('identity' left out). */
function contentCodings(req: http.IncomingMessage): string[] {
  const header = req.headers['content-encoding'];
  return (header ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/**
 * Checks the request's Content-Encoding before a byte of the body is read (415 for a coding other than
 * gzip and deflate) and returns what decodes the body once read. The limit applies to the decoded size
 * too: a body that inflates past `maxBodyBytes` is a 413, whatever its compressed size.
 */
export function bodyDecoder(req: http.IncomingMessage, maxBodyBytes: number): (body: Buffer) => Promise<Buffer> {
  const codings = contentCodings(req);
  const unknown = codings.filter((c) => !Object.hasOwn(DECODERS, c));
  if (unknown.length > 0) {
    throw new HttpError(
      415,
      'unsupported-encoding',
      `Content-Encoding ${unknown.join(', ')} is not supported; send the body uncompressed, gzip or deflate.`,
    );
  }
  return async (body) => {
    let decoded = body;
    for (const coding of [...codings].reverse()) {
      try {
        decoded = await DECODERS[coding]!(decoded, { maxOutputLength: maxBodyBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new HttpError(
            413,
            'body-too-large',
            `The body decompresses to over ${maxBodyBytes} bytes. Send a smaller request.`,
          );
        }
        throw new HttpError(
          400,
          'bad-encoding',
          `The body is not valid ${coding} (${(err as Error).message}). Compress it again, or send it uncompressed.`,
        );
      }
    }
    return decoded;
  };
}

/** Answers malformed requests and timeouts if the socket can still take it; never throws. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const status =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : '400 Bad Request';
  if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  else socket.destroy();
}
