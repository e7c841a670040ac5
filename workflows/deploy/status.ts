/**
 * The deploy workflow's record of itself: the status its `status` query returns, the current details the
 * Web UI shows, the Stage search attribute, and one StepRecord per step with its timing and outcome.
 * Deterministic: workflow time only.
 */
import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

import { rootMessage } from '../../src/shared/failure-message';
import { InferctlKind, Stage } from '../../src/shared/search-attributes';
import type { DeployInput, DeployStage, DeployStatus, StepRecord } from '../../src/shared/deploy-types';

export class DeployStatusRecorder {
  readonly status: DeployStatus;
  // Upsert only what the workflow was started with: a cluster without inferctl's search attributes
  // registered would otherwise fail every workflow task.
  private readonly indexed = workflowInfo().typedSearchAttributes.get(InferctlKind) !== undefined;
  /** Runs before each publish: the cost ledger is brought up to date (budget.ts). */
  onPublish?: () => void;

  /** `carried`: the status the previous run ended with, when this run continues it (continue-as-new). */
  constructor(input: DeployInput, carried?: DeployStatus) {
    this.status = carried ?? {
      name: input.name,
      target: input.target,
      stage: 'validating',
      replicas: input.replicas,
      steps: [],
    };
    this.publish();
  }

  setStage(stage: DeployStage): void {
    this.status.stage = stage;
    this.publish();
    if (this.indexed) upsertSearchAttributes([{ key: Stage, value: stage }]);
  }

  /** Shows the latest status in the Web UI's current details. */
  publish(): void {
    this.onPublish?.();
    setCurrentDetails(describe(this.status));
  }

  /** Runs one step in `stage`, recording when it started, how long it took, and how it ended. */
  async step<T>(name: string, stage: DeployStage, fn: () => Promise<T>, detail?: (r: T) => string): Promise<T> {
    this.setStage(stage);
    const startedAt = Date.now();
    const record: StepRecord = { step: name, startedAt: new Date(startedAt).toISOString() };
    this.status.steps.push(record);
    try {
      const result = await fn();
      record.ok = true;
      if (detail) record.detail = detail(result);
      return result;
    } catch (err) {
      record.ok = false;
      this.status.lastError = `${name}: ${rootMessage(err)}`;
      throw err;
    } finally {
      record.durationMs = Date.now() - startedAt;
      this.publish();
    }
  }

  /** The sentence a failed deployment ends with: what teardown did. */
  teardownSummary(ran: boolean): string {
    if (!ran) return 'Nothing was created.';
    return `Teardown completed (${this.status.teardownRemoved?.length ?? 0} resource(s) removed).`;
  }
}

/** The workflow's current details, shown by the Temporal Web UI. */
function describe(status: DeployStatus): string {
  const lines = [`- **Stage:** ${status.stage}`, `- **Target:** ${status.target}, ${status.replicas} replica(s)`];
  if (status.endpoint) lines.push(`- **Endpoint:** ${status.endpoint}`);
  if (status.smoke)
    lines.push(
      `- **Smoke answer:** ${status.smoke.predictions[0]?.label} (${status.smoke.predictions[0]?.score.toFixed(3)})`,
    );
  if (status.endsBecause) lines.push(`- **Ends:** ${status.endsBecause}`);
  else if (status.expiresAt) lines.push(`- **Serving until:** ${status.expiresAt}`);
  const cert = status.certificate;
  if (cert) {
    const next = cert.renewedBy === 'you' ? 'your own: not renewed by inferctl' : `renewed at ${cert.renewAt ?? '?'}`;
    lines.push(`- **Certificate:** expires ${cert.expiresAt}, ${cert.note ?? next} (${cert.renewals} renewal(s))`);
  }
  if (status.cost) {
    const c = status.cost;
    const budget = c.budget ? `; budget ${c.budget.budget} (${c.budget.action ?? c.budget.state})` : '';
    lines.push(`- **Cost:** ${c.currency} ${c.total.toFixed(2)} at ${c.at}, ${c.hourly}/h now${budget}`);
  }
  const decision = status.autoscale?.decisions.at(-1);
  if (decision) lines.push(`- **Autoscale (${decision.at}):** ${decision.reason}`);
  if (status.lastError) lines.push(`- **Last error:** ${status.lastError}`);
  return lines.join('\n');
}
