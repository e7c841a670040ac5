/**
 * A Temporal codec server: lets the Web UI (and `temporal` CLI) show encrypted payloads decoded, to a
 * user allowed to see them. Implements the documented protocol: POST /encode and POST /decode with
 * `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`, answering the same shape; CORS for the
 * Web UI's origin. Whoever reaches it can decrypt, so it requires a token, either as `Authorization:
 * Bearer <token>` or as the first path segment (`/<token>/decode`: the Web UI's codec endpoint setting has
 * no header field, so its URL carries the token), and it answers only requests whose Host header names it
 * (a page on another site cannot reach it through DNS rebinding). Run with `inferctl codec-server`, then
 * set the codec endpoint in the Web UI (Settings → Codec Server) to the URL it prints.
 */
import crypto from 'node:crypto';
import http from 'node:http';

import type { Payload, PayloadCodec } from '@temporalio/common';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins allowed to call it from a browser (the Web UI's), e.g. http://localhost:8233. */
  allowedOrigins: string[];
  /** Requests must carry it: `Authorization: Bearer <token>`, or the path `/<token>/encode|decode`. */
  token: string;
  /**
   * The Host header values it answers (`127.0.0.1:8888`, `localhost:8888`); others get 421. Read on every
   * request, so a caller may fill it in once the server listens.
   */
  allowedHosts: string[];
  maxBodyBytes?: number;
}

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  };
}

/** Thrown when the codec server is configured without a token (it would decrypt for anyone who reaches it). */
export class CodecServerTokenError extends Error {
  constructor() {
    super('The codec server needs a token of at least 16 characters (INFERCTL_CODEC_SERVER_TOKEN).');
    this.name = 'CodecServerTokenError';
  }
}

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

export function createCodecServer(opts: CodecServerOptions): http.Server {
  const limit = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  if (!opts.token || opts.token.length < 16) throw new CodecServerTokenError();
  const expected = digest(opts.token);
  // Read on every request: a server listening on port 0 learns its own Host value after listen().
  const allowed = (host: string) => opts.allowedHosts.some((h) => h.toLowerCase() === host.toLowerCase());
  return http.createServer((req, res) => {
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      origin && opts.allowedOrigins.includes(origin)
        ? {
            'access-control-allow-origin': origin,
            'access-control-allow-credentials': 'true',
            'access-control-allow-headers': 'content-type, x-namespace, authorization',
            'access-control-allow-methods': 'POST, OPTIONS',
            vary: 'origin',
          }
        : {};
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...cors });
      res.end(text);
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    if (!allowed(req.headers.host ?? '')) {
      req.resume();
      return send(421, { error: `not served for host ${req.headers.host ?? '(none)'}` });
    }
    // `/<token>/decode` or `/decode` with the token in the Authorization header.
    const m = /^(?:\/([^/?]+))?\/(encode|decode)$/.exec((req.url ?? '').split('?')[0] ?? '');
    if (req.method !== 'POST' || !m) {
      req.resume();
      return send(404, { error: 'POST /encode or /decode' });
    }
    const route = `/${m[2]}`;
    const presented = m[1] ?? /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (!crypto.timingSafeEqual(digest(decodeURIComponent(presented)), expected)) {
      req.resume();
      return send(401, { error: 'missing or wrong token' });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        send(413, { error: `body over ${limit} bytes` });
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      void (async () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { payloads?: JsonPayload[] };
          const payloads = (body.payloads ?? []).map(fromJson);
          const out = route === '/encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
          send(200, { payloads: out.map(toJson) });
        } catch (err) {
          send(400, { error: err instanceof Error ? err.message : String(err) });
        }
      })();
    });
  });
}
