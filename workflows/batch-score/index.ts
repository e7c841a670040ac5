// The batch scoring workflow (batch-score.ts), its progress record (progress.ts) and its shard window (window.ts).
export { batchScore, progressQuery, shardProgressSignal } from './batch-score';
export type { BatchOutcome } from './batch-score';
export { HISTORY_EVENTS_PER_RUN, SHARDS_PER_RUN, overThreshold } from './window';
