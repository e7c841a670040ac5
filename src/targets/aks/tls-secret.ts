/**
 * The deployment's certificate as a `kubernetes.io/tls` Secret (tls.crt, tls.key, and for a
 * per-deployment CA its certificate ca.crt and key ca.key), made at provision: a retried provision finds
 * the Secret and reuses it, so the CA users were shown never changes. Two attempts racing both end up with
 * the one that was created first (create, not apply; a 409 re-reads). `renewTlsSecret` replaces tls.crt and
 * tls.key with a new pair signed by the same CA. The private keys go from here into the Secret and nowhere
 * else (the pods mount tls.crt and tls.key only): what this module returns holds certificates only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';

import { assertInsideAllowedRoots } from '../../allowed-roots';
import { InvalidInputError, PermanentError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import type { EndpointTls } from '../../shared/target-types';
import type { PinnedTls } from '../target';
import { isKubeNotFound } from './kubernetes-deployment';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION } from './kubernetes-manifests';
import { certificateFingerprint, mintDeploymentCertificate, renewServerCertificate } from './tls-certificate';
import type { EndpointExposure } from './tls-exposure';

/** The public half of the Secret: what clients trust and check. */
export interface TlsCertificates {
  certPem: string;
  caPem?: string;
}

export interface TlsSecretScope {
  namespace: string;
  name: string;
  ownerId: string;
  exposure: EndpointExposure;
  /** The per-deployment server certificate's lifetime (DEFAULT_VALIDITY_DAYS when left out). */
  validityDays?: number;
}

const TLS_TYPE = 'kubernetes.io/tls';

/** Makes (once) or checks the deployment's TLS Secret; undefined for a plain-HTTP endpoint. */
export async function ensureTlsSecret(kc: KubeConfig, scope: TlsSecretScope): Promise<TlsCertificates | undefined> {
  const tls = scope.exposure.tls;
  if (!tls) return undefined;
  const existing = await readTlsSecret(kc, scope.namespace, tls.secretName);
  if (existing) return existing;
  if (tls.source === 'user-secret') {
    throw new InvalidInputError(
      `TLS Secret ${scope.namespace}/${tls.secretName} does not exist. Create it first: kubectl create ` +
        `namespace ${scope.namespace}; kubectl -n ${scope.namespace} create secret tls ${tls.secretName} ` +
        '--cert=cert.pem --key=key.pem',
    );
  }
  const data = tls.source === 'deployment-ca' ? await mint(scope) : await readUserFiles(tls.certPath!, tls.keyPath!);
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: TLS_TYPE,
    metadata: {
      name: tls.secretName,
      namespace: scope.namespace,
      labels: { app: scope.name, [MANAGED_BY_LABEL]: 'inferctl' },
      annotations: { [OWNER_ANNOTATION]: scope.ownerId },
    },
    stringData: data,
  };
  try {
    await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: scope.namespace, body });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  const stored = await readTlsSecret(kc, scope.namespace, tls.secretName);
  if (!stored) throw new Error(`TLS Secret ${scope.namespace}/${tls.secretName} vanished right after it was created`);
  return stored;
}

/** The certificates of an existing TLS Secret (never its key); undefined when there is none. */
export async function readTlsSecret(
  kc: KubeConfig,
  namespace: string,
  secretName: string,
): Promise<TlsCertificates | undefined> {
  let secret: V1Secret;
  try {
    secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: secretName, namespace });
  } catch (err) {
    if (isKubeNotFound(err)) return undefined;
    throw err;
  }
  const text = (key: string) => {
    const value = secret.data?.[key];
    return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
  };
  const certPem = text('tls.crt');
  if (secret.type !== TLS_TYPE || !certPem || !text('tls.key')) {
    throw new InvalidInputError(
      `Secret ${namespace}/${secretName} is not a TLS Secret (type ${secret.type}, needs tls.crt and tls.key). ` +
        `Recreate it with: kubectl -n ${namespace} create secret tls ${secretName} --cert=cert.pem --key=key.pem`,
    );
  }
  const caPem = text('ca.crt');
  return { certPem, ...(caPem ? { caPem } : {}) };
}

/** What the CLI shows: the fingerprint of what to trust, the host name, and the CA itself when it is ours. */
export function tlsSummary(exposure: EndpointExposure, certs: TlsCertificates): EndpointTls {
  const leaf = new crypto.X509Certificate(certs.certPem);
  const ours = exposure.tls?.source === 'deployment-ca';
  return {
    source: ours ? 'deployment-ca' : 'user-certificate',
    hostname: certificateHostname(leaf),
    fingerprint: ours && certs.caPem ? certificateFingerprint(certs.caPem) : leaf.fingerprint256,
    ...(ours && certs.caPem ? { caPem: certs.caPem } : {}),
    notAfter: new Date(leaf.validTo).toISOString(),
    notBefore: new Date(leaf.validFrom).toISOString(),
  };
}

