/**
 * What the deploy workflow's Update validators check, as pure functions: each returns the sentence a
 * refused request is answered with (what is wrong and what to do), or undefined to accept it.
 */
import { REPLICA_LIMITS } from '../../src/shared/deploy-types';
import type { DeployInput, DeployStage, DeployStatus } from '../../src/shared/deploy-types';

const ENDING: readonly DeployStage[] = ['tearing-down', 'done', 'failed', 'cancelled'];

export function isEnding(stage: DeployStage): boolean {
  return ENDING.includes(stage);
}

/**
 * `inferctl deploy` of a name that is already running attaches when it asks for what runs (the same model,
 * target, replicas, top-k, preprocessing and labels); otherwise it is told how to change what runs.
 */
export function attachRefusal(running: DeployInput, replicas: number, wanted: unknown): string | undefined {
  const w = wanted as Partial<DeployInput> | undefined;
  if (!w || typeof w !== 'object') return 'attach needs the deployment input to compare.';
  const differences: string[] = [];
  const differ = (what: string, asked: unknown, serving: unknown) => {
    if (JSON.stringify(asked) !== JSON.stringify(serving)) {
      differences.push(`${what} ${JSON.stringify(asked)} (it serves ${JSON.stringify(serving)})`);
    }
  };
  differ('model', w.modelPath, running.modelPath);
  differ('target', w.target, running.target);
  // An autoscaled deployment's count moves with the load: its bounds and target are what was asked.
  if (running.autoscale) differ('autoscaling', w.autoscale ?? null, running.autoscale);
  else differ('replicas', w.replicas, replicas);
  differ('top-k', w.topK ?? 5, running.topK ?? 5);
  differ('preprocessing', w.preprocess ?? null, running.preprocess ?? null);
  differ('labels', w.labelsPath ?? null, running.labelsPath ?? null);
  differ('scoring script', w.script ?? null, running.script ?? null);
  if (differences.length === 0) return undefined;
  const hints = [
    ...(differences.some((d) => d.startsWith('replicas'))
      ? [`inferctl scale ${running.name} --replicas ${w.replicas}`]
      : []),
    ...(differences.some((d) => d.startsWith('autoscaling'))
      ? [`inferctl scale ${running.name} --min-replicas A --max-replicas B --target-concurrency C`]
      : []),
    `to serve another model under this name: inferctl rollout ${running.name} --model <new.onnx>, or tear it down first (inferctl teardown ${running.name}) and deploy again`,
  ];
  return `Deployment "${running.name}" is already running with a different spec: ${differences.join('; ')}. Use ${hints.join('; ')}.`;
}

export function scaleRefusal(
  running: DeployInput,
  stage: DeployStage,
  changing: boolean,
  replicas: unknown,
): string | undefined {
  const limit = REPLICA_LIMITS[running.target];
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > limit) {
    return `replicas must be a whole number from 1 to ${limit} for target "${running.target}" (got ${String(replicas)}).`;
  }
  if (stage !== 'serving') {
    return `Deployment "${running.name}" is ${stage}; scale it once it serves (inferctl status ${running.name}).`;
  }
  if (changing) {
    return `Deployment "${running.name}" is already changing (a scale or a rollout is in flight); try again when it has finished.`;
  }
  return undefined;
}

/** A deployment that scales to zero is scaled within its bounds, and only while it is warm. */
export function scaleToZeroRefusal(running: DeployInput, status: DeployStatus, replicas: unknown): string | undefined {
  const z = running.scaleToZero;
  if (!z) return undefined;
  if (typeof replicas === 'number' && replicas > z.maxReplicas) {
    return `Deployment "${running.name}" runs at most ${z.maxReplicas} replica(s) (--max-replicas); got ${replicas}.`;
  }
  return coldRefusal(running, status);
}

/** A deployment at zero replicas (or waking) is changed once it is warm: it wakes on its next request. */
export function coldRefusal(running: DeployInput, status: DeployStatus): string | undefined {
  const state = status.scaleToZero?.state;
  if (state === undefined || state === 'warm') return undefined;
  return `Deployment "${running.name}" is ${state} (no replica serves); it wakes on its next request: change it then.`;
}
