/**
 * The endpoint certificate's renewal while a deployment serves (the deploy workflow's renewal timer,
 * workflows/deploy/certificate.ts): the target renews a per-deployment certificate that is due and moves the
 * serving pods onto it. Idempotent: a retry after a renewal finds the certificate current and only checks that
 * the pods run it. Heartbeats its progress; no key ever leaves the target.
 */
import { ApplicationFailure, log } from '@temporalio/activity';

import { FailureType } from '../src/shared/failure-types';
import type { CertificateRenewal, DeploymentSpec, TargetKind } from '../src/shared/target-types';
import type { Target } from '../src/targets/target';
import { failingPermanently } from './failures';
import { targetStep } from './heartbeat';

export interface CertificateActivityDeps {
  targets: Partial<Record<TargetKind, Target>>;
}

export function createCertificateActivities({ targets }: CertificateActivityDeps) {
  return {
    /** Renews the endpoint's certificate when a third of its life is left, then restarts its pods onto it. */
    async renewEndpointCertificate(spec: DeploymentSpec): Promise<CertificateRenewal> {
      const target = targets[spec.target];
      if (!target) {
        throw ApplicationFailure.nonRetryable(
          `This worker cannot reach target "${spec.target}"; start a worker configured for it.`,
          FailureType.TargetUnavailable,
        );
      }
      if (!target.renewCertificate) return { outcome: 'none', restarted: [] };
      const renewal = await targetStep((signal, progress) =>
        failingPermanently(() => target.renewCertificate!(spec, signal, progress)),
      );
      log.info('Endpoint certificate checked', {
        name: spec.name,
        outcome: renewal.outcome,
        notAfter: renewal.tls?.notAfter,
        restarted: renewal.restarted.join(', '),
      });
      return renewal;
    },
  };
}
