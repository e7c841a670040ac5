/**
 * The aks front of a deployment that scales to zero: the always-on endpoint on the cluster's system pool
 * (CPU), behind the public LoadBalancer Service, in front of the scoring pods' in-cluster Service. It runs
 * the local gateway's logic (gateway.ts, held-requests.ts): a request that finds no scoring pod is held until
 * one is ready (bounded queue, bounded wait, then 503 with Retry-After), and `GET /gateway/metrics` gives the
 * counters the workflow reads, through the API server, to wake the pool and to let it go.
 *
 * TLS ends here (the deployment's certificate, from its TLS Secret); the hop to the scoring pods is plain
 * HTTP inside the cluster network, to a ClusterIP Service no load balancer exposes. The key is checked here,
 * before a request is counted or held: a caller without the key never wakes a GPU node. The scoring pods
 * check it again (the header is forwarded untouched). `/healthz` (the kubelet's probe) and the counters (no
 * request content, no key; the API server's pod proxy does not pass a caller's Authorization on) need none.
 */
import http from 'node:http';
import https from 'node:https';

import { bearerMatches, sha256 } from '../../server/http-io';
import { GATEWAY_METRICS_PATH, gatewayHandler, guardServer } from '../local/gateway';
import type { HoldOptions } from '../local/held-requests';

export interface FrontOptions {
  /** The scoring pods' Service, `http://<name>-scorers.<namespace>.svc.cluster.local:5001`. */
  upstream: string;
  apiKey: string;
  /** The certificate chain and key to serve HTTPS with; plain HTTP when left out. */
  tls?: { cert: Buffer; key: Buffer };
  hold: HoldOptions;
  maxBodyBytes: number;
  /** How often the scoring pods' readiness is looked at, ms. */
  pollMs?: number;
}

/** Whether a scoring pod answers its readiness through the Service, refreshed every `pollMs`. */
class UpstreamReadiness {
  up = false;
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly url: string,
    pollMs: number,
  ) {
    this.timer = setInterval(() => void this.check(), pollMs);
    void this.check();
  }

  private async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      this.up = res.ok;
    } catch {
      this.up = false; // no ready pod behind the Service: the connection is refused
    } finally {
      this.busy = false;
    }
  }

  /** A connection through the Service was refused: no pod is ready behind it now, whatever the last look said. */
  refused(): void {
    this.up = false;
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function createFront(opts: FrontOptions): http.Server | https.Server {
  const readiness = new UpstreamReadiness(opts.upstream, opts.pollMs ?? 250);
  const gateway = gatewayHandler({
    replicasDir: '',
    replicas: 0,
    maxBodyBytes: opts.maxBodyBytes,
    hold: opts.hold,
    backends: { urls: () => [opts.upstream], up: () => readiness.up, refused: () => readiness.refused() },
  });
  const expectedKey = sha256(opts.apiKey);
  const handle: http.RequestListener = (req, res) => {
    const open = req.url === '/healthz' || (req.url === GATEWAY_METRICS_PATH && req.method === 'GET');
    if (!open && !bearerMatches(req, expectedKey)) {
      req.resume();
      const text = JSON.stringify({
        error: { code: 'unauthorized', message: 'Send the deployment key as "Authorization: Bearer <key>".' },
      });
      res.writeHead(401, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'www-authenticate': 'Bearer',
      });
      res.end(text);
      return;
    }
    gateway.handle(req, res);
  };
  const server = opts.tls ? https.createServer({ ...opts.tls }, handle) : http.createServer(handle);
  guardServer(server);
  server.on('close', () => {
    readiness.stop();
    gateway.close();
  });
  return server;
}
