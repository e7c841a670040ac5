/**
 * Workflow inputs with sensible test defaults: a test names only what it is about. The defaults are
 * small and fast (one local replica, a tiny batch); `workflowSuite` fills the paths in for its file.
 */
import type { BatchScoreInput } from '../../src/shared/batch-types';
import type { DeployInput } from '../../src/shared/deploy-types';
import { uniqueName } from './workers';

/** A one-replica local deployment under a fresh name, serving for a minute. */
export function deployInput(overrides: Partial<DeployInput> & Pick<DeployInput, 'modelPath'>): DeployInput {
  return { name: uniqueName('deploy'), target: 'local', replicas: 1, ttlSeconds: 60, ...overrides };
}

/** A batch job under a fresh name, in shards of 10 and batches of 4, tolerating any bad input, top-1. */
export function batchInput(
  overrides: Partial<BatchScoreInput> & Pick<BatchScoreInput, 'modelPath' | 'inputPath' | 'outputDir'>,
): BatchScoreInput {
  return {
    name: uniqueName('batch'),
    shardSize: 10,
    batchSize: 4,
    maxShardsInFlight: 2,
    errorThreshold: -1,
    topK: 1,
    ...overrides,
  };
}
