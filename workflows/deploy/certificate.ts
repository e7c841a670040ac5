/**
 * The endpoint certificate's renewal while a deployment serves (aks, per-deployment certificate): a durable
 * timer to the renewal point (a third of the certificate's lifetime left: src/shared/certificate-renewal.ts),
 * then the `renewEndpointCertificate` activity (a new certificate under the same CA, the serving pods
 * restarted onto it, rolling), then the next timer, from the certificate that now serves. The status shows
 * when it expires, when it is renewed next and the last renewal. A scale or rollout in flight finishes first,
 * and none starts during a renewal. A continued run (continue-as-new) starts again from the status it carries.
 * The user's own certificate is never renewed: the status says so. Deterministic: workflow time only.
 */
import { ApplicationFailure, CancellationScope, condition, isCancellation, log, sleep } from '@temporalio/workflow';
import type { ActivityFailure } from '@temporalio/workflow';

import { renewalPoint } from '../../src/shared/certificate-renewal';
import type { CertificateStatus } from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import { FailureType } from '../../src/shared/failure-types';
import type { CertificateRenewal, EndpointTls } from '../../src/shared/target-types';
import type { DeployState } from './state';
import { activities } from './steps';

/** After a renewal that failed (its retries spent), the next try: soon, never later than this. */
const MAX_RETRY_PAUSE_MS = 3_600_000;

/** Starts the renewal loop beside the serving wait for an HTTPS endpoint; cancel the scope to stop it. */
export function startCertificateRenewal(d: DeployState): CancellationScope | undefined {
  const tls = d.status.tls;
  if (!tls) return undefined;
  if (tls.source !== 'deployment-ca') {
    d.status.certificate = { expiresAt: tls.notAfter, renewedBy: 'you', renewals: 0 };
    log.info('The endpoint serves your own certificate: inferctl does not renew it', { expiresAt: tls.notAfter });
    d.recorder.publish();
    return undefined;
  }
  const scope = new CancellationScope();
  scope
    .run(() => renewalLoop(d))
    .catch((err: unknown) => {
      if (isCancellation(err)) return;
      d.status.lastError = `certificate renewal stopped: ${rootMessage(err)}`;
      log.error('Certificate renewal stopped', { error: rootMessage(err) });
      d.recorder.publish();
    });
  return scope;
}

/** Timer → renew → timer, until cancelled (or the certificate cannot be renewed at all). */
async function renewalLoop(d: DeployState): Promise<void> {
  const renew = activities(
    {
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout: d.timings.heartbeatTimeoutSeconds * 1000,
      retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 10 },
    },
    'Renew the endpoint certificate and restart its pods onto it',
  );
  for (;;) {
    const c = track(d, d.status.tls!);
    const at = Date.parse(c.renewAt!);
    if (at > Date.now()) await sleep(at - Date.now());
    await condition(() => !d.changing);
    d.changing = true;
    let renewal: CertificateRenewal;
    try {
      renewal = await d.step('renew-certificate', 'serving', () => renew.renewEndpointCertificate(d.spec), describe);
    } catch (err) {
      if (isCancellation(err)) throw err;
      if (failureType(err) === FailureType.CertificateNotRenewable) {
        c.note = rootMessage(err);
        log.warn('The endpoint certificate cannot be renewed', { error: c.note });
        d.recorder.publish();
        return;
      }
      const pause = Math.min(MAX_RETRY_PAUSE_MS, Math.max(1000, (Date.parse(c.expiresAt) - Date.now()) / 10));
      log.warn('Certificate renewal failed; trying again', { error: rootMessage(err), inMs: pause });
      await sleep(pause);
      continue;
    } finally {
      d.changing = false;
    }
    if (renewal.tls) d.status.tls = renewal.tls;
    if (renewal.outcome === 'renewed') {
      c.renewals++;
      c.lastRenewedAt = new Date().toISOString();
      log.info('Endpoint certificate renewed', { expiresAt: renewal.tls?.notAfter });
    }
    if (renewal.outcome !== 'renewed' && renewal.outcome !== 'current') return;
    // A certificate shorter-lived than a step: never a tight loop.
    if (renewalPoint(d.status.tls!.notAfter, d.status.tls!.notBefore) <= Date.now()) await sleep(1000);
  }
}

/** The status's certificate record, brought in line with the certificate that serves. */
function track(d: DeployState, tls: EndpointTls): CertificateStatus {
  const c = (d.status.certificate ??= { expiresAt: tls.notAfter, renewedBy: 'inferctl', renewals: 0 });
  c.expiresAt = tls.notAfter;
  c.renewAt = new Date(renewalPoint(tls.notAfter, tls.notBefore)).toISOString();
  d.recorder.publish();
  return c;
}

function describe(r: CertificateRenewal): string {
  const restarted = r.restarted.length > 0 ? `, restarted ${r.restarted.join(', ')}` : '';
  return `${r.outcome}${r.tls ? `: expires ${r.tls.notAfter}` : ''}${restarted}`;
}

/** The ApplicationFailure type at the end of an activity failure's chain. */
function failureType(err: unknown): string | undefined {
  const cause = (err as ActivityFailure).cause;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}
