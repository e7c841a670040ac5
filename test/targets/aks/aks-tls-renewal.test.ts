/**
 * The endpoint certificate is renewed while a deployment serves (`--ttl none`), on the aks testbed (real
 * control plane and controller-manager, the kubelet stand-in running the scoring servers as processes, the
 * load balancer double). The worker makes server certificates that last 150 seconds
 * (INFERCTL_AKS_CERT_VALIDITY_SECONDS, for tests only), so the workflow's timer fires a minute and a half in:
 * the certificate served afterwards is new (another fingerprint, a later notAfter) and signed by the same CA,
 * a client that trusts only that CA (what --tls-ca-out writes) keeps working, and a client loop sending
 * requests throughout sees no failed request while the pods are restarted onto it. The status shows the
 * expiry and the renewal (through `inferctl status`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { describe, test } from 'node:test';

import { AppsV1Api } from '@kubernetes/client-node';

import { deployWorkflowId } from '../../../src/shared/deploy-types';
import type { DeployInput, DeployStatus } from '../../../src/shared/deploy-types';
import { kubeConfigFromYaml, readApiKey } from '../../../src/targets/aks/kubernetes-deployment';
import { CERTIFICATE_ANNOTATION } from '../../../src/targets/aks/tls-renewal';
import { endpointRequest } from '../../../src/targets/endpoint-request';
import type { EndpointAccess } from '../../../src/targets/target';
import { deploy, statusQuery, teardownUpdate } from '../../../workflows/deploy';
import { aksSuite } from '../../helpers/azure/aks-suite';
import { recordFigure } from '../../helpers/reliability';
import { eventually, uniqueName } from '../../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'inferctl.js');
const VALIDITY_SECONDS = 150;

/** The certificate a fresh TLS handshake gets, verified against `access.tls` (the pinned CA) alone. */
function servedCertificate(access: EndpointAccess): Promise<crypto.X509Certificate> {
  const url = new URL(access.endpoint);
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: access.connectTo, port: Number(url.port || 443), servername: access.tls!.servername, ca: access.tls!.ca },
      () => {
        const cert = socket.getPeerX509Certificate();
        socket.end();
        if (cert) resolve(cert);
        else reject(new Error('no peer certificate'));
      },
    );
    socket.on('error', reject);
  });
}

