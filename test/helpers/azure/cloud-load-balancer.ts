/**
 * Plays Azure's cloud side of a LoadBalancer Service for the aks tests, the part kwok cannot: each
 * LoadBalancer Service gets the frontend Azure's rules give it (lb-frontend.ts: a public IP of its own, or
 * with the internal annotation a private VNet address; a DNS label checked and unique; status carries the IP
 * only); it listens there at the Service port and forwards each connection (L4 TCP, round robin, so TLS passes
 * through) to a ready container of the Service's pods, as the kubelet stand-in runs them (an Azure load
 * balancer's health probe, a TCP connect, likewise keeps traffic off backends that do not answer). Once a
 * backend answers it publishes the address in the Service's status, so the smoke query reaches a real
 * scoring server through the address Kubernetes reports. When the Service goes away, so does the listener.
 */
import net from 'node:net';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Service } from '@kubernetes/client-node';

import type { Kubelet } from '../kubernetes/kubelet';
import { LbFrontends, tcpProbe } from './lb-frontend';

interface Listener {
  server: net.Server;
  ip: string;
  next: number;
  /** Its open flows (both sides), dropped when the frontend goes, as Azure drops a removed rule's flows. */
  flows: Set<net.Socket>;
}

export class CloudLoadBalancer {
  private readonly listeners = new Map<string, Listener>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private stopped = false;
  readonly events: string[] = [];
  readonly frontends: LbFrontends;

  constructor(
    private readonly kc: KubeConfig,
    private readonly kubelet: Kubelet,
    location = 'eastus',
  ) {
    this.frontends = new LbFrontends(location);
  }

  start(): this {
    this.timer = setInterval(() => void this.reconcile(), 300);
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const key of [...this.listeners.keys()]) this.close(key);
  }

  private async reconcile(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const core = this.kc.makeApiClient(CoreV1Api);
      const services = (await core.listServiceForAllNamespaces({})).items.filter(
        (s) => s.spec?.type === 'LoadBalancer' && !s.metadata?.deletionTimestamp,
      );
      const seen = new Set<string>();
      for (const svc of services) {
        const key = `${svc.metadata!.namespace}/${svc.metadata!.name}`;
        seen.add(key);
        if (!this.listeners.has(key) && !(await this.listen(key, svc))) continue;
        const ip = this.listeners.get(key)!.ip;
        const [backend] = this.backends(svc);
        const [host, port] = (backend ?? ':').split(':') as [string, string];
        const ready = backend !== undefined && (await tcpProbe(host, Number(port)));
        if (ready && !svc.status?.loadBalancer?.ingress?.length && !this.stopped) await this.publish(core, svc, ip);
      }
      for (const key of [...this.listeners.keys()]) if (!seen.has(key)) this.close(key);
    } catch (err) {
      this.events.push(`reconcile failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.busy = false;
    }
  }

  private backends(svc: V1Service): string[] {
    return this.kubelet.readyEndpoints(svc.metadata!.namespace!, svc.spec?.selector ?? {});
  }

  /** Listens on the Service's frontend; false when Azure would give it none (the reason is in `events`). */
  private async listen(key: string, svc: V1Service): Promise<boolean> {
    const frontend = this.frontends.allocate(svc);
    if ('error' in frontend) {
      const event = `no frontend for ${key}: ${frontend.error}`;
      if (!this.events.includes(event)) this.events.push(event);
      return false;
    }
    const listener: Listener = { server: net.createServer(), ip: frontend.ip, next: 0, flows: new Set() };
    const track = (s: net.Socket) => {
      listener.flows.add(s);
      s.once('close', () => listener.flows.delete(s));
    };
    listener.server.on('connection', (socket) => {
      track(socket);
      // The Service's current backends, looked up per connection: a pod that stopped being ready gets none.
      const core = this.kc.makeApiClient(CoreV1Api);
      void core
        .readNamespacedService({ name: svc.metadata!.name!, namespace: svc.metadata!.namespace! })
        .then((current) => {
          const backends = this.backends(current);
          const target = backends[listener.next++ % Math.max(backends.length, 1)];
          if (!target) {
            this.events.push(`${new Date().toISOString()} no ready backend for ${key}: connection closed`);
            return socket.destroy();
          }
          const [host, port] = target.split(':') as [string, string];
          const upstream = net.connect(Number(port), host);
          track(upstream);
          socket.pipe(upstream).pipe(socket);
          // The pod's side closed: the unpiped client side is left paused and would never read the client's FIN
          // (a flow the load balancer held for ever); read on, so it closes once the client has closed too.
          upstream.once('close', () => socket.resume());
          upstream.on('error', () => socket.destroy());
          socket.on('error', () => upstream.destroy());
        })
        .catch(() => socket.destroy());
    });
    const port = svc.spec!.ports![0]!.port;
    await new Promise<void>((resolve, reject) => {
      listener.server.once('error', reject);
      listener.server.listen(port, listener.ip, () => resolve());
    });
    this.listeners.set(key, listener);
    this.events.push(`listening for ${key} on ${listener.ip}:${port}`);
    return true;
  }

  private close(key: string): void {
    const listener = this.listeners.get(key);
    listener?.server.close();
    for (const flow of listener?.flows ?? []) flow.destroy();
    this.listeners.delete(key);
    this.frontends.release(key);
    this.events.push(`stopped ${key}`);
  }

  private async publish(core: CoreV1Api, svc: V1Service, ip: string): Promise<void> {
    await core.replaceNamespacedServiceStatus({
      name: svc.metadata!.name!,
      namespace: svc.metadata!.namespace!,
      body: { ...svc, status: { loadBalancer: { ingress: [{ ip }] } } },
    });
    this.events.push(`published ${svc.metadata!.namespace}/${svc.metadata!.name} at ${ip}`);
  }
}
