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

/** A search attribute type as the Temporal CLI spells it (`--search-attribute Name=Type`, `--type`). */
export type SearchAttributeTypeName = 'Text' | 'Keyword' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

export interface SearchAttributeSpec {
  readonly name: string;
  readonly type: SearchAttributeTypeName;
}

/**
 * inferctl's own attributes, name and CLI type of each: registered by the dev server at start
 * (`--search-attribute Name=Type`) and listed in the hint for clusters that lack them.
 */
export const SEARCH_ATTRIBUTES: ReadonlyArray<SearchAttributeSpec> = [
  { name: InferctlKind.name, type: 'Keyword' },
  { name: DeploymentName.name, type: 'Keyword' },
  { name: ModelName.name, type: 'Keyword' },
  { name: Target.name, type: 'Keyword' },
  { name: Stage.name, type: 'Keyword' },
  { name: ItemsTotal.name, type: 'Int' },
  { name: ItemsDone.name, type: 'Int' },
];
