/**
 * The local target's endpoint: a round-robin HTTP proxy in front of the replicas, the loopback stand-in
 * for a Kubernetes Service of type LoadBalancer. It forwards requests untouched (the replicas check the
 * key), skips replicas that refuse connections, and answers 503 when none is up.
 *
 * How many replicas it routes to is read from a routes file (`{"replicas": N, "candidate"?: {dir, replicas,
 * weight}}`) when one is given, checked on every request: scaling rewrites the file and the endpoint keeps
 * its address. A replica leaving is taken out of the file before it is stopped, one arriving is routed to
 * once it has written its ready file. During a rollout the candidate set gets `weight` percent of the
 * requests; when the chosen set has no replica up, the other one answers.
 *
 * Only paths are routed: a request whose target is not origin-form (`GET http://other-host/…`, an https:
 * URL, a CONNECT authority, `*`) is answered 400 here and goes nowhere, so the endpoint is never a proxy
 * to another host.
 *
 * During a mirror rollout (`mirror` in the routes file) the serving set alone answers clients, and a share of
 * the answered POSTs is copied to the candidate set afterwards and the answers compared (gateway-mirror.ts).
 *
 * With `hold` (a deployment that scales to zero), a request that finds no replica waits for one
 * (held-requests.ts) instead of a 503, and `GET /gateway/metrics` gives the gateway's own counters (requests,
 * in flight, held): what the workflow reads to wake the replicas and to let them go. They carry no key and
 * no request content.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import { GatewayMirror, MIRROR_MAX_ANSWER_BYTES, localMirrorPlace } from './gateway-mirror';
import type { MirrorPlace, MirrorRoute, MirrorSettings } from './gateway-mirror';
import { HeldRequests } from './held-requests';
import type { HoldOptions } from './held-requests';

export interface GatewayOptions {
  /** The deployment's replicas/ directory; replica i writes replicas/<i>/ready.json. */
  replicasDir: string;
  replicas: number;
  /** A JSON file `{"replicas": N}` that overrides `replicas` whenever it exists and parses. */
  routesFile?: string;
  /** Requests larger than this are refused here with 413 (replicas have their own, smaller limit). */
  maxBodyBytes: number;
  /** Hold requests while no replica runs (scale to zero), instead of answering 503 at once. */
  hold?: HoldOptions;
  /**
   * Where the replicas are, when not in `replicasDir` (the aks front: one in-cluster Service address, up when
   * it answers): the addresses to try, and whether a replica is up now.
   */
  backends?: Backends;
  /** How https: backends are verified (the aks front's hop to TLS-serving pods: pinned, see front.ts). */
  backendTls?: MirrorPlace<MirrorSettings>['tls'];
  /** A mirror fixed for the gateway's life (the aks front), instead of the routes file's. */
  mirror?: { copier: GatewayMirror<MirrorSettings>; settings: MirrorSettings };
}

export interface Backends {
  urls: () => string[];
  up: () => boolean;
  /** Every backend refused a connection: what `up` said is stale (the aks front's Service had no ready pod). */
  refused?: () => void;
}

/** The path of the gateway's own counters (answered by the gateway, never forwarded). */
export const GATEWAY_METRICS_PATH = '/gateway/metrics';

interface ReadyFile {
  url: string;
}

interface Routes {
  replicas?: unknown;
  /** A rollout's candidate set, and the percentage of requests it gets. */
  candidate?: { dir: string; replicas: number; weight: number };
  /** A mirror rollout's candidate set: it gets copies of requests, its answers are only compared. */
  mirror?: MirrorRoute;
}

/** The gateway's mirror counters, beside its routes file. */
export function mirrorReportFile(routesFile: string): string {
  return path.join(path.dirname(routesFile), 'mirror.json');
}

export function createGateway(opts: GatewayOptions): http.Server {
  const gateway = gatewayHandler(opts);
  const server = http.createServer(gateway.handle);
  guardServer(server);
  server.on('close', gateway.close);
  return server;
}

