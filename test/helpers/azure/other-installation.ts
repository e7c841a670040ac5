/**
 * A second inferctl installation sharing the subscription: its own Temporal namespace on the same dev
 * server, with its own control worker pointed at the same ARM endpoint and cluster.
 */
import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';

import { environmentOf } from '../../../src/targets/aks/environment-tag';
import { connectionSettings } from '../../../src/temporal/connection';
import { eventually, startControlWorker, uniqueName } from '../workers';
import type { WorkerProcess } from '../workers';

export interface Installation {
  client: Client;
  queue: string;
  namespace: string;
  /** `<address>/<namespace>`, as its resources are tagged. */
  environment: string;
  worker: WorkerProcess;
}

export async function otherInstallation(client: Client, workerEnv: NodeJS.ProcessEnv): Promise<Installation> {
  const namespace = uniqueName('inferctl-other');
  await client.connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  const queue = uniqueName('aks-other-tq');
  const worker = await eventually(
    () => startControlWorker(queue, [], { ...workerEnv, TEMPORAL_NAMESPACE: namespace }).catch(() => undefined),
    'the new namespace to take workers',
    60_000,
  );
  return {
    client: new Client({ connection: client.connection, namespace }),
    queue,
    namespace,
    environment: environmentOf({ address: connectionSettings().address, namespace }),
    worker,
  };
}
