/**
 * The same deployment against real Azure: runs only with INFERCTL_AZURE_E2E=1 and the worker settings
 * of "Deploy to AKS" (subscription, region, resource group, registry) plus a credential
 * DefaultAzureCredential can use. It creates a GPU cluster that bills while it exists (about 15–25
 * minutes here) and checks it is deleted at the end. Everywhere else it is skipped, saying why.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { Client } from '@temporalio/client';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import { aksConfigured, aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import { isNotFound } from '../../../src/targets/aks/azure-errors';
import { deploy } from '../../../workflows/deploy';
import { demoAssets, startControlWorker, testClient, uniqueName } from '../../helpers/workers';
import type { WorkerProcess } from '../../helpers/workers';

const skip =
  process.env.INFERCTL_AZURE_E2E !== '1'
    ? 'set INFERCTL_AZURE_E2E=1 (and the Azure settings) to run against real Azure; it bills'
    : !aksConfigured()
      ? 'INFERCTL_AZURE_E2E=1 but AZURE_SUBSCRIPTION_ID, INFERCTL_AKS_RESOURCE_GROUP or INFERCTL_ACR_NAME is missing'
      : false;

describe('aks target against real Azure', { skip }, () => {
  const taskQueue = uniqueName('azure-e2e-tq');
  let client: Client;
  let closeClient: () => Promise<void>;
  let worker: WorkerProcess;

  before(async () => {
    ({ client, close: closeClient } = await testClient());
    worker = await startControlWorker(taskQueue);
  });

  after(async () => {
    await worker?.stop();
    await closeClient?.();
  });

  test(
    'deploys, answers the smoke query through the LoadBalancer, and deletes the cluster',
    { timeout: 60 * 60_000 },
    async () => {
      const assets = await demoAssets();
      const name = uniqueName('e2e');
      const red = assets.samples.find((s) => s.label === 'red')!;
      const outcome = await client.workflow.execute(deploy, {
        taskQueue,
        workflowId: deployWorkflowId(name),
        args: [
          {
            name,
            modelPath: assets.modelPath,
            target: 'aks',
            replicas: 1,
            ttlSeconds: 60,
            smoke: { samplePath: red.path, expectedLabel: 'red' },
            timings: { readyTimeoutSeconds: 20 * 60, heartbeatTimeoutSeconds: 60 },
          } satisfies DeployInput,
        ],
      });
      assert.equal(outcome.stage, 'done');
      assert.equal(outcome.smoke?.predictions[0]?.label, 'red');
      const settings = aksSettingsFromEnv();
      const gone = await createAzureClients(settings)
        .containerService.managedClusters.get(settings.resourceGroup, `inferctl-${name}`)
        .then(
          () => false,
          (err: unknown) => isNotFound(err),
        );
      assert.ok(gone, `cluster inferctl-${name} was deleted`);
    },
  );
});
