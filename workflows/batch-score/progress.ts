/**
 * A batch job's record of itself: the counts its `progress` query answers (finished shards, plus the items
 * that running shards report by signal), the current details the Web UI shows, and the Stage/Items search
 * attributes, upserted at most once per 10% of progress (each upsert is a history event). Also what a
 * continue-as-new run carries over.
 */
import { setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

import type {
  BatchCarryOver,
  BatchProgress,
  BatchScoreInput,
  PreparedBatch,
  ShardProgress,
  ShardResult,
} from '../../src/shared/batch-types';
import { formatMoney } from '../../src/shared/price-table';
import { InferctlKind, ItemsDone, ItemsTotal, Stage } from '../../src/shared/search-attributes';
import { JobCost } from './cost';

export class JobProgress {
  readonly progress: BatchProgress;
  readonly startedAt: string;
  /** The job's cost ledger and budget (cost.ts). */
  readonly cost: JobCost;
  /** Items scored without error, finished shards only (the progress counts failures and all items). */
  itemsOk: number;
  /**
   * Which attempt's output is each shard's: the attempt whose result Temporal accepted (a lost attempt's
   * completion is refused). Only shards not done by attempt 1 are listed, so this stays small.
   */
  readonly shardOwners: Record<string, number>;
  /** Items done inside each running shard, by shard number (only shards this run has in flight). */
  private readonly inShard = new Map<number, ShardProgress>();
  private readonly inFlight = new Set<number>();
  private readonly indexed = workflowInfo().typedSearchAttributes.get(InferctlKind) !== undefined;
  private indexedTenth = -1;

  constructor(input: BatchScoreInput, carry: BatchCarryOver | undefined) {
    this.startedAt = carry?.startedAt ?? new Date(Date.now()).toISOString();
    this.progress = {
      name: input.name,
      stage: carry ? 'scoring' : 'listing',
      totalItems: carry?.prepared.totalItems ?? 0,
      itemsDone: (carry?.itemsOk ?? 0) + (carry?.itemsFailed ?? 0),
      itemsFailed: carry?.itemsFailed ?? 0,
      shardCount: carry?.prepared.shardCount ?? 0,
      shardsDone: carry?.shardsDone ?? 0,
      shardsInFlight: 0,
      startedAt: this.startedAt,
      executionProvider: carry?.executionProvider,
    };
    this.itemsOk = carry?.itemsOk ?? 0;
    this.shardOwners = { ...carry?.shardOwners };
    this.cost = new JobCost(input, carry);
  }

  /** Progress as answered: finished shards' counts plus what running shards reported. */
  current(): BatchProgress {
    let done = 0;
    let failed = 0;
    for (const p of this.inShard.values()) {
      done += p.itemsDone;
      failed += p.itemsFailed;
    }
    return {
      ...this.progress,
      itemsDone: this.progress.itemsDone + done,
      itemsFailed: this.progress.itemsFailed + failed,
      itemsInRunningShards: done,
      cost: this.cost.summary(),
    };
  }

  /** Shows the current progress in the Web UI; `force` upserts the search attributes whatever the progress. */
  show(force = false): void {
    setCurrentDetails(describe(this.current()));
    this.index(force);
  }

  setStage(stage: BatchProgress['stage']): void {
    this.progress.stage = stage;
    this.show(true);
    this.cost.publish();
  }

  /** The inputs are listed into shards: scoring starts. */
  listed(prepared: PreparedBatch): void {
    this.progress.totalItems = prepared.totalItems;
    this.progress.shardCount = prepared.shardCount;
    this.setStage('scoring');
  }

  /** The `shard-progress` signal's handler. */
  shardReported(p: ShardProgress): void {
    if (!this.inFlight.has(p.shard)) return; // finished already, or not this run's
    if ((this.inShard.get(p.shard)?.itemsDone ?? -1) >= p.itemsDone) return; // an older report, arriving late
    this.inShard.set(p.shard, p);
    this.show();
  }

  shardStarted(shard: number): void {
    this.progress.shardsInFlight++;
    this.inFlight.add(shard);
    this.cost.keep(this.progress.shardsInFlight);
  }

  shardScored(shard: number, r: ShardResult): void {
    this.itemsOk += r.itemsOk;
    if (r.attempts !== 1) this.shardOwners[String(shard)] = r.attempts;
    this.progress.itemsFailed += r.itemsFailed;
    this.progress.itemsDone += r.itemsOk + r.itemsFailed;
    this.progress.shardsDone++;
    this.progress.executionProvider ??= r.executionProvider;
  }

  /** The shard finished, scored or not: it leaves the window. */
  shardSettled(shard: number): void {
    this.progress.shardsInFlight--;
    this.inFlight.delete(shard);
    this.inShard.delete(shard);
    this.cost.keep(this.progress.shardsInFlight);
    this.cost.check();
    this.show();
  }

  /** What the next run starts from: counters only, never the data. */
  carryOver(prepared: PreparedBatch, nextShard: number): BatchCarryOver {
    return {
      prepared,
      nextShard,
      shardsDone: this.progress.shardsDone,
      itemsOk: this.itemsOk,
      itemsFailed: this.progress.itemsFailed,
      startedAt: this.startedAt,
      executionProvider: this.progress.executionProvider,
      ...(Object.keys(this.shardOwners).length > 0 ? { shardOwners: this.shardOwners } : {}),
      cost: this.cost.carryOver(),
    };
  }

  /** Upserts stage and counts, at most once per 10% of progress. */
  private index(force: boolean): void {
    if (!this.indexed) return;
    const p = this.progress;
    const tenth = p.totalItems > 0 ? Math.floor((10 * p.itemsDone) / p.totalItems) : 0;
    if (!force && tenth === this.indexedTenth) return;
    this.indexedTenth = tenth;
    upsertSearchAttributes([
      { key: Stage, value: p.stage },
      { key: ItemsTotal, value: p.totalItems },
      { key: ItemsDone, value: p.itemsDone },
    ]);
  }
}

function describe(p: BatchProgress): string {
  const pct = p.totalItems > 0 ? ((100 * p.itemsDone) / p.totalItems).toFixed(1) : '0.0';
  const lines = [
    `- **Stage:** ${p.stage}`,
    `- **Items:** ${p.itemsDone} / ${p.totalItems} (${pct}%), ${p.itemsFailed} failed`,
    `- **Shards:** ${p.shardsDone} / ${p.shardCount} done, ${p.shardsInFlight} in flight`,
  ];
  if (p.executionProvider) lines.push(`- **Execution provider:** ${p.executionProvider}`);
  if (p.cost) lines.push(`- **Cost:** ${costText(p.cost)}`);
  if (p.summaryPath) lines.push(`- **Summary:** ${p.summaryPath}`);
  return lines.join('\n');
}

/** "USD 1.23 so far (price table of 2025-06); budget USD 10.00, 12 %" and the budget's state. */
export function costText(c: NonNullable<BatchProgress['cost']>): string {
  const money = (n: number) => formatMoney(n, c.currency);
  let text = `${money(c.total)} so far (price table of ${c.priceTableAsOf})`;
  if (c.note) text += `: ${c.note}`;
  const b = c.budgetState;
  if (b) {
    text += `; budget ${money(b.budget)}, ${Math.round((100 * c.total) / b.budget)} %`;
    if (b.state === 'warned') text += `, WARNING: over 80 % spent since ${b.warnedAt}`;
    if (b.state === 'reached') text += `, spent at ${b.reachedAt}: no more shards are started`;
  }
  return text;
}
