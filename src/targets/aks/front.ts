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
 *
 * A mirror rollout places the same front before a deployment that does not scale to zero, for its bake only
 * (mirror-front.ts): it forwards to the serving pods and copies the answered share of requests to the
 * candidate's in-cluster Service (gateway-mirror.ts), whose answers go nowhere but the comparison. Both hops
 * are HTTPS when the deployment serves TLS, pinned to the deployment's own certificate (the pods serve the
 * very tls.crt the front serves; the Service's cluster name is not in it, so the pin stands for the name
 * check). The comparison is `GET /gateway/mirror`: it holds other clients' answers, so it needs the header
 * `x-inferctl-mirror-token`, an HMAC of the key (mirrorReportToken): the API server's pod proxy passes that
 * header on, the key itself never travels through it, and a caller of the public endpoint without it gets 401.
 * The counters are in memory: a front pod restarted (crashed, rescheduled) counts from zero under a new `epoch`
 * in its report, and the bake adds each epoch's last reading up (workflows/deploy/mirror-bake.ts).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

import { bearerMatches, sha256 } from '../../server/http-io';
import type { MirrorReport } from '../../shared/mirror-types';
import { GATEWAY_METRICS_PATH, gatewayHandler, guardServer } from '../local/gateway';
import { GatewayMirror, MIRROR_MAX_IN_FLIGHT } from '../local/gateway-mirror';
import type { MirrorSettings } from '../local/gateway-mirror';
import type { HoldOptions } from '../local/held-requests';

/** The path of the front's mirror comparison, and the header that must carry mirrorReportToken(key). */
export const MIRROR_REPORT_PATH = '/gateway/mirror';
export const MIRROR_TOKEN_HEADER = 'x-inferctl-mirror-token';

/** The token that reads the comparison: derived from the key, so the key never rides on the pod proxy. */
export function mirrorReportToken(apiKey: string): string {
  return crypto.createHmac('sha256', apiKey).update('inferctl mirror report').digest('hex');
}

export interface FrontOptions {
  /** The scoring pods' Service, `http(s)://<name>-scorers.<namespace>.svc.cluster.local:5001`. */
  upstream: string;
  /** The certificate chain the upstream pods serve (https: upstream and candidate): the hops are pinned to it. */
  upstreamCa?: Buffer;
  /** A mirror rollout's bake: the candidate's Service (same scheme as the upstream) and the mirror's settings. */
  mirror?: { candidate: string; settings: MirrorSettings };
  apiKey: string;
  /** The certificate chain and key to serve HTTPS with; plain HTTP when left out. */
  tls?: { cert: Buffer; key: Buffer };
  /** Hold requests while no scoring pod is ready (scale to zero); left out (a mirror's front): 503 at once. */
  hold?: HoldOptions;
  maxBodyBytes: number;
  /** How often the scoring pods' readiness is looked at, ms. */
  pollMs?: number;
}

/** Whether a scoring pod answers its readiness through the Service, refreshed every `pollMs`. */
class UpstreamReadiness {
  up = false;
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  /** One kept-alive connection for the polls (a new one every 250 ms would pile up through the Service). */
  private readonly agent: http.Agent;

  constructor(
    private readonly url: string,
    pollMs: number,
    tls?: https.AgentOptions,
  ) {
    this.agent = url.startsWith('https:')
      ? new https.Agent({ keepAlive: true, maxSockets: 1, ...tls })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.timer = setInterval(() => void this.check(), pollMs);
    void this.check();
  }

  private async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      this.up = (await readyzStatus(`${this.url}/readyz`, this.agent)) === 200;
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
    this.agent.destroy();
  }
}

export function createFront(opts: FrontOptions): http.Server | https.Server {
  const pinned = opts.upstreamCa
    ? { ca: opts.upstreamCa, allowPartialTrustChain: true, checkServerIdentity: () => undefined }
    : undefined;
  const readiness = new UpstreamReadiness(opts.upstream, opts.pollMs ?? 250, pinned);
  const mirror = opts.mirror && {
    settings: opts.mirror.settings,
    copier: new GatewayMirror<MirrorSettings>({
      allows: () => true,
      candidateUrl: () => new URL(opts.mirror!.candidate),
      // Kept-alive connections to the candidate's Service, as many as copies go at once.
      agent: opts.mirror.candidate.startsWith('https:')
        ? new https.Agent({ keepAlive: true, maxSockets: MIRROR_MAX_IN_FLIGHT, ...pinned })
        : new http.Agent({ keepAlive: true, maxSockets: MIRROR_MAX_IN_FLIGHT }),
    }),
  };
  const gateway = gatewayHandler({
    replicasDir: '',
    replicas: 0,
    maxBodyBytes: opts.maxBodyBytes,
    ...(opts.hold ? { hold: opts.hold } : {}),
    backends: { urls: () => [opts.upstream], up: () => readiness.up, refused: () => readiness.refused() },
    ...(pinned ? { backendTls: pinned } : {}),
    ...(mirror ? { mirror } : {}),
  });
  const expectedKey = sha256(opts.apiKey);
  const expectedToken = sha256(mirrorReportToken(opts.apiKey));
  const handle: http.RequestListener = (req, res) => {
    if (req.url === MIRROR_REPORT_PATH && req.method === 'GET' && mirror) {
      return answerMirrorReport(req, res, expectedToken, mirror.copier.reportOf(mirror.settings.id));
    }
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

/** The status of GET `url` through `agent` (https: pinned as its options say), within 2 s. */
function readyzStatus(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { timeout: 2000, agent });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 2s')));
    req.on('error', reject);
  });
}

/** The comparison, to a caller with the token (constant-time check); 401 otherwise. */
function answerMirrorReport(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  expectedToken: Buffer,
  report: MirrorReport,
): void {
  req.resume();
  const given = req.headers[MIRROR_TOKEN_HEADER];
  const ok = typeof given === 'string' && crypto.timingSafeEqual(sha256(given), expectedToken);
  const text = JSON.stringify(
    ok ? report : { error: { code: 'unauthorized', message: `Send ${MIRROR_TOKEN_HEADER}.` } },
  );
  res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
