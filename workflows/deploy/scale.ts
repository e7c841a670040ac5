/**
 * The `scale` Update's handler: the replicas redeployed at the new count and waited for; on a failure, back
 * to the count that served before, and the caller learns why.
 */
import { ApplicationFailure, log } from '@temporalio/workflow';

import type { ScaleResult } from '../../src/shared/deploy-types';
import { rootMessage } from '../../src/shared/failure-message';
import { FailureType } from '../../src/shared/failure-types';
import type { DeployState } from './state';

export async function scale(d: DeployState, replicas: number): Promise<ScaleResult> {
  const previousReplicas = d.spec.replicas;
  d.changing = true;
  try {
    return await d.step(
      'scale',
      'serving',
      () => scaleTo(d, replicas),
      (r) => `${previousReplicas} → ${r.replicas}`,
    );
  } catch (err) {
    throw ApplicationFailure.create({
      type: FailureType.DeploymentFailed,
      message: `Scaling "${d.input.name}" to ${replicas} replica(s) failed (${rootMessage(err)}); it serves ${d.spec.replicas} replica(s).`,
      nonRetryable: true,
      cause: err instanceof Error ? err : undefined,
    });
  } finally {
    d.changing = false;
  }
}

/**
 * Redeploys at `replicas` and waits for them; on a failure, back to the count before, then throws. `why`
 * (autoscale's reason) goes into the scale activity's summary, which the Web UI shows.
 */
export async function scaleTo(d: DeployState, replicas: number, why?: string): Promise<ScaleResult> {
  const { spec, status } = d;
  const previousReplicas = spec.replicas;
  const image = d.image!;
  const apply = async (count: number) => {
    const wanted = { ...spec, replicas: count };
    const summary = `Scale to ${count} replica(s)${why && count === replicas ? `: ${why}` : ''}`;
    const deployed = await d.activities('infra', summary).deploy(wanted, image);
    if (deployed.gpuNodes !== undefined) status.gpuNodes = deployed.gpuNodes; // the ledger bills these
    return d.activities('waiting', 'Wait until every replica is ready').waitForDeployment(wanted, d.readiness());
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
