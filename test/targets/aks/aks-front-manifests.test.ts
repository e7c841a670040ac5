/**
 * The objects of an aks deployment that scales to zero, as `deploy --target aks --dry-run --min-replicas 0`
 * prints them through `bin/inferctl.js` (no Azure, no Temporal): the front pinned to the system pool, on CPU,
 * serving the TLS certificate and holding the key, forwarding to the scorers' ClusterIP Service by its
 * cluster DNS name; the public Service selecting the front; the scoring pods on plain HTTP behind it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import type { V1Deployment, V1Service } from '@kubernetes/client-node';

import type { DryRunReport } from '../../../src/targets/aks/dry-run';
import { demoAssets } from '../../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'inferctl.js');

describe('scale to zero on aks: the front’s objects', () => {
  test('the front on the system pool holds the public Service; the scorers behind a ClusterIP', async () => {
    const { modelPath } = await demoAssets();
    const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', INFERCTL_ARM_ENDPOINT: 'https://127.0.0.1:1' };
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        BIN,
        'deploy',
        '-m',
        modelPath,
        '--target',
        'aks',
        '--dry-run',
        '--name',
        'colours',
        '--min-replicas',
        '0',
        '--max-replicas',
        '1',
        '--wake-timeout',
        '20m',
        '--json',
      ],
      { env },
    );
    const report = JSON.parse(stdout) as DryRunReport;
    const byName = (kind: string, name: string) =>
      report.kubernetesObjects.find((o) => o.kind === kind && o.metadata?.name === name);
    const front = byName('Deployment', 'colours-front') as V1Deployment;
    const pod = front.spec!.template.spec!;
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.azure.com/mode': 'system' });
    assert.equal(pod.tolerations, undefined, 'never on the tainted GPU pool');
    const container = pod.containers[0]!;
    assert.equal(container.resources?.limits?.['nvidia.com/gpu'], undefined);
    assert.equal(container.resources?.requests?.cpu, '100m');
    const args = container.args!;
    assert.equal(args[0], 'dist/src/targets/aks/front-main.js');
    const flag = (name: string) => args[args.indexOf(name) + 1];
    assert.equal(flag('--upstream'), 'http://colours-scorers.inferctl-colours.svc.cluster.local:5001');
    assert.equal(flag('--hold-ms'), String(20 * 60_000));
    assert.equal(flag('--tls-cert'), '/etc/inferctl-tls/tls.crt', 'TLS ends at the front');
    assert.equal(flag('--api-key-file'), '/etc/inferctl/api-key', 'the key is checked at the front');
    assert.equal(pod.automountServiceAccountToken, false, 'no Kubernetes credential in the front');

    const publicService = byName('Service', 'colours') as V1Service;
    assert.equal(publicService.spec?.type, 'LoadBalancer');
    assert.deepEqual(publicService.spec?.selector, { 'inferctl.dev/front': 'colours' });
    assert.equal(publicService.spec?.ports?.[0]?.targetPort, 8080);
    const scorers = byName('Service', 'colours-scorers') as V1Service;
    assert.equal(scorers.spec?.type, 'ClusterIP');
    assert.deepEqual(scorers.spec?.selector, { 'inferctl.dev/endpoint': 'colours' });
    const scoring = (byName('Deployment', 'colours') as V1Deployment).spec!.template.spec!;
    assert.ok(!scoring.containers[0]!.args!.includes('--tls-cert'), 'the scorers serve plain HTTP in the cluster');
    assert.equal(scoring.containers[0]!.readinessProbe?.httpGet?.scheme, undefined);
    assert.ok(
      report.kubernetes.some((k) => k.name === 'inferctl-colours/colours-front'),
      'the listing names the front',
    );
  });
});
