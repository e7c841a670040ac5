/**
 * The frontend Azure's cloud provider gives a LoadBalancer Service, for the cloud-load-balancer double.
 * Rules it enforces, as cloud-provider-azure on AKS does:
 *   - `service.beta.kubernetes.io/azure-load-balancer-internal: "true"` (exactly "true") puts the Service
 *     on the internal load balancer: a private address from the cluster's VNet (AKS's default node subnet,
 *     10.224.0.0/16), never a public IP. Anything else is a public IP.
 *   - `service.beta.kubernetes.io/azure-dns-label-name` names a public IP `<label>.<region>.cloudapp.azure.com`.
 *     The label must match Azure's rule (3–63 of a-z, 0-9, '-', starting with a letter, not ending with '-')
 *     and be free in the region; otherwise the Service gets no address and the reason is recorded. It has
 *     no meaning on an internal load balancer (no public IP), where it is ignored.
 *   - The load balancer is L4: it forwards TCP, so TLS passes through to the pod untouched, and its health
 *     probe is a TCP connect to the port, not an HTTP request.
 *   - The Service status carries the IP only (`ingress: [{ ip }]`), never the DNS name.
 * Reachable stand-ins: a public IP is published as 127.0.0.N (one per Service), a private VNet address 10.224.x.y as
 * 127.224.x.y (all of 127/8 is loopback), so tests reach both and tell them apart; `frontends` records
 * which kind each Service got and the address it stands for.
 */
import net from 'node:net';

import type { V1Service } from '@kubernetes/client-node';

export const INTERNAL_ANNOTATION = 'service.beta.kubernetes.io/azure-load-balancer-internal';
export const DNS_LABEL_ANNOTATION = 'service.beta.kubernetes.io/azure-dns-label-name';
const DNS_LABEL_RULE = /^[a-z][a-z0-9-]{1,61}[a-z0-9]$/;

export interface Frontend {
  kind: 'public' | 'private';
  /** The address published in the Service status (and bound to here). */
  ip: string;
  /** What that address plays: a public IP, or the private VNet address. */
  standsFor: string;
  /** The public IP's DNS name, when the Service asked for a label. */
  fqdn?: string;
}

export class LbFrontends {
  /** Frontends by Service (namespace/name). */
  readonly frontends = new Map<string, Frontend>();
  private nextPrivate = 4; // Azure keeps .0–.3 of a subnet for itself

  constructor(private readonly location: string) {}

  /** The Service's frontend (the same one on every call), or why Azure would give it none. */
  allocate(svc: V1Service): Frontend | { error: string } {
    const key = `${svc.metadata!.namespace}/${svc.metadata!.name}`;
    const existing = this.frontends.get(key);
    if (existing) return existing;
    const annotations = svc.metadata?.annotations ?? {};
    let frontend: Frontend;
    if (annotations[INTERNAL_ANNOTATION] === 'true') {
      const host = this.nextPrivate++;
      const tail = `${Math.floor(host / 256)}.${host % 256}`;
      frontend = { kind: 'private', ip: `127.224.${tail}`, standsFor: `10.224.${tail}` };
    } else {
      const label = annotations[DNS_LABEL_ANNOTATION];
      let fqdn: string | undefined;
      if (label !== undefined) {
        if (!DNS_LABEL_RULE.test(label))
          return { error: `InvalidDomainNameLabel: "${label}" is not a valid DNS label` };
        fqdn = `${label}.${this.location}.cloudapp.azure.com`;
        const holder = [...this.frontends].find(([, f]) => f.fqdn === fqdn)?.[0];
        if (holder) return { error: `DnsRecordInUse: ${fqdn} is already used by the public IP of ${holder}` };
      }
      // Each Service its own public IP, as on Azure: 127.0.0.1 for the first, 127.0.0.2 for the next, ….
      const taken = new Set([...this.frontends.values()].map((f) => f.ip));
      let n = 1;
      while (taken.has(`127.0.0.${n}`)) n++;
      frontend = { kind: 'public', ip: `127.0.0.${n}`, standsFor: 'a public IP', ...(fqdn ? { fqdn } : {}) };
    }
    this.frontends.set(key, frontend);
    return frontend;
  }

  release(key: string): void {
    this.frontends.delete(key);
  }
}

/** The load balancer's health probe: a TCP connect, as for any L4 rule (no HTTP, no TLS). */
export function tcpProbe(ip: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: ip, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
