/**
 * `inferctl deploy --target aks --dry-run`: prints the resources and the hourly cost from the dated price
 * table, needs neither Azure nor Temporal, and creates nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import type { V1Deployment, V1Service } from '@kubernetes/client-node';

import { v2ModelName } from '../../../src/shared/deploy-types';
import { acrPullAssignmentBody, acrPullAssignmentName } from '../../../src/targets/aks/acr-pull';
import type { DryRunReport } from '../../../src/targets/aks/dry-run';
import { KUBELET_PLACEHOLDER } from '../../../src/targets/aks/dry-run-requests';
import { endpointExposure } from '../../../src/targets/aks/tls-exposure';
import { scoringManifests } from '../../../src/targets/aks/kubernetes-manifests';
import { DEFAULT_PRICE_TABLE as PRICE_TABLE } from '../../../src/shared/price-table';
import { demoAssets } from '../../helpers/workers';
import { recordReliability } from '../../helpers/reliability';

const BIN = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'inferctl.js');

/** The endpoint's load balancer and public IP, and the registry's daily price by the hour. */
const ENDPOINT_AND_REGISTRY =
  PRICE_TABLE.loadBalancerHourly + PRICE_TABLE.publicIpHourly + PRICE_TABLE.registryDaily / 24;

async function dryRun(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const { modelPath } = await demoAssets();
  // No Temporal and no Azure: an unreachable address proves neither is contacted.
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: '127.0.0.1:1',
    INFERCTL_ARM_ENDPOINT: 'https://127.0.0.1:1',
    ...extraEnv,
  };
  return promisify(execFile)(
    process.execPath,
    [BIN, 'deploy', '-m', modelPath, '--target', 'aks', '--dry-run', '--name', 'colours', ...args],
    { env },
  );
}

