/**
 * Renewing a serving endpoint's per-deployment certificate: when the certificate in its TLS Secret has a third
 * of its life left (src/shared/certificate-renewal.ts), a new key and certificate for the same name, signed
 * by the same CA (tls-secret.ts `renewTlsSecret`), then the pods that terminate TLS moved onto it by a rolling
 * restart: the scoring Deployment, or the front when the deployment scales to zero (its scoring pods serve
 * plain HTTP). The restart is a pod template annotation holding the certificate's fingerprint, so a retry
 * that finds the annotation already there only waits for the rollout. No request is dropped when a new pod
 * can start before an old one stops: the front (no GPU, the default strategy surges one pod), and the scoring
 * Deployment when its GPU pool has a spare GPU (the restart surges one pod, maxUnavailable 0, then the
 * strategy goes back to SCORING_ROLLING_UPDATE). With every GPU in use the scoring pods are replaced one at a
 * time (maxUnavailable 1): the others serve meanwhile, and a single replica leaves a gap of a pod start.
 * The user's own certificate (--tls-cert, --tls-secret) is never touched.
 */
import crypto from 'node:crypto';

import { AppsV1Api, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';

import { renewalDue } from '../../shared/certificate-renewal';
import type { CertificateRenewal } from '../../shared/target-types';
import type { StepProgress } from '../target';
import { frontName } from './front-manifests';
import { SCORING_ROLLING_UPDATE } from './kubernetes-manifests';
import type { EndpointExposure } from './tls-exposure';
import { readTlsSecret, renewTlsSecret, tlsSummary } from './tls-secret';

/** The pod template annotation that names the certificate the pods were started with. */
export const CERTIFICATE_ANNOTATION = 'inferctl.dev/tls-certificate-sha256';
const ROLLOUT_POLL_MS = 1000;

export interface RenewalScope {
  namespace: string;
  name: string;
  exposure: EndpointExposure;
  /** The deployment scales to zero: the front terminates TLS. */
  hold: boolean;
  /** The GPU pool has a GPU no replica uses: the scoring pods' restart may surge one pod. */
  spareGpu: boolean;
  /** The new server certificate's lifetime (days; DEFAULT_VALIDITY_DAYS when left out). */
  validityDays?: number;
}

export async function renewEndpointCertificate(
  kc: KubeConfig,
  scope: RenewalScope,
  signal?: AbortSignal,
  progress: StepProgress = () => undefined,
): Promise<CertificateRenewal> {
  const tls = scope.exposure.tls;
  if (!tls) return { outcome: 'none', restarted: [] };
  let certs = await readTlsSecret(kc, scope.namespace, tls.secretName);
  if (!certs) throw new Error(`TLS Secret ${scope.namespace}/${tls.secretName} is missing`);
  if (tls.source !== 'deployment-ca') {
    progress(`the endpoint serves your own certificate (${tls.source}): not renewed by inferctl`);
    return { outcome: 'user-certificate', tls: tlsSummary(scope.exposure, certs), restarted: [] };
  }
  const served = tlsSummary(scope.exposure, certs);
  const due = renewalDue(Date.now(), served.notAfter, served.notBefore);
  if (due) {
    progress(`renewing the certificate of ${scope.name} (expires ${served.notAfter})`);
    certs = await renewTlsSecret(kc, scope.namespace, tls.secretName, scope.validityDays);
  }
  const fingerprint = new crypto.X509Certificate(certs.certPem).fingerprint256;
  const deployment = scope.hold ? frontName(scope.name) : scope.name;
  const surge = !scope.hold && scope.spareGpu;
  const restarted = (await restartOnto(kc, scope.namespace, deployment, fingerprint, surge)) ? [deployment] : [];
  await waitForRollout(kc, scope.namespace, deployment, signal, progress);
  if (surge) await patchDeployment(kc, scope.namespace, deployment, { strategy: scoringStrategy() });
  return { outcome: due ? 'renewed' : 'current', tls: tlsSummary(scope.exposure, certs), restarted };
}

/**
 * Sets the template annotation to `fingerprint` (a rolling restart), surging one pod with `surge`; false when
 * the annotation already was set.
 */
async function restartOnto(
  kc: KubeConfig,
  namespace: string,
  name: string,
  fingerprint: string,
  surge: boolean,
): Promise<boolean> {
  const current = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace });
  if (current.spec?.template.metadata?.annotations?.[CERTIFICATE_ANNOTATION] === fingerprint) return false;
  await patchDeployment(kc, namespace, name, {
    ...(surge ? { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } } : {}),
    template: { metadata: { annotations: { [CERTIFICATE_ANNOTATION]: fingerprint } } },
  });
  return true;
}

function scoringStrategy() {
  return { type: 'RollingUpdate', rollingUpdate: { ...SCORING_ROLLING_UPDATE } };
}

/** A JSON merge patch of the Deployment's spec. */
async function patchDeployment(kc: KubeConfig, namespace: string, name: string, spec: object): Promise<void> {
  const patch = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace }, spec } as KubernetesObject;
  await KubernetesObjectApi.makeApiClient(kc).patch(
    patch,
    undefined,
    undefined,
    undefined,
    undefined,
    PatchStrategy.MergePatch,
  );
}

/** Until every replica of the Deployment runs its latest template and is available (`kubectl rollout status`). */
async function waitForRollout(
  kc: KubeConfig,
  namespace: string,
  name: string,
  signal: AbortSignal | undefined,
  progress: StepProgress,
): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  for (;;) {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    const want = d.spec?.replicas ?? 0;
    const s = d.status ?? {};
    const seen = (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1);
    const updated = s.updatedReplicas ?? 0;
    if (seen && updated >= want && (s.replicas ?? 0) <= updated && (s.availableReplicas ?? 0) >= want) return;
    progress(`restarting ${namespace}/${name} onto the new certificate: ${updated}/${want} replicas updated`);
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    await new Promise((resolve) => setTimeout(resolve, ROLLOUT_POLL_MS));
  }
}
