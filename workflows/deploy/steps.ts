/**
 * The deploy workflow's activities, grouped by the kind of step (cloud provisioning is slow, smoke queries
 * are fast, teardown never gives up), each call with the summary the Web UI shows for it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';

import type { createCertificateActivities } from '../../activities/certificate';
import type { createDeployActivities } from '../../activities/deploy';
import type { createGatewayWatchActivities } from '../../activities/gateway-watch';
import type { createRolloutActivities } from '../../activities/rollout';
import type { ResolvedDeployTimings } from '../../src/shared/deploy-timings';

export type DeployActivities = ReturnType<typeof createDeployActivities> &
  ReturnType<typeof createRolloutActivities> &
  ReturnType<typeof createCertificateActivities> &
  ReturnType<typeof createGatewayWatchActivities>;
export type StepOptions = ReturnType<typeof stepOptions>;
export type StepKind = keyof StepOptions;

/**
 * Timeouts and retries per kind of step: cloud provisioning is slow, smoke queries are fast, teardown
 * never gives up.
 */
export function stepOptions(timings: ResolvedDeployTimings) {
  const heartbeatTimeout = timings.heartbeatTimeoutSeconds * 1000; // ms
  return {
    quick: { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } },
    infra: {
      startToCloseTimeout: '45 minutes',
      heartbeatTimeout,
      retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5 },
    },
    waiting: {
      startToCloseTimeout: (timings.readyTimeoutSeconds + 60) * 1000,
      heartbeatTimeout,
      retry: { initialInterval: '1s', maximumAttempts: 5 },
    },
    cleanup: {
      startToCloseTimeout: '45 minutes',
      heartbeatTimeout,
      retry: { initialInterval: '1s', maximumInterval: '1 minute' }, // unlimited attempts
    },
  } satisfies Record<string, ActivityOptions>;
}

/** The activities with one group's options and a summary the Web UI shows for the step. */
export function activities(options: ActivityOptions, summary: string): DeployActivities {
  return proxyActivities<DeployActivities>({ ...options, summary });
}
