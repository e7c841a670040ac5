/**
 * A Temporal codec server: lets the Web UI (and `temporal` CLI) show encrypted payloads decoded, to a
 * user allowed to see them. Implements the documented protocol: POST /encode and POST /decode with
 * `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`, answering the same shape; CORS for the
 * Web UI's origin; an optional bearer token. Run with `inferctl codec-server`, then set the codec
 * endpoint in the Web UI (Settings → Codec Server) to its URL.
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
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
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

export function createCodecServer(opts: CodecServerOptions): http.Server {
  const limit = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const expected = opts.token ? crypto.createHash('sha256').update(opts.token).digest() : undefined;
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
    const route = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode')) {
      req.resume();
      return send(404, { error: 'POST /encode or /decode' });
    }
    if (expected) {
      const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!crypto.timingSafeEqual(crypto.createHash('sha256').update(presented).digest(), expected)) {
        req.resume();
        return send(401, { error: 'missing or wrong token' });
      }
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
