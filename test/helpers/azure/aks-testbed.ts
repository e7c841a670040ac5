/**
 * Everything the aks target talks to, on this machine: the local ARM endpoint (real Azure SDK clients,
 * DefaultAzureCredential through the managed-identity protocol), a real Kubernetes control plane with
 * kwok nodes that appear when a cluster's pools are provisioned and vanish when it is deleted, the
 * kubelet stand-in that runs the registry's images in the pods kwok schedules, the pod network the API
 * server reaches them through (pod-network.ts), and the cloud load balancer. One per test file; the worker process gets `workerEnv()`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { CoreV1Api } from '@kubernetes/client-node';

import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { freePort } from '../../../src/temporal/dev-server';
import { startControlPlane } from '../kubernetes/control-plane';
import type { ControlPlane } from '../kubernetes/control-plane';
import { Kubelet } from '../kubernetes/kubelet';
import type { KubeletOptions } from '../kubernetes/kubelet';
import { PodNetwork } from '../kubernetes/pod-network';
import { ArmEndpoint, readTar } from './arm-endpoint';
import type { ArmEndpointOptions, ClusterEvent } from './arm-endpoint';
import { CloudLoadBalancer } from './cloud-load-balancer';
import { testTlsFromEnv } from './test-tls';

export const TEST_SUBSCRIPTION = '00000000-0000-0000-0000-00000000c0de';
export const TEST_LOCATION = 'eastus';
export const TEST_RESOURCE_GROUP = 'inferctl-tests';
export const TEST_REGISTRY = 'inferctltests';
/** An image of a registry of the ARM endpoint: `<registry>.azurecr.io/<repository>:<tag>`. */
const REGISTRY_IMAGE = /^([^./]+)\.azurecr\.io\/(.+)$/;

export interface AksTestbed {
  arm: ArmEndpoint;
  controlPlane: ControlPlane;
  kubelet: Kubelet;
  lb: CloudLoadBalancer;
  /** The API server's way into the pod network (pod and service proxy, kubelet logs). */
  podNetwork: PodNetwork;
  /** When false, new GPU nodes come up without `nvidia.com/gpu` (as without a working device plugin). */
  setAdvertiseGpus: (on: boolean) => void;
  workerEnv: () => NodeJS.ProcessEnv;
  nodeNames: () => Promise<string[]>;
  namespaces: () => Promise<string[]>;
  stop: () => Promise<void>;
}

export interface AksTestbedOptions extends Partial<ArmEndpointOptions> {
  /** The kubelet's "may this cluster pull this image?" (the ARM double's AcrPull check); allowed when unset. */
  canPull?: KubeletOptions['canPull'];
}

