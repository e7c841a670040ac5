/**
 * What a client can send a deployment and ask it: the `status` query, the Updates (each answers with its
 * result; see updates.ts for their handlers), and the two signals older clients still send.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

import type { AutoscaleRequest, AutoscaleResult } from '../../src/shared/autoscale-types';
import { DEPLOY_UPDATES } from '../../src/shared/deploy-types';
import type {
  DeployInput,
  DeployStatus,
  ExtendResult,
  ExtendTtlRequest,
  RolloutRequest,
  RolloutResult,
  ScaleRequest,
  ScaleResult,
  TeardownRequest,
  TeardownResult,
} from '../../src/shared/deploy-types';

export const statusQuery = defineQuery<DeployStatus>('status');

export const extendUpdate = defineUpdate<ExtendResult, [ExtendTtlRequest]>(DEPLOY_UPDATES.extend);
export const teardownUpdate = defineUpdate<TeardownResult, [TeardownRequest]>(DEPLOY_UPDATES.teardown);
export const scaleUpdate = defineUpdate<ScaleResult, [ScaleRequest]>(DEPLOY_UPDATES.scale);
export const attachUpdate = defineUpdate<DeployStatus, [DeployInput]>(DEPLOY_UPDATES.attach);
export const rolloutUpdate = defineUpdate<RolloutResult, [RolloutRequest]>(DEPLOY_UPDATES.rollout);
export const autoscaleUpdate = defineUpdate<AutoscaleResult, [AutoscaleRequest]>(DEPLOY_UPDATES.autoscale);

/** @deprecated Use `extendUpdate`: a signal with a bad value is dropped silently. Kept for in-flight clients. */
export const extendTtlSignal = defineSignal<[ExtendTtlRequest]>('extendTtl');
/** @deprecated Use `teardownUpdate`. Kept for in-flight clients. */
export const teardownSignal = defineSignal<[TeardownRequest]>('teardown');
