/**
 * Plays Azure's cloud side of a LoadBalancer Service for the aks tests, the part kwok cannot: each
 * LoadBalancer Service gets its own address, as each gets its own public IP on Azure (a loopback address
 * of its own, 127.0.0.1 for the first, 127.0.0.2 for the next, …); it listens there at the Service port and forwards each connection (TCP,
 * round robin) to a ready container of the Service's pods, as the kubelet stand-in runs them (an Azure
 * load balancer's health probe likewise keeps traffic off pods that are not ready). Once a backend is
 * ready it publishes that address in the Service's status, so the smoke query reaches a real scoring
 * server through the address Kubernetes reports. When the Service goes away, so does the listener.
 */
import net from 'node:net';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Service } from '@kubernetes/client-node';

import type { Kubelet } from '../kubernetes/kubelet';

interface Listener {
  server: net.Server;
  ip: string;
  next: number;
}

export class CloudLoadBalancer {
  private readonly listeners = new Map<string, Listener>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private stopped = false;
  readonly events: string[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly kubelet: Kubelet,
  ) {}

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
        if (!this.listeners.has(key)) await this.listen(key, svc);
        const ip = this.listeners.get(key)!.ip;
        const ready = this.backends(svc).length > 0;
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

  private async listen(key: string, svc: V1Service): Promise<void> {
    const taken = new Set([...this.listeners.values()].map((l) => l.ip));
    let n = 1;
    while (taken.has(`127.0.0.${n}`)) n++;
    const listener: Listener = { server: net.createServer(), ip: `127.0.0.${n}`, next: 0 };
    listener.server.on('connection', (socket) => {
      // The Service's current backends, looked up per connection: a pod that stopped being ready gets none.
      const core = this.kc.makeApiClient(CoreV1Api);
      void core
        .readNamespacedService({ name: svc.metadata!.name!, namespace: svc.metadata!.namespace! })
        .then((current) => {
          const backends = this.backends(current);
          const target = backends[listener.next++ % Math.max(backends.length, 1)];
          if (!target) return socket.destroy();
          const [host, port] = target.split(':') as [string, string];
          const upstream = net.connect(Number(port), host);
          socket.pipe(upstream).pipe(socket);
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
  }

  private close(key: string): void {
    this.listeners.get(key)?.server.close();
    this.listeners.delete(key);
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