export async function startAksTestbed(opts: AksTestbedOptions = {}): Promise<AksTestbed> {
  const { canPull, ...armOptions } = opts;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-aks-'));
  fs.chmodSync(dir, 0o711); // the containers' user reaches their images and volumes below it
  const tls = testTlsFromEnv();
  const podNetwork = new PodNetwork();
  const controlPlane = await startControlPlane({
    dir: path.join(dir, 'k8s'),
    tls,
    egressProxySocket: await podNetwork.start(path.join(dir, 'pod-network.sock')),
    readinessByKubelet: true, // the kubelet stand-in reports Ready once the readiness probe passes
  });
  const kc = kubeConfigFromYaml(controlPlane.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  let advertiseGpus = true;

  const clusterLabel = (name: string) => crypto.createHash('sha256').update(name).digest('hex').slice(0, 8);
  const addNodes = async (event: ClusterEvent) => {
    for (const pool of event.pools) {
      for (let i = 0; i < pool.count; i++) {
        const name = `aks-${pool.name}-${clusterLabel(event.name)}-vmss${String(i).padStart(6, '0')}`;
        const resources: Record<string, string> = { cpu: '6', memory: '112Gi', pods: '110' };
        if (advertiseGpus && pool.gpusPerNode > 0) resources['nvidia.com/gpu'] = String(pool.gpusPerNode);
        await core
          .createNode({
            body: {
              apiVersion: 'v1',
              kind: 'Node',
              metadata: {
                name,
                annotations: { 'kwok.x-k8s.io/node': 'fake' },
                labels: {
                  ...pool.labels,
                  'kubernetes.azure.com/agentpool': pool.name,
                  'kubernetes.azure.com/cluster': event.name,
                  'kubernetes.azure.com/mode': pool.mode.toLowerCase(),
                  type: 'kwok',
                },
              },
              spec: {
                taints: pool.taints.map((t) => {
                  const [kv, effect] = t.split(':') as [string, string];
                  const [key, value] = kv.split('=') as [string, string];
                  return { key, value, effect };
                }),
              },
              status: { capacity: resources, allocatable: resources },
            },
          })
          .catch((err: unknown) => {
            if ((err as { code?: number }).code !== 409) throw err;
          });
      }
    }
    // A pool scaled in (its count lowered, to 0 for a User pool) loses its highest-numbered VMs, as a VMSS does.
    const nodes = await core.listNode({ labelSelector: `kubernetes.azure.com/cluster=${event.name}` });
    for (const node of nodes.items) {
      const pool = event.pools.find((p) => p.name === node.metadata?.labels?.['kubernetes.azure.com/agentpool']);
      const index = Number(/vmss(\d+)$/.exec(node.metadata!.name!)?.[1]);
      if (pool && index >= pool.count) await core.deleteNode({ name: node.metadata!.name! });
    }
  };
  const removeNodes = async (event: ClusterEvent) => {
    const nodes = await core.listNode({ labelSelector: `kubernetes.azure.com/cluster=${event.name}` });
    for (const node of nodes.items) {
      const pool = node.metadata?.labels?.['kubernetes.azure.com/agentpool'];
      if (event.pools.some((p) => p.name === pool)) await core.deleteNode({ name: node.metadata!.name! });
    }
  };

  const arm = await new ArmEndpoint({
    tls,
    subscriptionId: TEST_SUBSCRIPTION,
    location: TEST_LOCATION,
    kubeconfig: controlPlane.kubeconfig,
    registries: [`${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`],
    operationMs: 800,
    onClusterReady: addNodes,
    onClusterDeleted: removeNodes,
    ...armOptions,
  }).start();
  // A node's kubelet pulls with its cluster's kubelet identity: the registry decides (AcrPull).
  const armCanPull = async (image: string, nodeName?: string) => {
    const node = nodeName ? await core.readNode({ name: nodeName }).catch(() => undefined) : undefined;
    const cluster = node?.metadata?.labels?.['kubernetes.azure.com/cluster'];
    if (!cluster)
      return { ok: false as const, reason: `no node of a known cluster runs the pod (${nodeName ?? 'unscheduled'})` };
    return arm.canPull(cluster, image);
  };
  const kubelet = new Kubelet({
    kc,
    dir: path.join(dir, 'kubelet'),
    manages: (image) => REGISTRY_IMAGE.test(image),
    imageContext: async (image) => {
      const [, registry, repository] = REGISTRY_IMAGE.exec(image) ?? [];
      const record = arm.images.get(`${registry}/${repository}`);
      return record ? readTar(zlib.gunzipSync(record.context)) : undefined;
    },
    canPull: canPull ?? armCanPull,
    backoffMs: 1000,
    logFile: controlPlane.containerLogFile,
  }).start();
  podNetwork.route({ podAddress: (ip, port) => kubelet.podAddress(ip, port), nodeAddresses: ['127.0.0.1'] });
  const lb = new CloudLoadBalancer(kc, kubelet, TEST_LOCATION).start();
  const servicePort = await freePort();

  return {
    arm,
    controlPlane,
    kubelet,
    lb,
    podNetwork,
    setAdvertiseGpus: (on) => {
      advertiseGpus = on;
    },
    workerEnv: () => ({
      ...arm.workerEnv(TEST_RESOURCE_GROUP, TEST_REGISTRY),
      INFERCTL_AKS_POLL_MS: '200',
      INFERCTL_AKS_SERVICE_PORT: String(servicePort),
      INFERCTL_AKS_POD_FAILURE_GRACE_MS: '3000',
    }),
    nodeNames: async () => (await core.listNode({})).items.map((n) => n.metadata!.name!),
    namespaces: async () => (await core.listNamespace({})).items.map((n) => n.metadata!.name!),
    stop: async () => {
      await lb.stop();
      await kubelet.stop();
      await arm.stop();
      await controlPlane.stop();
      await podNetwork.stop();
      if (!process.env.INFERCTL_KEEP_TEST_DATA) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
