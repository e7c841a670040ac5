/**
 * inferctl's custom search attributes: set when a workflow starts, upserted as it moves, used by
 * `inferctl list` and shown in the Web UI. Workflow-safe. The dev server registers them at start;
 * on another cluster register them once per namespace:
 *   temporal operator search-attribute create --name InferctlKind --type Keyword   (and so on)
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const InferctlKind = defineSearchAttributeKey('InferctlKind', SearchAttributeType.KEYWORD);
export const DeploymentName = defineSearchAttributeKey('DeploymentName', SearchAttributeType.KEYWORD);
export const ModelName = defineSearchAttributeKey('ModelName', SearchAttributeType.KEYWORD);
export const Target = defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD);
export const Stage = defineSearchAttributeKey('Stage', SearchAttributeType.KEYWORD);
export const ItemsTotal = defineSearchAttributeKey('ItemsTotal', SearchAttributeType.INT);
export const ItemsDone = defineSearchAttributeKey('ItemsDone', SearchAttributeType.INT);

/** Set by Temporal on every workflow a schedule starts: the slot's scheduled time. */
export const TemporalScheduledStartTime = defineSearchAttributeKey(
  'TemporalScheduledStartTime',
  SearchAttributeType.DATETIME,
);

/** Name and CLI type of each, for `temporal server start-dev --search-attribute Name=Type`. */
export const SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: 'Keyword' | 'Int' }> = [
  { name: InferctlKind.name, type: 'Keyword' },
  { name: DeploymentName.name, type: 'Keyword' },
  { name: ModelName.name, type: 'Keyword' },
  { name: Target.name, type: 'Keyword' },
  { name: Stage.name, type: 'Keyword' },
  { name: ItemsTotal.name, type: 'Int' },
  { name: ItemsDone.name, type: 'Int' },
];