describe('aks: the endpoint certificate is renewed while serving', () => {
  const suite = aksSuite('aks-renew-tq', { INFERCTL_AKS_CERT_VALIDITY_SECONDS: String(VALIDITY_SECONDS) });

  function inferctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { timeout: 120_000, env: suite.workerEnv() }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  }

  test('a new certificate under the same CA, the pods restarted onto it, no request failed', async () => {
    const name = uniqueName('aks-renew');
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
          ttlSeconds: null,
          smoke: { samplePath: red.path, expectedLabel: 'red' },
          timings: { readyTimeoutSeconds: 120, readinessPollSeconds: 0.2 },
          aks: { gpuNodeCount: 2 }, // a spare GPU: the restart starts the new pod before the old one stops
        } satisfies DeployInput,
      ],
    });
    const status = () => handle.query(statusQuery);
    const serving: DeployStatus = await eventually(
      async () => {
        const s = await status();
        if (s.stage === 'failed') throw new Error(`deployment failed: ${s.lastError}`);
        return s.stage === 'serving' ? s : undefined;
      },
      'the AKS deployment to serve',
      240_000,
    );
    assert.equal(serving.tls?.source, 'deployment-ca');
    assert.equal(serving.certificate?.renewedBy, 'inferctl');
    assert.equal(serving.certificate.expiresAt, serving.tls.notAfter);
    assert.equal(serving.certificate.renewals, 0, 'not renewed yet');

    // A client that trusts only the CA the deployment showed (what --tls-ca-out writes), nothing from the Secret.
    const kc = kubeConfigFromYaml(suite.bed.controlPlane.kubeconfig);
    const frontend = suite.bed.lb.frontends.frontends.get(`inferctl-${name}/${name}`)!;
    const access: EndpointAccess = {
      endpoint: serving.endpoint!,
      apiKey: (await readApiKey(kc, `inferctl-${name}`, name))!,
      connectTo: frontend.ip,
      tls: { ca: serving.tls.caPem!, servername: serving.tls.hostname },
    };
    const first = await servedCertificate(access);
    assert.equal(new Date(first.validTo).toISOString(), serving.tls.notAfter, 'the status names the served one');

    // Requests, two at a time, each on a new connection (a new handshake), until the renewal is over.
    const image = await fs.readFile(red.path);
    const answers: Array<{ status: number; error?: string }> = [];
    let running = true;
    const client = async () => {
      while (running) {
        try {
          const res = await endpointRequest(access, '/score', {
            method: 'POST',
            body: image,
            headers: { authorization: `Bearer ${access.apiKey}`, 'content-type': 'image/jpeg' },
          });
          answers.push({ status: res.status });
        } catch (err) {
          answers.push({ status: 0, error: `${new Date().toISOString()} ${String(err)}` });
        }
      }
    };
    const loopFrom = new Date().toISOString();
    const loop = Promise.all([client(), client()]);
    const renewed = await eventually(
      async () => {
        const s = await status();
        return (s.certificate?.renewals ?? 0) >= 1 ? s : undefined;
      },
      'the certificate renewed',
      (VALIDITY_SECONDS + 60) * 1000,
    );
    const during = answers.length;
    await new Promise((resolve) => setTimeout(resolve, 2000)); // and a moment on the new pods
    running = false;
    await loop;

    const failed = answers.filter((a) => a.status !== 200);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${answers.length} requests failed`);
    assert.ok(during >= 20, `the loop ran throughout the renewal (${during} requests)`);
    const step = renewed.steps.find((s) => s.step === 'renew-certificate');
    assert.equal(step?.ok, true);
    assert.ok(step.startedAt > loopFrom, `the renewal (${step.startedAt}) began after the loop (${loopFrom})`);
    assert.match(step.detail ?? '', new RegExp(`^renewed: expires .*, restarted ${name}$`));
    recordFigure({
      test: 'aks-tls-renewal.test.ts',
      figure:
        'aks testbed certificate renewal: requests from serving until the renewed pods ran (1 replica, spare GPU), all 200',
      value: during,
      unit: 'requests',
    });

    // The certificate served now is new, later, under the same CA; the status says so.
    const second = await servedCertificate(access);
    assert.notEqual(second.fingerprint256, first.fingerprint256, 'a new certificate');
    assert.ok(Date.parse(second.validTo) > Date.parse(first.validTo), 'a later expiry');
    assert.ok(second.verify(new crypto.X509Certificate(serving.tls.caPem!).publicKey), 'signed by the same CA');
    assert.equal(second.checkHost(serving.tls.hostname), serving.tls.hostname);
    assert.equal(renewed.tls?.fingerprint, serving.tls.fingerprint, 'clients keep trusting the same CA');
    assert.equal(renewed.tls?.notAfter, new Date(second.validTo).toISOString());
    assert.equal(renewed.certificate?.expiresAt, renewed.tls?.notAfter);
    assert.ok(renewed.certificate?.lastRenewedAt && renewed.certificate.renewAt! > renewed.certificate.lastRenewedAt);

    // The pods run it: the template names its fingerprint; the strategy is back to one GPU per replica.
    const deployment = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name, namespace: `inferctl-${name}` });
    assert.equal(deployment.spec?.template.metadata?.annotations?.[CERTIFICATE_ANNOTATION], second.fingerprint256);
    assert.deepEqual({ ...deployment.spec?.strategy?.rollingUpdate }, { maxSurge: 0, maxUnavailable: 1 });

    const shown = await inferctl(['status', name]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /certificate expires \S+, renewed at \S+, last renewed \S+/);

    await handle.executeUpdate(teardownUpdate, { args: [{}] });
    const outcome = await handle.result();
    assert.equal(outcome.stage, 'done', outcome.lastError);
    assert.ok(!(await suite.bed.namespaces()).includes(`inferctl-${name}`), 'the namespace is gone');
  });
});