/** The gateway's request handler, for a server of the caller's (HTTP here, HTTPS in the aks front). */
export function gatewayHandler(opts: GatewayOptions): { handle: http.RequestListener; close: () => void } {
  let next = 0;
  // Smooth weighting: each request adds the candidate's weight; at 100 one request goes to it.
  let credit = 0;

  function readRoutes(): Routes {
    if (!opts.routesFile) return {};
    try {
      return JSON.parse(fs.readFileSync(opts.routesFile, 'utf8')) as Routes;
    } catch {
      return {};
    }
  }

  function urlsIn(dir: string, count: number): string[] {
    const urls: string[] = [];
    for (let i = 0; i < count; i++) {
      try {
        urls.push((JSON.parse(fs.readFileSync(path.join(dir, String(i), 'ready.json'), 'utf8')) as ReadyFile).url);
      } catch {
        // Not started yet, or torn down.
      }
    }
    return urls;
  }

  /** The replicas to try, in order: the chosen set's (round robin), then the other's as a fallback. */
  function upstreams(): string[] {
    if (opts.backends) return opts.backends.urls();
    const routes = readRoutes();
    const serving = urlsIn(opts.replicasDir, routedReplicas(routes, opts.replicas));
    const candidate = routes.candidate ? urlsIn(routes.candidate.dir, routes.candidate.replicas) : [];
    let toCandidate = false;
    if (routes.candidate && candidate.length > 0) {
      credit += Math.min(100, Math.max(0, routes.candidate.weight));
      if (credit >= 100) {
        credit -= 100;
        toCandidate = true;
      }
    }
    const turn = next++;
    const rotate = (urls: string[]) => urls.map((_, k) => urls[(turn + k) % urls.length]!);
    return toCandidate ? [...rotate(candidate), ...rotate(serving)] : [...rotate(serving), ...rotate(candidate)];
  }

  // Scoring requests (POSTs) the gateway received, and those not answered yet.
  let scoringTotal = 0;
  let inFlight = 0;
  const replicaUp = () =>
    opts.backends
      ? opts.backends.up()
      : urlsIn(opts.replicasDir, routedReplicas(readRoutes(), opts.replicas)).length > 0;
  const held: HeldRequests | undefined = opts.hold
    ? new HeldRequests(opts.hold, replicaUp, (req, res, body) => send(req, res, body))
    : undefined;
  const noReplica = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    opts.backends?.refused?.();
    // Held only while no replica is routed and up (scaled to zero, or waking); replicas that are routed but
    // refuse (crashed) get the 503 at once, as without scale to zero. A request already held waits on until
    // its deadline: released to a replica routed a moment before it listens (a wake's), it is held again.
    if (held && (!replicaUp() || held.wasHeld(res))) held.hold(req, res, body);
    else sendJson(res, 503, { error: { code: 'no-replica', message: 'No replica is accepting connections.' } });
  };
  const mirror = opts.routesFile
    ? new GatewayMirror(localMirrorPlace(path.dirname(opts.replicasDir), mirrorReportFile(opts.routesFile)))
    : undefined;
  const send = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const copy = opts.mirror
      ? copyOf(opts.mirror.copier, opts.mirror.settings, req, body)
      : copyOf(mirror, readRoutes().mirror, req, body);
    forward(req, res, body, upstreams(), 0, 0, noReplica, copy, opts.backendTls);
  };

  const handle: http.RequestListener = (req, res) => {
    if (!req.url?.startsWith('/')) {
      req.resume();
      res.setHeader('connection', 'close');
      return sendJson(res, 400, {
        error: {
          code: 'bad-request-target',
          message: 'Only paths are served here (a request target starting with /).',
        },
      });
    }
    if (req.url === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (req.url === GATEWAY_METRICS_PATH && req.method === 'GET') {
      return sendText(res, gatewayMetrics({ scoringTotal, inFlight, held }));
    }
    if (req.method === 'POST') {
      scoringTotal++;
      inFlight++;
      res.once('close', () => inFlight--);
    }
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
      send(req, res, Buffer.concat(chunks));
    });
    req.on('error', () => res.destroy());
  };
  return {
    handle,
    close: () => {
      held?.close();
      mirror?.flush();
    },
  };
}

