/**
 * The path from the API server into the cluster's network, for the aks tests: on AKS the API server runs
 * outside the nodes' VNet and reaches pods and kubelets through a tunnel (konnectivity); here the
 * kube-apiserver's egress selector sends its "cluster" traffic (pod and service proxy, kubelet logs) through
 * this HTTP CONNECT proxy. What the real path enforces that this one enforces too:
 *   - a pod IP is reached only at a port its running container listens on (the kubelet stand-in's
 *     `podAddress`); anything else is refused, as a pod IP refuses a port nothing listens on, and the API
 *     server answers the caller with an error;
 *   - the API server itself checks what may be proxied (no loopback or link-local pod IPs; authenticated
 *     and authorised callers; the caller's Authorization header is not passed on): that is the real binary's;
 *   - node addresses (kwok's kubelets, on 127.0.0.1) pass through unchanged, as the tunnel reaches nodes.
 * Nothing else is reachable: a destination that is neither a node nor a pod's port gets 503.
 */
import http from 'node:http';
import net from 'node:net';

export interface PodNetworkOptions {
  /** `host:port` on this machine for a pod's `ip:port`, or undefined when nothing listens there. */
  podAddress: (ip: string, port: number) => string | undefined;
  /** Node addresses (the kubelets') that pass through. */
  nodeAddresses: readonly string[];
}

export class PodNetwork {
  private readonly server = http.createServer((_req, res) => res.writeHead(405).end('CONNECT only\n'));
  private options?: PodNetworkOptions;
  /** Open tunnels: a CONNECT socket leaves the HTTP server's bookkeeping, so stop ends them itself. */
  private readonly tunnels = new Set<net.Socket>();
  readonly refused: string[] = [];

  /**
   * Listens on the unix socket `socketPath` (the API server's egress over a UDS, as konnectivity's is) and
   * returns it; `route` is given later (the kubelet stand-in needs the running API server first).
   */
  async start(socketPath: string): Promise<string> {
    this.server.on('connect', (req, client: net.Socket, head: Buffer) => {
      const [host = '', portText = ''] = (req.url ?? '').split(/:(?=\d+$)/);
      const port = Number(portText);
      const to = this.options?.nodeAddresses.includes(host) ? `${host}:${port}` : this.options?.podAddress(host, port);
      if (!to || !Number.isInteger(port)) {
        this.refused.push(`${req.url ?? '?'}`);
        client.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
        return;
      }
      const [toHost, toPort] = to.split(':') as [string, string];
      const upstream = net.connect(Number(toPort), toHost, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        if (head.length) upstream.write(head);
        client.pipe(upstream).pipe(client);
      });
      for (const socket of [client, upstream]) {
        this.tunnels.add(socket);
        socket.once('close', () => this.tunnels.delete(socket));
      }
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => this.server.listen(socketPath, resolve));
    return socketPath;
  }

  route(options: PodNetworkOptions): void {
    this.options = options;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The kube-apiserver's EgressSelectorConfiguration: its traffic into the cluster goes through the socket. */
export function egressSelectorConfig(socketPath: string): string {
  return [
    'apiVersion: apiserver.k8s.io/v1beta1',
    'kind: EgressSelectorConfiguration',
    'egressSelections:',
    '- name: cluster',
    '  connection:',
    '    proxyProtocol: HTTPConnect',
    '    transport:',
    '      uds:',
    `        udsName: ${JSON.stringify(socketPath)}`,
    '',
  ].join('\n');
}
