/**
 * What every aks workflow test file needs: the testbed, a Temporal client, and a control worker whose
 * environment points at the testbed, started before the file's tests and stopped after them. Call it
 * inside `describe`; the fields are set once `before` has run.
 */
import { after, before } from 'node:test';

import type { Client } from '@temporalio/client';

import { demoAssets, startControlWorker, testClient, uniqueName } from '../workers';
import type { WorkerProcess } from '../workers';
import { startAksTestbed } from './aks-testbed';
import type { AksTestbed } from './aks-testbed';

export interface AksSuite {
  readonly taskQueue: string;
  bed: AksTestbed;
  client: Client;
  /** Replace it (after killing it) with `startControlWorker(suite.taskQueue, [], suite.workerEnv())`. */
  worker: WorkerProcess;
  assets: Awaited<ReturnType<typeof demoAssets>>;
  workerEnv: () => NodeJS.ProcessEnv;
}

export function aksSuite(taskQueuePrefix: string, extraWorkerEnv: NodeJS.ProcessEnv = {}): AksSuite {
  let closeClient: (() => Promise<void>) | undefined;
  const suite = {
    taskQueue: uniqueName(taskQueuePrefix),
    workerEnv: () => ({ ...process.env, ...suite.bed.workerEnv(), ...extraWorkerEnv }),
  } as AksSuite;

  before(async () => {
    suite.assets = await demoAssets();
    suite.bed = await startAksTestbed();
    let close: () => Promise<void>;
    ({ client: suite.client, close } = await testClient());
    closeClient = close;
    suite.worker = await startControlWorker(suite.taskQueue, [], suite.workerEnv());
  });

  after(async () => {
    await suite.worker?.stop();
    await closeClient?.();
    await suite.bed?.stop();
  });

  return suite;
}
