/**
 * How an AKS endpoint is exposed, against the testbed (real control plane, ARM endpoint, the load
 * balancer double that follows Azure's frontend rules): `internal` puts the Service on the internal load
 * balancer (a VNet address, plain HTTP inside it); plain HTTP on a public IP only with `insecureHttp`; the
 * user's own certificate (files on the worker) is served and pinned by the smoke query; and a retried
 * provision step reuses the TLS Secret it made rather than minting another CA, also when two attempts race.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CoreV1Api } from '@kubernetes/client-node';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput } from '../../../src/shared/deploy-types';
import type { DeploymentSpec } from '../../../src/shared/target-types';
import { aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import { AksTarget } from '../../../src/targets/aks/aks-target';
import { kubeConfigFromYaml } from '../../../src/targets/aks/kubernetes-deployment';
import { mintDeploymentCertificate } from '../../../src/targets/aks/tls-certificate';
import { renewTlsSecret } from '../../../src/targets/aks/tls-secret';
import { deploy } from '../../../workflows/deploy';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { DNS_LABEL_ANNOTATION, INTERNAL_ANNOTATION } from '../../helpers/azure/lb-frontend';
import { uniqueName } from '../../helpers/workers';

describe('aks endpoint exposure: internal, insecure HTTP, the user’s certificate, provision retries', () => {
  const suite = aksSuite('aks-tls-tq');
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-aks-tls-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const core = () => kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig).makeApiClient(CoreV1Api);

  /** Deploys with a smoke query and a short TTL; returns the outcome and what the Service looked like. */
  async function deployAndWatch(name: string, aks: DeployInput['aks']) {
    const red = suite.assets.samples.find((s) => s.label === 'red')!;
    const handle = await suite.client.workflow.start(deploy, {
      taskQueue: suite.taskQueue,
      workflowId: deployWorkflowId(name),
      args: [
        {
          name,
          modelPath: suite.assets.modelPath,
          target: 'aks',
          replicas: 1,
          ttlSeconds: 1,
          smoke: { samplePath: red.path, expectedLabel: 'red' },
          timings: { readyTimeoutSeconds: 90, readinessPollSeconds: 0.2 },
          aks,
        } satisfies DeployInput,
      ],
    });
    // Read the Service while it exists (the TTL is a second long).
    let service;
    for (let i = 0; i < 600 && !service?.status?.loadBalancer?.ingress?.length; i++) {
      service = await core()
        .readNamespacedService({ name, namespace: `inferctl-${name}` })
        .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    const frontend = suite.bed.lb.frontends.frontends.get(`inferctl-${name}/${name}`);
    return { outcome: await handle.result(), service, frontend };
  }

  test('--internal: an internal load balancer, a private VNet address, plain HTTP inside the VNet', async () => {
    const name = uniqueName('aks-internal');
    const { outcome, service, frontend } = await deployAndWatch(name, { internal: true });
    assert.equal(outcome.stage, 'done', outcome.lastError);
    assert.equal(outcome.smoke?.predictions[0]?.label, 'red', 'the smoke query reached it');
    assert.equal(service?.metadata?.annotations?.[INTERNAL_ANNOTATION], 'true');
    assert.equal(service?.metadata?.annotations?.[DNS_LABEL_ANNOTATION], undefined, 'no public IP to label');
    assert.equal(frontend?.kind, 'private');
    assert.match(frontend?.standsFor ?? '', /^10\.224\.\d+\.\d+$/, 'an address from the cluster VNet');
    assert.match(outcome.endpoint ?? '', /^http:\/\/127\.224\.\d+\.\d+:\d+$/, 'the private address, not 127.0.0.1');
    assert.equal(outcome.tls, undefined, 'no certificate was made');
  });

  test('plain HTTP on a public IP only with --insecure-http', async () => {
    const name = uniqueName('aks-plain');
    const { outcome, service, frontend } = await deployAndWatch(name, { insecureHttp: true });
    assert.equal(outcome.stage, 'done', outcome.lastError);
    assert.equal(outcome.smoke?.predictions[0]?.label, 'red');
    assert.equal(frontend?.kind, 'public');
    assert.equal(service?.metadata?.annotations?.[INTERNAL_ANNOTATION], undefined);
    assert.equal(service?.spec?.ports?.[0]?.name, 'http');
    assert.match(outcome.endpoint ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(outcome.tls, undefined);
  });

  test('the user’s certificate (files on the worker) is served, and the smoke query pins it', async () => {
    const name = uniqueName('aks-own-cert');
    const own = await mintDeploymentCertificate({ dnsName: 'scoring.example.test', deployment: 'user' });
    const certPath = path.join(dir, `${name}.crt`);
    const keyPath = path.join(dir, `${name}.key`);
    await fs.writeFile(certPath, own.certPem);
    await fs.writeFile(keyPath, own.keyPem, { mode: 0o600 });
    const { outcome, service } = await deployAndWatch(name, { tlsCertPath: certPath, tlsKeyPath: keyPath });
    assert.equal(outcome.stage, 'done', outcome.lastError);
    assert.equal(outcome.smoke?.predictions[0]?.label, 'red', 'served over HTTPS with the user’s certificate');
    assert.equal(outcome.tls?.source, 'user-certificate');
    assert.equal(outcome.tls.hostname, 'scoring.example.test');
    assert.equal(outcome.tls.fingerprint, new crypto.X509Certificate(own.certPem).fingerprint256);
    assert.equal(outcome.tls.caPem, undefined);
    assert.equal(outcome.certificate?.renewedBy, 'you', 'the status says inferctl does not renew the user’s own');
    assert.equal(outcome.certificate.renewAt, undefined);
    assert.match(outcome.endpoint ?? '', /^https:\/\/scoring\.example\.test:\d+$/);
    assert.equal(service?.spec?.ports?.[0]?.name, 'https');
  });

  test('a retried provision step reuses the TLS Secret (same CA), also when two attempts race', async () => {
    Object.assign(process.env, suite.bed.workerEnv()); // this process plays the worker
    const target = new AksTarget(aksSettingsFromEnv());
    const name = uniqueName('aks-retry');
    const spec: DeploymentSpec = {
      name,
      target: 'aks',
      ownerId: deployWorkflowId(name),
      modelPath: suite.assets.modelPath,
      replicas: 1,
      topK: 3,
    };
    const namespace = `inferctl-${name}`;
    const secret = () => core().readNamespacedSecret({ name: `${name}-tls`, namespace });
    try {
      const first = await target.provision(spec);
      const made = await secret();
      const again = await target.provision(spec);
      assert.ok(first.tls && again.tls);
      assert.equal(again.tls.fingerprint, first.tls.fingerprint, 'the same CA');
      assert.equal((await secret()).metadata?.resourceVersion, made.metadata?.resourceVersion, 'the Secret untouched');
      assert.ok(!JSON.stringify(again).includes('PRIVATE KEY'), 'the result holds no key');

      // Two attempts that both find no Secret: one creates it, the other gets a 409 and takes that one.
      await core().deleteNamespacedSecret({ name: `${name}-tls`, namespace });
      const [a, b] = await Promise.all([target.provision(spec), target.provision(spec)]);
      assert.equal(a.tls?.fingerprint, b.tls?.fingerprint);
      assert.notEqual(a.tls?.fingerprint, first.tls.fingerprint, 'a new CA only because the Secret was deleted');
      assert.equal(
        new crypto.X509Certificate(Buffer.from((await secret()).data!['ca.crt']!, 'base64')).fingerprint256,
        a.tls?.fingerprint,
        'the fingerprint shown is the stored CA’s',
      );

      // Renewal: a new certificate and key for the same name, signed by the CA clients pinned; the CA stays.
      const before = await secret();
      const renewed = await renewTlsSecret(
        kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig),
        namespace,
        `${name}-tls`,
      );
      const after = await secret();
      const pem = (s: typeof after, key: string) => Buffer.from(s.data![key]!, 'base64').toString();
      assert.equal(pem(after, 'ca.crt'), pem(before, 'ca.crt'), 'the same CA');
      assert.equal(pem(after, 'ca.key'), pem(before, 'ca.key'));
      assert.notEqual(pem(after, 'tls.crt'), pem(before, 'tls.crt'), 'a new certificate');
      assert.equal(renewed.certPem, pem(after, 'tls.crt'));
      const leaf = new crypto.X509Certificate(pem(after, 'tls.crt'));
      assert.ok(leaf.verify(new crypto.X509Certificate(pem(after, 'ca.crt')).publicKey), 'signed by the pinned CA');
      assert.ok(leaf.checkPrivateKey(crypto.createPrivateKey(pem(after, 'tls.key'))), 'with its new key');
      assert.equal(
        leaf.checkHost(new crypto.X509Certificate(pem(before, 'tls.crt')).subjectAltName!.slice(4)) !== undefined,
        true,
      );
    } finally {
      await target.teardown(spec);
    }
    assert.ok(!suite.bed.arm.clusterNames().includes(`inferctl-${name}`));
  });
});
