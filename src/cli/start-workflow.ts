/**
 * Starting a workflow with inferctl's search attributes. A cluster where they are not registered yet
 * refuses the start; then the workflow starts without them (it only upserts what it was started with)
 * and the user is told how to register them.
 */
import type { Client, WorkflowHandleWithFirstExecutionRunId, WorkflowStartOptions } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { Workflow } from '@temporalio/common';

import { SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import type { Output } from './output';

export async function startIndexed<T extends Workflow>(
  client: Client,
  workflow: T,
  options: WorkflowStartOptions<T>,
  attributes: SearchAttributePair[],
  out: Output,
): Promise<WorkflowHandleWithFirstExecutionRunId<T>> {
  try {
    return await client.workflow.start(workflow, { ...options, typedSearchAttributes: attributes });
  } catch (err) {
    if (!(err instanceof Error) || !/search attribute/i.test(err.message)) throw err;
    out.note(
      'note: this namespace lacks inferctl’s search attributes, so `inferctl list` filters and the Web UI columns ' +
        'will not work. Register them once:\n' +
        SEARCH_ATTRIBUTES.map(
          (a) => `  temporal operator search-attribute create --name ${a.name} --type ${a.type}`,
        ).join('\n'),
    );
    return client.workflow.start(workflow, options);
  }
}
