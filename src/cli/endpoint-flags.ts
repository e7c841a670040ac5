/**
 * The aks endpoint flags of `inferctl deploy`: --internal, --insecure-http, the user's certificate
 * (--tls-cert/--tls-key files on the worker, or --tls-secret), and --tls-ca-out; checked here before
 * anything starts (the worker checks again: tls-exposure.ts), and what the CLI says and writes about TLS.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { DeployStatus } from '../shared/deploy-types';
import type { AksDeploymentOptions, EndpointTls, TargetKind } from '../shared/target-types';
import { endpointExposure } from '../targets/aks/tls-exposure';
import { CliError } from './cli-error';
import type { Output } from './output';

export interface EndpointFlags {
  internal?: true;
  insecureHttp?: true;
  tlsCert?: string;
  tlsKey?: string;
  tlsSecret?: string;
  allowFrom?: string[];
}

/** The flags as deployment options; file paths made absolute (the worker reads them, like --model). */
export function endpointOptions(o: EndpointFlags): AksDeploymentOptions {
  return {
    ...(o.internal ? { internal: true } : {}),
    ...(o.insecureHttp ? { insecureHttp: true } : {}),
    ...(o.tlsCert ? { tlsCertPath: path.resolve(o.tlsCert) } : {}),
    ...(o.tlsKey ? { tlsKeyPath: path.resolve(o.tlsKey) } : {}),
    ...(o.tlsSecret ? { tlsSecret: o.tlsSecret } : {}),
    ...(o.allowFrom ? { allowFrom: o.allowFrom } : {}),
  };
}

/** The endpoint flags are the aks target's, and must not contradict each other. */
export function checkEndpointFlags(
  target: TargetKind,
  aks: AksDeploymentOptions,
  o: { tlsCaOut?: string; detach?: true },
): void {
  const given = [aks.internal, aks.insecureHttp, aks.tlsCertPath, aks.tlsKeyPath, aks.tlsSecret, aks.allowFrom].some(
    Boolean,
  );
  if (target !== 'aks' && (given || o.tlsCaOut)) {
    throw new CliError(
      '--internal, --insecure-http, --allow-from and the --tls-* flags are for --target aks (local replicas serve ' +
        'loopback HTTP).',
      2,
    );
  }
  if (o.tlsCaOut && o.detach) throw new CliError('--tls-ca-out needs to follow the deployment; drop --detach.', 2);
  try {
    endpointExposure({ name: 'check', subscriptionId: '', resourceGroup: '', location: '' }, aks);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), 2);
  }
}

/** One line on how to trust the endpoint. */
export function describeTls(tls: EndpointTls): string {
  return tls.source === 'deployment-ca'
    ? `TLS: certificate for ${tls.hostname} from this deployment's own CA, SHA-256 ${tls.fingerprint} ` +
        '(write the CA with --tls-ca-out)'
    : `TLS: your certificate for ${tls.hostname}, SHA-256 ${tls.fingerprint}`;
}

/** --tls-ca-out: the deployment's CA (public) for clients to trust, e.g. `curl --cacert`. */
export function writeCa(file: string, status: DeployStatus, out: Output): void {
  if (!status.tls?.caPem) {
    out.note(`note: no CA written to ${file}: this endpoint has ${status.tls ? 'your own certificate' : 'no TLS'}.`);
    return;
  }
  fs.writeFileSync(file, status.tls.caPem);
  out.line(`CA certificate written to ${file} (curl --cacert ${file} ${status.endpoint ?? ''}/score …)`);
}