/** What copies the answered request to the mirror's candidate, when this request is one to copy. */
function copyOf<R extends MirrorSettings>(
  mirror: GatewayMirror<R> | undefined,
  route: R | undefined,
  req: http.IncomingMessage,
  body: Buffer,
): ((status: number, answer: Buffer) => void) | undefined {
  if (!mirror?.wants(route, req.method)) return undefined;
  return (status, answer) =>
    mirror.offer(route, {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body,
      serving: { status, body: answer },
    });
}

/** Parser errors and CONNECT answered 400, and the request and header timeouts, on the gateway's server. */
export function guardServer(server: http.Server | https.Server): void {
  // A request the HTTP parser cannot read (CONNECT included) is answered 400; the gateway keeps serving.
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 10_000;
}

function routedReplicas(routes: Routes, replicas: number): number {
  return typeof routes.replicas === 'number' && routes.replicas >= 0 ? routes.replicas : replicas;
}

/** The gateway's counters in the Prometheus text format, as the replicas' /metrics. */
function gatewayMetrics(c: { scoringTotal: number; inFlight: number; held: HeldRequests | undefined }): string {
  const lines = [
    `inferctl_gateway_scoring_requests_total ${c.scoringTotal}`,
    `inferctl_gateway_in_flight ${c.inFlight}`,
  ];
  if (c.held) {
    lines.push(
      `inferctl_gateway_held ${c.held.held}`,
      `inferctl_gateway_held_total ${c.held.heldTotal}`,
      `inferctl_gateway_held_answered_total ${c.held.answeredTotal}`,
      `inferctl_gateway_held_refused_total ${c.held.refusedTotal}`,
    );
  }
  return lines.join('\n') + '\n';
}

function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
  urls: string[],
  start: number,
  tried: number,
  noReplica: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void,
  copy?: (status: number, answer: Buffer) => void,
  tls?: GatewayOptions['backendTls'],
): void {
  if (tried >= urls.length) {
    noReplica(req, res, body);
    return;
  }
  // The replica's address, with the request's path as written (never resolved against it as a URL).
  const replica = new URL(urls[(start + tried) % urls.length]!);
  const headers = { ...req.headers, host: replica.host, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  const target = { hostname: replica.hostname, port: replica.port, path: req.url, method: req.method, headers };
  const answered = (upstreamRes: http.IncomingMessage) => {
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
    if (copy) keepAnswer(upstreamRes, (answer) => copy(upstreamRes.statusCode ?? 502, answer));
    upstreamRes.pipe(res);
  };
  const upstream =
    replica.protocol === 'https:' ? https.request({ ...target, ...tls }, answered) : http.request(target, answered);
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    if (!res.headersSent && (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET')) {
      forward(req, res, body, urls, start, tried + 1, noReplica, copy, tls);
    } else if (!res.headersSent) {
      sendJson(res, 502, { error: { code: 'upstream-error', message: err.message } });
    } else {
      res.destroy();
    }
  });
  upstream.end(body);
}

/** The answer's bytes as they pass to the client, for the mirror's comparison (up to its size limit). */
function keepAnswer(upstreamRes: http.IncomingMessage, done: (answer: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  upstreamRes.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MIRROR_MAX_ANSWER_BYTES + 1) chunks.push(chunk);
  });
  // After the client has the whole answer: the copy never delays it.
  upstreamRes.on('end', () => setImmediate(() => done(Buffer.concat(chunks))));
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: http.ServerResponse, text: string): void {
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
