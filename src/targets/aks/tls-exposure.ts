/**
 * How an AKS deployment's endpoint is exposed, decided once from its options: a public IP serving HTTPS
 * (the default), an internal load balancer, or plain HTTP on a public IP only when asked for by name.
 *
 * The per-deployment certificate needs its name before the load balancer has an address (the IP is only
 * known once Azure allocates it, and the certificate is made at provision, once). So a public Service
 * carries an Azure DNS label (`service.beta.kubernetes.io/azure-dns-label-name`), which makes the public
 * IP answer as `<label>.<region>.cloudapp.azure.com`: a name known in advance, unique in the region (the
 * label hashes the subscription, resource group and deployment name), that is the certificate's SAN. The
 * smoke query connects to the load balancer's IP and checks the certificate against that name and the
 * pinned CA, so it does not wait for the new DNS record to propagate.
 *
 * An internal load balancer's private address cannot be named in advance either, and Azure gives it no
 * DNS label: it serves plain HTTP inside the VNet unless the user brings a certificate.
 *
 * `--allow-from CIDR…` limits who can open a connection at all: the Service's loadBalancerSourceRanges,
 * which Azure's cloud provider turns into the network security group's allow rules (everyone else dropped).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';

import { InvalidInputError } from '../../errors';
import type { AksDeploymentOptions } from '../../shared/target-types';

export const INTERNAL_LB_ANNOTATION = 'service.beta.kubernetes.io/azure-load-balancer-internal';
export const DNS_LABEL_ANNOTATION = 'service.beta.kubernetes.io/azure-dns-label-name';
/** Azure's rule for a public IP's DNS label. */
export const DNS_LABEL_PATTERN = /^[a-z][a-z0-9-]{1,61}[a-z0-9]$/;
const SECRET_NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export type TlsSource = 'deployment-ca' | 'user-secret' | 'user-files';

export interface EndpointExposure {
  /** An internal load balancer (a private VNet address) rather than a public IP. */
  internal: boolean;
  /** How HTTPS is served; left out: plain HTTP (internal without a certificate, or --insecure-http). */
  tls?: { source: TlsSource; secretName: string; certPath?: string; keyPath?: string };
  /** The public IP's DNS label, and the name it gives (public load balancers only). */
  dnsLabel?: string;
  fqdn?: string;
  /** The Service port: INFERCTL_AKS_SERVICE_PORT, else 443 for HTTPS and 80 for HTTP. */
  port: number;
  /** `--allow-from`: the only client address ranges the load balancer lets in (loadBalancerSourceRanges). */
  sourceRanges?: string[];
}

/** The ranges of `--allow-from` that are not CIDRs (`10.0.0.0/8`, `203.0.113.7/32`, `2001:db8::/32`). */
export function invalidCidrs(ranges: string[]): string[] {
  return ranges.filter((r) => {
    const m = /^([^/\s]+)\/(\d{1,3})$/.exec(r);
    const version = m ? net.isIP(m[1]!) : 0;
    return !m || version === 0 || Number(m[2]) > (version === 4 ? 32 : 128);
  });
}

export interface ExposureScope {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  /** The worker's INFERCTL_AKS_SERVICE_PORT, when set. */
  servicePort?: number;
}

export function tlsSecretName(name: string): string {
  return `${name}-tls`;
}

/** `inferctl-<name>-<8 hex>`: stable across retries, distinct across subscriptions and resource groups. */
export function dnsLabelFor(scope: Pick<ExposureScope, 'name' | 'subscriptionId' | 'resourceGroup'>): string {
  const hash = crypto
    .createHash('sha256')
    .update(`${scope.subscriptionId}/${scope.resourceGroup}/${scope.name}`)
    .digest('hex')
    .slice(0, 8);
  return `inferctl-${scope.name}-${hash}`;
}

/** Resolves the options into one exposure, naming every contradiction at once. */
export function endpointExposure(scope: ExposureScope, opts: AksDeploymentOptions = {}): EndpointExposure {
  const problems: string[] = [];
  const files = Boolean(opts.tlsCertPath || opts.tlsKeyPath);
  if (opts.tlsSecret && files) problems.push('use --tls-secret or --tls-cert/--tls-key, not both');
  if (files && !(opts.tlsCertPath && opts.tlsKeyPath)) problems.push('--tls-cert and --tls-key go together');
  for (const file of [opts.tlsCertPath, opts.tlsKeyPath]) {
    if (file && !path.isAbsolute(file)) problems.push(`TLS file paths must be absolute on the worker (got ${file})`);
  }
  if (opts.tlsSecret && !SECRET_NAME_PATTERN.test(opts.tlsSecret)) {
    problems.push(`--tls-secret "${opts.tlsSecret}" is not a Kubernetes Secret name`);
  }
  if (opts.tlsSecret && !opts.cluster) {
    problems.push(
      '--tls-secret needs --cluster: the Secret must already exist in the deployment’s namespace of an existing ' +
        'cluster (for a cluster inferctl creates, pass --tls-cert/--tls-key files instead)',
    );
  }
  if (opts.insecureHttp && (opts.tlsSecret || files)) {
    problems.push('--insecure-http and a certificate contradict each other; drop one');
  }
  const badRanges = invalidCidrs(opts.allowFrom ?? []);
  if (badRanges.length > 0) {
    problems.push(
      `--allow-from takes address ranges in CIDR form (10.0.0.0/8, 203.0.113.7/32, 2001:db8::/32); not ` +
        badRanges.map((r) => JSON.stringify(r)).join(', '),
    );
  }
  if (opts.allowFrom && opts.allowFrom.length === 0) problems.push('--allow-from needs at least one range');
  if (problems.length > 0) throw new InvalidInputError(`Invalid endpoint options: ${problems.join('; ')}.`);

  const internal = Boolean(opts.internal);
  let tls: EndpointExposure['tls'];
  if (opts.tlsSecret) tls = { source: 'user-secret', secretName: opts.tlsSecret };
  else if (files) {
    tls = {
      source: 'user-files',
      secretName: tlsSecretName(scope.name),
      certPath: opts.tlsCertPath!,
      keyPath: opts.tlsKeyPath!,
    };
  } else if (!internal && !opts.insecureHttp) tls = { source: 'deployment-ca', secretName: tlsSecretName(scope.name) };
  const dnsLabel = internal ? undefined : dnsLabelFor(scope);
  return {
    internal,
    ...(tls ? { tls } : {}),
    ...(dnsLabel ? { dnsLabel, fqdn: `${dnsLabel}.${scope.location.toLowerCase()}.cloudapp.azure.com` } : {}),
    port: scope.servicePort ?? (tls ? 443 : 80),
    ...(opts.allowFrom ? { sourceRanges: [...opts.allowFrom] } : {}),
  };
}

/** The Service's annotations for this exposure: Azure's cloud provider reads them. */
export function serviceAnnotations(exposure: EndpointExposure): Record<string, string> {
  if (exposure.internal) return { [INTERNAL_LB_ANNOTATION]: 'true' };
  return exposure.dnsLabel ? { [DNS_LABEL_ANNOTATION]: exposure.dnsLabel } : {};
}

/** The URL clients use: the certificate's host name for HTTPS, the load balancer's address for HTTP. */
export function endpointUrl(exposure: EndpointExposure, address: string, hostname?: string): string {
  const scheme = exposure.tls ? 'https' : 'http';
  const host = exposure.tls ? (hostname ?? exposure.fqdn ?? address) : address;
  const defaultPort = exposure.tls ? 443 : 80;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}${exposure.port === defaultPort ? '' : `:${exposure.port}`}`;
}
