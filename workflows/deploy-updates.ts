/**
 * The deploy workflow's Updates and their handlers. Each validator refuses a bad request before it enters
 * history (the caller gets the reason); each handler answers with its result.
 *   extend       serve at least N more seconds: the new expiry
 *   teardownNow  end now: what teardown removed, once it has run
 *   scale        N replicas: the replicas ready (within the target's limits and GPU capacity)
 *   attach       `inferctl deploy` of a running name: the status when the spec is the same, refused otherwise
 *   rollout      a new model version, canary first (rollout.ts): the outcome, or a failure once rolled back
 */
import { ApplicationFailure, condition, defineUpdate, log, setHandler } from '@temporalio/workflow';
import type { CancellationScope } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';

import type { ResolvedDeployTimings } from '../src/shared/deploy-timings';
import { DEPLOY_UPDATES } from '../src/shared/deploy-types';
import type {
  DeployInput,
  DeployStatus,
  DeploymentSpec,
  ExtendResult,
  ExtendTtlRequest,
  RolloutRequest,
  RolloutResult,
  ScaleRequest,
  ScaleResult,
  TeardownRequest,
  TeardownResult,
} from '../src/shared/deploy-types';
import { rootMessage } from '../src/shared/failure-message';
import { FailureType } from '../src/shared/failure-types';
import type { ImageResult } from '../src/shared/target-types';
import { attachRefusal, isEnding, scaleRefusal } from './deploy-checks';
import type { DeployStatusRecorder } from './deploy-status';
import { activities } from './deploy-steps';
import { rollout, rolloutRefusal } from './rollout';
import type { ServingPeriod } from './serving-period';

export const extendUpdate = defineUpdate<ExtendResult, [ExtendTtlRequest]>(DEPLOY_UPDATES.extend);
export const teardownUpdate = defineUpdate<TeardownResult, [TeardownRequest]>(DEPLOY_UPDATES.teardown);
export const scaleUpdate = defineUpdate<ScaleResult, [ScaleRequest]>(DEPLOY_UPDATES.scale);
export const attachUpdate = defineUpdate<DeployStatus, [DeployInput]>(DEPLOY_UPDATES.attach);
export const rolloutUpdate = defineUpdate<RolloutResult, [RolloutRequest]>(DEPLOY_UPDATES.rollout);

/** What the Update handlers share with the workflow body. */
export interface LiveState {
  /** The image the replicas run, once built: what a scale starts more of. */
  image?: ImageResult;
  /** A scale or rollout is in flight: another is refused, teardown waits for it. */
  changing: boolean;
  /** The scope of a rollout in flight: a teardown request cancels it (it rolls back first). */
  change?: CancellationScope;
  /** Teardown has run: a teardown Update in flight can answer. */
  ended: boolean;
}

/** Everything the handlers read and steer. */
export interface UpdateContext {
  input: DeployInput;
  spec: DeploymentSpec;
  status: DeployStatus;
  serving: ServingPeriod;
  live: LiveState;
  requestTeardown: (reason: string | undefined) => void;
  step: DeployStatusRecorder['step'];
  quick: ActivityOptions;
  waiting: ActivityOptions;
  infra: ActivityOptions;
  cleanup: ActivityOptions;
  timings: ResolvedDeployTimings;
}

export function setUpdateHandlers(ctx: UpdateContext): void {
  const { input, spec, status, serving, live } = ctx;
  const refuse = (message: string) => {
    throw ApplicationFailure.create({ type: FailureType.InvalidInput, message, nonRetryable: true });
  };
  const refuseIfEnding = (what: string) => {
    if (isEnding(status.stage) || serving.teardownRequested) {
      refuse(`Deployment "${input.name}" is ${serving.teardownRequested ? 'being torn down' : status.stage}; ${what}.`);
    }
  };

  setHandler(extendUpdate, ({ seconds }) => serving.extend(seconds), {
    validator: (request) => {
      refuseIfEnding('its TTL can no longer be extended');
      try {
        serving.checkExtend((request as Partial<ExtendTtlRequest> | undefined)?.seconds);
      } catch (err) {
        refuse((err as Error).message);
      }
    },
  });

  setHandler(
    teardownUpdate,
    async ({ reason }) => {
      if (!serving.teardownRequested) ctx.requestTeardown(reason);
      await condition(() => live.ended);
      return { removed: status.teardownRemoved ?? [] };
    },
    {
      validator: (request) => {
        if (request !== undefined && (typeof request !== 'object' || request === null)) {
          refuse('teardownNow takes { reason? }.');
        }
        if (live.ended) refuse(`Deployment "${input.name}" has already been torn down.`);
      },
    },
  );

  setHandler(attachUpdate, () => status, {
    validator: (wanted) => {
      refuseIfEnding('deploy again once it has ended');
      const refusal = attachRefusal(input, spec.replicas, wanted);
      if (refusal) refuse(refusal);
    },
  });

  setHandler(
    scaleUpdate,
    async ({ replicas }) => {
      const previousReplicas = spec.replicas;
      live.changing = true;
      try {
        return await ctx.step(
          'scale',
          'serving',
          () => scaleTo(replicas),
          (r) => `${previousReplicas} → ${r.replicas}`,
        );
      } catch (err) {
        throw ApplicationFailure.create({
          type: FailureType.DeploymentFailed,
          message: `Scaling "${input.name}" to ${replicas} replica(s) failed (${rootMessage(err)}); it serves ${spec.replicas} replica(s).`,
          nonRetryable: true,
          cause: err instanceof Error ? err : undefined,
        });
      } finally {
        live.changing = false;
      }
    },
    {
      validator: (request) => {
        refuseIfEnding('it can no longer be scaled');
        const refusal = scaleRefusal(input, status.stage, live.changing, (request as Partial<ScaleRequest>)?.replicas);
        if (refusal) refuse(refusal);
      },
    },
  );

  setHandler(rolloutUpdate, (request) => rollout(ctx, request), {
    validator: (request) => {
      refuseIfEnding('it can no longer be changed');
      const refusal = rolloutRefusal(ctx, request);
      if (refusal) refuse(refusal);
    },
  });

  async function scaleTo(replicas: number): Promise<ScaleResult> {
    const previousReplicas = spec.replicas;
    const image = live.image!;
    const apply = async (count: number) => {
      const wanted = { ...spec, replicas: count };
      await activities(ctx.infra, `Scale to ${count} replica(s)`).deploy(wanted, image);
      return activities(ctx.waiting, 'Wait until every replica is ready').waitForDeployment(wanted, {
        timeoutSeconds: ctx.timings.readyTimeoutSeconds,
        pollIntervalMs: ctx.timings.readinessPollSeconds * 1000,
      });
    };
    let ready;
    try {
      ready = await apply(replicas);
    } catch (err) {
      // Back to what served before; the caller learns why the scale failed.
      await apply(previousReplicas).catch((again: unknown) =>
        log.error('Scale rollback failed', { error: rootMessage(again) }),
      );
      throw err;
    }
    spec.replicas = replicas;
    status.replicas = replicas;
    status.replicaUrls = ready.replicaUrls;
    if (ready.endpoint) status.endpoint = ready.endpoint;
    log.info('Scaled', { from: previousReplicas, to: replicas });
    return {
      replicas,
      previousReplicas,
      replicaUrls: ready.replicaUrls,
      ...(ready.endpoint ? { endpoint: ready.endpoint } : {}),
    };
  }
}