/**
 * How the smoke query trusts the endpoint: our CA alone for a per-deployment certificate; for the user's,
 * the certificates their Secret holds (pinned, as anchors even when not self-signed), nothing else.
 */
export function pinnedTls(exposure: EndpointExposure, certs: TlsCertificates): PinnedTls {
  const servername = certificateHostname(new crypto.X509Certificate(certs.certPem));
  if (exposure.tls?.source === 'deployment-ca' && certs.caPem) return { ca: certs.caPem, servername };
  return { ca: [certs.caPem, certs.certPem].filter(Boolean).join('\n'), servername, partialChain: true };
}

/** The certificate's first DNS name (SAN), which clients must connect by. */
function certificateHostname(cert: crypto.X509Certificate): string {
  const dns = (cert.subjectAltName ?? '')
    .split(', ')
    .find((name) => name.startsWith('DNS:'))
    ?.slice(4);
  if (!dns) {
    throw new InvalidInputError(
      `The TLS certificate (${cert.subject.replace(/\n/g, ', ')}) has no DNS name in its subjectAltName; ` +
        'clients check the name they connect by against it. Issue one for the endpoint’s host name.',
    );
  }
  return dns;
}

async function mint(scope: TlsSecretScope): Promise<Record<string, string>> {
  const minted = await mintDeploymentCertificate({
    dnsName: scope.exposure.fqdn!,
    deployment: scope.name,
    validityDays: scope.validityDays,
  });
  return { 'tls.crt': minted.certPem, 'tls.key': minted.keyPem, 'ca.crt': minted.caPem, 'ca.key': minted.caKeyPem };
}

/** Thrown when a deployment's certificate cannot be renewed: not ours, or made before the CA key was kept. */
export class CertificateRenewalError extends PermanentError {
  constructor(message: string) {
    super(message, FailureType.CertificateNotRenewable);
    this.name = 'CertificateRenewalError';
  }
}

/**
 * Replaces the per-deployment certificate (tls.crt, tls.key) with a new one for the same name, signed by the
 * same CA, valid `validityDays` from now; ca.crt is unchanged. A Secret changed meanwhile is a 409 (its
 * resourceVersion is checked): the caller retries. Returns the certificates now in the Secret.
 */
export async function renewTlsSecret(
  kc: KubeConfig,
  namespace: string,
  secretName: string,
  validityDays?: number,
): Promise<TlsCertificates> {
  const core = kc.makeApiClient(CoreV1Api);
  const secret = await core.readNamespacedSecret({ name: secretName, namespace });
  const text = (key: string) => {
    const value = secret.data?.[key];
    return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
  };
  const [caPem, caKeyPem, certPem] = [text('ca.crt'), text('ca.key'), text('tls.crt')];
  if (!caPem || !caKeyPem || !certPem) {
    throw new CertificateRenewalError(
      `Secret ${namespace}/${secretName} holds no per-deployment CA key, so its certificate cannot be renewed ` +
        '(it is your own certificate, or the deployment was made before inferctl kept the key). Renew it yourself, ' +
        'or deploy again.',
    );
  }
  const dnsName = certificateHostname(new crypto.X509Certificate(certPem));
  const renewed = await renewServerCertificate({ caPem, caKeyPem, dnsName, validityDays });
  const data = {
    ...secret.data,
    'tls.crt': Buffer.from(renewed.certPem).toString('base64'),
    'tls.key': Buffer.from(renewed.keyPem).toString('base64'),
  };
  await core.replaceNamespacedSecret({ name: secretName, namespace, body: { ...secret, data } });
  return { certPem: renewed.certPem, caPem };
}

/** The user's PEM files, checked before they go into the Secret: a pair that matches, with a DNS name. */
async function readUserFiles(certPath: string, keyPath: string): Promise<Record<string, string>> {
  assertInsideAllowedRoots('TLS certificate', certPath);
  assertInsideAllowedRoots('TLS key', keyPath);
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([fs.readFile(certPath, 'utf8'), fs.readFile(keyPath, 'utf8')]);
  } catch (err) {
    throw new InvalidInputError(
      `Cannot read the TLS files on the worker (${(err as Error).message}). Pass PEM files with --tls-cert/--tls-key.`,
    );
  }
  let leaf: crypto.X509Certificate;
  try {
    leaf = new crypto.X509Certificate(cert);
    if (!leaf.checkPrivateKey(crypto.createPrivateKey(key))) throw new Error('the key is not the certificate’s');
  } catch (err) {
    throw new InvalidInputError(
      `The TLS files ${certPath} and ${keyPath} are not a PEM certificate and its key (${(err as Error).message}).`,
    );
  }
  certificateHostname(leaf);
  return { 'tls.crt': cert, 'tls.key': key };
}
