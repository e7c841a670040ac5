/**
 * The deploy workflow's message handlers. Each Update's validator refuses a bad request before it enters
 * history (the caller gets the reason); each handler answers with its result.
 *   extend       serve at least N more seconds: the new expiry
 *   teardownNow  end now: what teardown removed, once it has run
 *   scale        N replicas: the replicas ready (within the target's limits and GPU capacity; scale.ts)
 *   attach       `inferctl deploy` of a running name: the status when the spec is the same, refused otherwise
 *   rollout      a new model version, canary first (rollout.ts): the outcome, or a failure once rolled back
 *   autoscale    new bounds for an autoscaled deployment (autoscale.ts): the bounds and the replicas
 */
import { ApplicationFailure, condition, setHandler } from '@temporalio/workflow';

import type { ExtendTtlRequest, ScaleRequest } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import { attachRefusal, coldRefusal, isEnding, scaleRefusal, scaleToZeroRefusal } from './checks';
import { boundsRefusal, manualScaleRefusal, setBounds } from './autoscale';
import {
  attachUpdate,
  autoscaleUpdate,
  extendTtlSignal,
  extendUpdate,
  rolloutUpdate,
  scaleUpdate,
  statusQuery,
  teardownSignal,
  teardownUpdate,
} from './messages';
import { rollout, rolloutRefusal } from './rollout';
import { scale } from './scale';
import type { DeployState } from './state';

function refuse(message: string): never {
  throw ApplicationFailure.create({ type: FailureType.InvalidInput, message, nonRetryable: true });
}

/** Refuses a change to a deployment that is being torn down or has ended. */
function refuseIfEnding(d: DeployState, what: string): void {
  if (isEnding(d.status.stage) || d.serving.teardownRequested) {
    refuse(
      `Deployment "${d.input.name}" is ${d.serving.teardownRequested ? 'being torn down' : d.status.stage}; ${what}.`,
    );
  }
}

export function setMessageHandlers(d: DeployState): void {
  setHandler(statusQuery, () => d.status);
  setHandler(extendTtlSignal, ({ seconds }) => void d.serving.extend(seconds));
  setHandler(teardownSignal, ({ reason }) => d.requestTeardown(reason));

  setHandler(extendUpdate, ({ seconds }) => d.serving.extend(seconds), {
    validator: (request) => {
      refuseIfEnding(d, 'its TTL can no longer be extended');
      try {
        d.serving.checkExtend((request as Partial<ExtendTtlRequest> | undefined)?.seconds);
      } catch (err) {
        refuse((err as Error).message);
      }
    },
  });

  setHandler(
    teardownUpdate,
    async ({ reason }) => {
      if (!d.serving.teardownRequested) d.requestTeardown(reason);
      await condition(() => d.ended);
      return { removed: d.status.teardownRemoved ?? [] };
    },
    {
      validator: (request) => {
        if (request !== undefined && (typeof request !== 'object' || request === null)) {
          refuse('teardownNow takes { reason? }.');
        }
        if (d.ended) refuse(`Deployment "${d.input.name}" has already been torn down.`);
      },
    },
  );

  setHandler(attachUpdate, () => d.status, {
    validator: (wanted) => {
      refuseIfEnding(d, 'deploy again once it has ended');
      const refusal = attachRefusal(d.input, d.spec.replicas, wanted);
      if (refusal) refuse(refusal);
    },
  });

  setHandler(scaleUpdate, ({ replicas }) => scale(d, replicas), {
    validator: (request) => {
      refuseIfEnding(d, 'it can no longer be scaled');
      const replicas = (request as Partial<ScaleRequest> | undefined)?.replicas;
      const refusal =
        scaleRefusal(d.input, d.status.stage, d.changing, replicas) ??
        scaleToZeroRefusal(d.input, d.status, replicas) ??
        manualScaleRefusal(d);
      if (refusal) refuse(refusal);
    },
  });

  setHandler(autoscaleUpdate, (request) => setBounds(d, request), {
    validator: (request) => {
      refuseIfEnding(d, 'its bounds can no longer be set');
      const refusal = boundsRefusal(d, request);
      if (refusal) refuse(refusal);
    },
  });

  setHandler(rolloutUpdate, (request) => rollout(d, request), {
    validator: (request) => {
      refuseIfEnding(d, 'it can no longer be changed');
      const refusal = rolloutRefusal(d, request) ?? coldRefusal(d.input, d.status);
      if (refusal) refuse(refusal);
    },
  });
}