describe('deploy --target aks --dry-run', () => {
  test('lists the cluster, image and Kubernetes objects and prices the node pools', async () => {
    const { stdout } = await dryRun(['--replicas', '2', '--json']);
    const report = JSON.parse(stdout) as DryRunReport;
    const cluster = report.resources.find((r) => r.kind === 'AKS cluster');
    assert.equal(cluster?.name, 'inferctl-colours');
    assert.match(cluster?.detail ?? '', /gpu 2 × Standard_NC4as_T4_v3 \(taint sku=gpu:NoSchedule\)/);
    assert.match(report.image, /inferctl-scorer:[0-9a-f]{64}$/);
    assert.deepEqual(
      report.kubernetes.map((k) => k.kind),
      ['DaemonSet', 'Namespace', 'Secret', 'Secret', 'Deployment', 'Service'],
    );
    assert.match(report.kubernetes[2]!.name, /-tls \(kubernetes\.io\/tls, made at provision for inferctl-colours-/);
    const expected =
      PRICE_TABLE.vmHourly.Standard_D2s_v3! + 2 * PRICE_TABLE.vmHourly.Standard_NC4as_T4_v3! + ENDPOINT_AND_REGISTRY;
    assert.ok(Math.abs(report.cost.hourly - expected) < 0.001, `${report.cost.hourly} ≈ ${expected}`);
    assert.match(report.cost.note, new RegExp(`dated ${PRICE_TABLE.asOf}`));
    // The default TTL is an hour: the deployment's whole cost at that rate.
    assert.equal(report.ttlCost?.ttlSeconds, 3600);
    assert.ok(Math.abs(report.ttlCost.total - expected) < 0.001);
  });

  test('--json prints the ARM requests and the Kubernetes objects as they would be sent, and the TTL cost', async () => {
    const sub = '11111111-2222-3333-4444-555555555555';
    const env = {
      AZURE_SUBSCRIPTION_ID: sub,
      INFERCTL_AKS_RESOURCE_GROUP: 'ml',
      INFERCTL_ACR_NAME: 'teamacr',
      INFERCTL_AKS_LOCATION: 'westeurope',
    };
    const { stdout } = await dryRun(['--replicas', '1', '--ttl', '2h', '--json'], env);
    const report = JSON.parse(stdout) as DryRunReport;
    const rg = `/subscriptions/${sub}/resourceGroups/ml`;
    const clusterPath = `${rg}/providers/Microsoft.ContainerService/managedClusters/inferctl-colours`;
    const registryId = `${rg}/providers/Microsoft.ContainerRegistry/registries/teamacr`;

    // The cluster PUT: the wire body (properties nested as ARM takes them), with its tags and identity.
    const put = report.armRequests[0]!;
    assert.equal(put.method, 'PUT');
    assert.match(put.path, new RegExp(`^${clusterPath}\\?api-version=\\d{4}-\\d{2}-\\d{2}`));
    const body = put.body as { identity: unknown; tags: Record<string, string>; properties: Record<string, unknown> };
    assert.deepEqual(body.identity, { type: 'SystemAssigned' });
    assert.equal(body.tags['inferctl-owner'], 'deploy-colours');
    assert.equal(body.tags['inferctl-environment'], '127.0.0.1:1/default');
    assert.equal(body.properties.dnsPrefix, 'inferctl-colours');

    // The AcrPull assignment: the name every attempt uses (of cluster, registry and kubelet identity), on the
    // registry, for the kubelet identity, described with the cluster and its owner for the janitor.
    const clusterId = `/subscriptions/${sub}/resourcegroups/ml/providers/Microsoft.ContainerService/managedClusters/inferctl-colours`;
    const grant = report.armRequests[1]!;
    assert.equal(grant.method, 'PUT');
    assert.equal(
      grant.path,
      `${registryId}/providers/Microsoft.Authorization/roleAssignments/${acrPullAssignmentName(clusterId, registryId, KUBELET_PLACEHOLDER)}?api-version=2022-04-01`,
    );
    const description =
      `inferctl AcrPull for the kubelet identity of cluster ${clusterId}; inferctl-owner=deploy-colours; ` +
      'inferctl-environment=127.0.0.1:1/default';
    assert.deepEqual(grant.body, { properties: acrPullAssignmentBody(sub, KUBELET_PLACEHOLDER, description) });
    assert.match(JSON.stringify(grant.body), /7f951dda-4ed3-4680-a7ca-43fe172d538d/);
    assert.deepEqual(
      report.armRequests.slice(2).map((r) => `${r.method} ${r.path.split('?')[0]!.replace(registryId, '')}`),
      ['POST /listBuildSourceUploadUrl', 'POST /scheduleRun'],
    );
    assert.ok(report.armRequests.every((r) => /[?&]api-version=/.test(r.path)));

    // The Kubernetes objects in full: what the target applies, probes and pod security context included.
    // A public endpoint is HTTPS by default: the TLS Secret (its data made at provision) follows the namespace.
    assert.deepEqual(
      report.kubernetesObjects.map(
        (o) => `${o.kind}${(o as { type?: string }).type ? ` ${(o as { type?: string }).type}` : ''}`,
      ),
      ['DaemonSet', 'Namespace', 'Secret kubernetes.io/tls', 'Secret Opaque', 'Deployment', 'Service'],
    );
    const exposure = endpointExposure({
      name: 'colours',
      subscriptionId: sub,
      resourceGroup: 'ml',
      location: 'westeurope',
    });
    const expected = scoringManifests({
      namespace: 'inferctl-colours',
      name: 'colours',
      ownerId: 'deploy-colours',
      image: report.image,
      replicas: 1,
      topK: 5,
      modelName: v2ModelName((await demoAssets()).modelPath),
      servicePort: exposure.port,
      exposure,
      environment: '127.0.0.1:1/default',
      cluster: 'inferctl-colours',
    });
    const deployment = report.kubernetesObjects[4] as V1Deployment;
    const podSpec = deployment.spec!.template.spec!;
    assert.deepEqual(deployment, JSON.parse(JSON.stringify(expected[2])));
    // What a reader checks there: non-root with the key group-readable through fsGroup, probes over HTTPS.
    assert.deepEqual(
      { ...podSpec.securityContext },
      {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      },
    );
    assert.deepEqual(
      podSpec.volumes?.map((v) => [v.name, v.secret?.defaultMode]),
      [
        ['tmp', undefined],
        ['api-key', 0o440],
        ['tls', 0o440],
      ],
    );
    assert.deepEqual(
      podSpec.volumes?.find((v) => v.name === 'tls')?.secret?.items?.map((i) => i.key),
      ['tls.crt', 'tls.key'],
      'the pods mount the certificate and its key, never the CA’s key kept for renewals',
    );
    const scorer = podSpec.containers[0]!;
    assert.equal(scorer.startupProbe?.httpGet?.path, '/healthz');
    assert.equal(scorer.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(scorer.readinessProbe?.httpGet?.scheme, 'HTTPS');
    assert.equal(scorer.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal((report.kubernetesObjects[3] as { stringData?: unknown }).stringData, undefined, 'no key printed');
    assert.equal((report.kubernetesObjects[2] as { data?: unknown }).data, undefined, 'no TLS key printed');

    // The cost: the hour and the whole TTL.
    assert.equal(report.ttlCost?.ttlSeconds, 7200);
    assert.ok(Math.abs(report.ttlCost.total - 2 * report.cost.hourly) < 1e-9);
  });

  test('the estimate prices the TTL as well as the hour', async () => {
    const { stdout } = await dryRun(['--ttl', '90m']);
    const hourly =
      PRICE_TABLE.vmHourly.Standard_D2s_v3! + PRICE_TABLE.vmHourly.Standard_NC4as_T4_v3! + ENDPOINT_AND_REGISTRY;
    assert.match(stdout, new RegExp(`for the TTL \\(1h30m\\)\\s+\\$${(hourly * 1.5).toFixed(2).replace('.', '\\.')}`));
  });

  test('--price-table prices with your table, in its currency; --budget says how long it lasts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prices-'));
    const table = path.join(dir, 'prices.json');
    const gpu = 0.5;
    fs.writeFileSync(
      table,
      JSON.stringify({
        ...PRICE_TABLE,
        currency: 'EUR',
        asOf: '2026-11-30',
        source: 'our contract',
        vmHourly: { Standard_D2s_v3: 0.1, Standard_NC4as_T4_v3: gpu },
        loadBalancerHourly: 0.02,
        publicIpHourly: 0.01,
        registryDaily: 0.24,
      }),
    );
    // 0.1 + 0.5 + 0.02 + 0.01 + 0.01 = 0.64 an hour: a budget of 16 lasts 25 h.
    const { stdout } = await dryRun(['--price-table', table, '--budget', '16']);
    assert.match(stdout, /total\s+EUR 0\.640\/h/);
    assert.match(stdout, /budget 16\s+spent after 25h0m/);
    assert.match(stdout, /Estimate in EUR from a price table dated 2026-11-30 \(our contract\)/);
    const bad = await dryRun(['--price-table', path.join(dir, 'missing.json')]).then(
      () => assert.fail('a missing price table was accepted'),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /The price table --price-table \S+missing\.json is not usable:\n  - it cannot be read \(ENOENT\)/,
    );
    fs.rmSync(dir, { recursive: true });
  });

  test('an existing cluster is used, never deleted, and adds no node cost', async () => {
    const { stdout } = await dryRun(['--cluster', 'team-gpu', '--gpu-vm-size', 'Standard_NC4as_T4_v3']);
    assert.match(stdout, /Dry run: nothing is created/);
    assert.match(stdout, /AKS cluster: team-gpu\n\s+existing: used, never deleted/);
    assert.doesNotMatch(stdout, /Standard_NC4as_T4_v3 VM/);
    assert.match(stdout, /total\s+\$0\.037\/h/);
  });

  test('a retired VM size (the NCv3 series, once the default) is refused with the sizes to use instead', async () => {
    const err = await dryRun(['--gpu-vm-size', 'Standard_NC6s_v3']).then(
      () => assert.fail('the dry run accepted a retired size'),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(err.code, 2);
    assert.match(err.stderr, /Standard_NC6s_v3 was retired by Azure on 2025-09-30/);
    assert.match(
      err.stderr,
      /Standard_NC4as_T4_v3 \(1× T4 16 GB\).*Standard_NC24ads_A100_v4.*Standard_NC40ads_H100_v5/,
    );
  });

  test('an unpriced VM size is said to be unpriced, not guessed', async () => {
    const { stdout } = await dryRun(['--gpu-vm-size', 'Standard_ND96asr_v4']);
    assert.match(stdout, /Standard_ND96asr_v4 VM\s+×\s+1\s+no price in the table/);
    assert.match(stdout, /unpriced: Standard_ND96asr_v4/);
  });

  test('--allow-from puts the ranges on the Service; the scorer runs read-only under the default seccomp profile', async () => {
    const { stdout } = await dryRun(['--allow-from', '203.0.113.0/24', '2001:db8::/48', '--json']);
    const report = JSON.parse(stdout) as DryRunReport;
    const service = report.kubernetesObjects.find((o) => o.kind === 'Service') as V1Service;
    assert.deepEqual(service.spec?.loadBalancerSourceRanges, ['203.0.113.0/24', '2001:db8::/48']);
    const deployment = report.kubernetesObjects.find((o) => o.kind === 'Deployment') as V1Deployment;
    const pod = deployment.spec!.template.spec!;
    assert.deepEqual(pod.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
    const scorer = pod.containers[0]!;
    assert.equal(scorer.securityContext?.readOnlyRootFilesystem, true);
    const tmp = scorer.volumeMounts?.find((m) => m.mountPath === '/tmp');
    assert.ok(tmp && pod.volumes?.find((v) => v.name === tmp.name)?.emptyDir, 'the one writable place: an emptyDir');

    const without = JSON.parse((await dryRun(['--json'])).stdout) as DryRunReport;
    const open = without.kubernetesObjects.find((o) => o.kind === 'Service') as V1Service;
    assert.equal(open.spec?.loadBalancerSourceRanges, undefined, 'no ranges unless asked');

    // Not CIDRs: refused before anything, every bad one named.
    const refused = await dryRun(['--allow-from', '10.0.0.1', '300.1.1.1/8', '10.0.0.0/33', '--json']).then(
      () => assert.fail('bad ranges were accepted'),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /--allow-from takes address ranges in CIDR form .*"10\.0\.0\.1", "300\.1\.1\.1\/8", "10\.0\.0\.0\/33"/,
    );
    recordReliability({
      test: 'aks --allow-from: address ranges that are not CIDRs',
      faultsInjected: 0,
      survived: true,
      attack: 'malformed-source-range',
      attacksTried: 3,
      attacksRefused: 3,
    });
  });
});
