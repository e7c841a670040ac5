/**
 * The deploy workflow's one state object: what was asked, what runs, how long it serves, and what is in
 * flight. The workflow body and every handler (updates.ts, scale.ts, rollout.ts) read and steer this one
 * object, which imports none of them: deploy.ts → updates.ts → scale.ts, rollout.ts → state.ts. A continued
 * run builds it from the carried state (carry.ts).
 */
import { CancellationScope, log } from '@temporalio/workflow';

import type { ResolvedDeployTimings } from '../../src/shared/deploy-timings';
import type { DeployInput, DeployStage, DeployStatus, DeploymentSpec } from '../../src/shared/deploy-types';
import type { ImageResult } from '../../src/shared/target-types';
import type { DeployCarryOver } from './carry';
import { DeployStatusRecorder } from './status';
import { ServingPeriod } from './serving-period';
import { activities, stepOptions } from './steps';
import type { DeployActivities, StepKind, StepOptions } from './steps';

export class DeployState {
  /** What was asked; a rollout updates the model, preprocessing and labels. */
  readonly input: DeployInput;
  /** What runs: the target's view of the deployment (a scale changes its replicas, a rollout its model). */
  readonly spec: DeploymentSpec;
  readonly timings: ResolvedDeployTimings;
  readonly options: StepOptions;
  /** The status the `status` query returns, with one record per step. */
  readonly recorder: DeployStatusRecorder;
  /** How long it serves: TTL, idle TTL, teardown requests. */
  readonly serving: ServingPeriod;
  /** The steps before serving: a teardown request cancels them. */
  readonly main = new CancellationScope();

  /** The image the replicas run, once built: what a scale starts more of. */
  image?: ImageResult;
  /** A scale or rollout is in flight: another is refused, teardown waits for it. */
  changing = false;
  /** The scope of a rollout in flight: a teardown request cancels it (it rolls back first). */
  change?: CancellationScope;
  /** Provisioning has started: teardown must run. */
  provisioningStarted = false;
  /** Counted as served (the metric): counted as torn down at the end. */
  counted = false;
  /** Teardown has run: a teardown Update in flight can answer. */
  ended = false;
  /** Runs of this deployment before this one (continue-as-new). */
  readonly continuedRuns: number;

  /** A new deployment, or, with `carried`, one that continues serving from its previous run. */
  constructor(input: DeployInput, spec: DeploymentSpec, timings: ResolvedDeployTimings, carried?: DeployCarryOver) {
    this.input = input;
    this.spec = carried?.spec ?? spec;
    this.timings = timings;
    this.options = stepOptions(timings);
    this.recorder = new DeployStatusRecorder(input, carried?.status);
    this.serving = new ServingPeriod(input.ttlSeconds, this.recorder, input.idleTtlSeconds, carried?.serving);
    this.continuedRuns = carried?.continuedRuns ?? 0;
    if (carried) {
      this.image = carried.image;
      this.provisioningStarted = true;
      this.counted = carried.counted;
    }
  }

  get status(): DeployStatus {
    return this.recorder.status;
  }

  /** The activities with one kind of step's timeouts and retries, and the summary the Web UI shows. */
  activities(kind: StepKind, summary: string): DeployActivities {
    return activities(this.options[kind], summary);
  }

  /** Runs one step in `stage`, recorded in the status (DeployStatusRecorder.step). */
  step<T>(name: string, stage: DeployStage, fn: () => Promise<T>, detail?: (r: T) => string): Promise<T> {
    return this.recorder.step(name, stage, fn, detail);
  }

  /** How long the replicas may take to become ready, and how often to look. */
  readiness(): { timeoutSeconds: number; pollIntervalMs: number } {
    return {
      timeoutSeconds: this.timings.readyTimeoutSeconds,
      pollIntervalMs: this.timings.readinessPollSeconds * 1000,
    };
  }

  /** A teardown request (signal or Update): stops the step in flight, or ends the serving wait. */
  requestTeardown(reason: string | undefined): void {
    this.serving.teardownRequested = true;
    log.info('Teardown requested', { reason });
    // Before serving, a teardown request stops the step in flight; while serving it ends the wait.
    if (this.status.stage !== 'serving') this.main.cancel();
    this.change?.cancel(); // a rollout in flight rolls back, then teardown runs
  }
}
