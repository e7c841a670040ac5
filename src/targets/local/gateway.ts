/**
 * The local target's endpoint: a round-robin HTTP proxy in front of the replicas, the loopback stand-in
 * for a Kubernetes Service of type LoadBalancer. It forwards requests untouched (the replicas check the
 * key), skips replicas that refuse connections, and answers 503 when none is up.
 *
 * How many replicas it routes to is read from a routes file (`{"replicas": N}`) when one is given, checked
 * on every request: scaling rewrites the file and the endpoint keeps its address. A replica leaving is
 * taken out of the file before it is stopped, one arriving is routed to once it has written its ready file.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export interface GatewayOptions {
  /** The deployment's replicas/ directory; replica i writes replicas/<i>/ready.json. */
  replicasDir: string;
  replicas: number;
  /** A JSON file `{"replicas": N}` that overrides `replicas` whenever it exists and parses. */
  routesFile?: string;
  /** Requests larger than this are refused here with 413 (replicas have their own, smaller limit). */
  maxBodyBytes: number;
}

interface ReadyFile {
  url: string;
}

export function createGateway(opts: GatewayOptions): http.Server {
  let next = 0;

  function replicaCount(): number {
    if (!opts.routesFile) return opts.replicas;
    try {
      const routes = JSON.parse(fs.readFileSync(opts.routesFile, 'utf8')) as { replicas?: unknown };
      return typeof routes.replicas === 'number' && routes.replicas >= 0 ? routes.replicas : opts.replicas;
    } catch {
      return opts.replicas;
    }
  }

  function upstreams(): string[] {
    const urls: string[] = [];
    const count = replicaCount();
    for (let i = 0; i < count; i++) {
      try {
        const ready = JSON.parse(
          fs.readFileSync(path.join(opts.replicasDir, String(i), 'ready.json'), 'utf8'),
        ) as ReadyFile;
        urls.push(ready.url);
      } catch {
        // Not started yet, or torn down.
      }
    }
    return urls;
  }

  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return sendJson(res, 200, { status: 'ok' });
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > opts.maxBodyBytes) {
        if (!refused) {
          refused = true;
          sendJson(res, 413, {
            error: { code: 'body-too-large', message: `Request body over ${opts.maxBodyBytes} bytes.` },
          });
          req.destroy();
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      const urls = upstreams();
      const start = next++;
      forward(req, res, Buffer.concat(chunks), urls, start, 0);
    });
    req.on('error', () => res.destroy());
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 10_000;
  return server;
}

function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
  urls: string[],
  start: number,
  tried: number,
): void {
  if (tried >= urls.length) {
    sendJson(res, 503, { error: { code: 'no-replica', message: 'No replica is accepting connections.' } });
    return;
  }
  const target = new URL(req.url ?? '/', urls[(start + tried) % urls.length]);
  const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  const upstream = http.request(target, { method: req.method, headers }, (upstreamRes) => {
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
    upstreamRes.pipe(res);
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    if (!res.headersSent && (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET')) {
      forward(req, res, body, urls, start, tried + 1);
    } else if (!res.headersSent) {
      sendJson(res, 502, { error: { code: 'upstream-error', message: err.message } });
    } else {
      res.destroy();
    }
  });
  upstream.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
