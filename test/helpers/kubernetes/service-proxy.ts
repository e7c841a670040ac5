/**
 * Pod-to-Service traffic for the kubelet stand-in's containers: what cluster DNS and kube-proxy give a pod
 * on a real node. A container whose args name a Service by its cluster DNS name
 * (`http://<service>.<namespace>.svc.cluster.local:<port>`) gets a loopback address standing for it instead
 * (the stand-in has no DNS and no cluster IPs); each connection there goes, round robin, to a ready container
 * of the pods the Service selects *at that moment* (read from the API server), as kube-proxy's rules follow
 * the EndpointSlices. What kube-proxy does that this does too:
 *   - only ready pods get connections (a pod turning not-ready, or being deleted, gets no new ones);
 *   - a Service with no ready endpoint refuses the connection (kube-proxy's REJECT rule; here the connection
 *     is closed before any byte, which a client sees as a reset or a hang-up rather than ECONNREFUSED, as the
 *     listener must exist beforehand). Not with socket.resetAndDestroy(): a process that had reset sockets
 *     that way was seen stuck at exit, its main thread busy in node::Environment::CleanupHandles (gdb), so
 *     the test file's process never ended after its tests passed;
 *   - a Service that does not exist (or was deleted) refuses likewise.
 */
import net from 'node:net';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

/** A Service's cluster DNS URL: scheme, service, namespace, port, the rest. */
export const SERVICE_URL = /^(https?:\/\/)([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)(\/.*)?$/;

export class ServiceProxy {
  private readonly listeners = new Map<string, Promise<net.Server>>();
  private readonly sockets = new Set<net.Socket>();
  private next = 0;
  readonly refused: string[] = [];

  constructor(
    private readonly kc: KubeConfig,
    /** `127.0.0.1:<port>` of every ready container of the pods in `namespace` with all of `selector`'s labels. */
    private readonly endpoints: (namespace: string, selector: Record<string, string>) => string[],
  ) {}

  /** `arg` with a Service's cluster DNS URL replaced by the loopback address standing for it. */
  async rewrite(arg: string): Promise<string> {
    const m = SERVICE_URL.exec(arg);
    if (!m) return arg;
    const [, scheme, service, namespace, port, rest] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string?,
    ];
    const key = `${namespace}/${service}:${port}`;
    if (!this.listeners.has(key)) this.listeners.set(key, this.listen(namespace, service));
    const address = (await this.listeners.get(key)!).address() as net.AddressInfo;
    return `${scheme}127.0.0.1:${address.port}${rest ?? ''}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(
      [...this.listeners.values()].map(async (l) => {
        const server = await l;
        await new Promise((resolve) => server.close(resolve));
      }),
    );
    this.listeners.clear();
  }

  private listen(namespace: string, service: string): Promise<net.Server> {
    const server = net.createServer((client) => void this.connect(client, namespace, service));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  }

  private async connect(client: net.Socket, namespace: string, service: string): Promise<void> {
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    const selector = await this.kc
      .makeApiClient(CoreV1Api)
      .readNamespacedService({ name: service, namespace })
      .then((s) => (s.metadata?.deletionTimestamp ? undefined : s.spec?.selector))
      .catch(() => undefined);
    const ready = selector ? this.endpoints(namespace, selector) : [];
    if (ready.length === 0) {
      this.refused.push(`${namespace}/${service}`);
      client.destroy();
      return;
    }
    const [host, port] = ready[this.next++ % ready.length]!.split(':') as [string, string];
    const upstream = net.connect(Number(port), host);
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  }
}
