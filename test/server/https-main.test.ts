/**
 * The replica process over HTTPS (--tls-cert/--tls-key), spawned for real with a per-deployment
 * certificate: a client pinned to the deployment's CA and name gets answers; a client without that CA,
 * with another deployment's CA or expecting another name is refused in the handshake; plain HTTP gets no
 * answer; a TLS key others can read, a key that is not the certificate's, or half the pair stops startup.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { makeColourJpeg } from '../../src/demo/sample-images';
import { buildTinyCnn } from '../../src/demo/tiny-cnn';
import { SERVER_MAIN, runServerMain } from '../helpers/server-main';
import { mintDeploymentCertificate } from '../../src/targets/aks/tls-certificate';
import { endpointRequest } from '../../src/targets/endpoint-request';

const KEY = 'https-test-key';
const DNS_NAME = 'inferctl-https-0000beef.eastus.cloudapp.azure.com';

describe('scoring server process over HTTPS', () => {
  let dir: string;
  let modelPath: string;
  let keyFile: string;
  let minted: Awaited<ReturnType<typeof mintDeploymentCertificate>>;
  let certFile: string;
  let tlsKeyFile: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-https-'));
    modelPath = path.join(dir, 'tiny.onnx');
    await fs.writeFile(modelPath, buildTinyCnn());
    keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
    minted = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'https' });
    certFile = path.join(dir, 'tls.crt');
    tlsKeyFile = path.join(dir, 'tls.key');
    await fs.writeFile(certFile, minted.certPem);
    await fs.writeFile(tlsKeyFile, minted.keyPem, { mode: 0o600 });
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  test('serves HTTPS that only a client pinned to the deployment CA and name accepts', async () => {
    const readyFile = path.join(dir, 'ready.json');
    const args = ['--model', modelPath, '--api-key-file', keyFile, '--ready-file', readyFile];
    const child = spawn(process.execPath, [SERVER_MAIN, ...args, '--tls-cert', certFile, '--tls-key', tlsKeyFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let ready: { port: number; url: string } | undefined;
      for (let i = 0; i < 200 && !ready && child.exitCode === null; i++) {
        ready = await fs.readFile(readyFile, 'utf8').then(
          (t) => JSON.parse(t) as { port: number; url: string },
          () => undefined,
        );
        if (!ready) await delay(50);
      }
      assert.ok(ready, `ready file written (stderr: ${stderr})`);
      assert.equal(ready.url, `https://127.0.0.1:${ready.port}`);

      // The endpoint as a deployment reports it: its DNS name, reached at the load balancer's address.
      const endpoint = `https://${DNS_NAME}:${ready.port}`;
      const pinned = { endpoint, connectTo: '127.0.0.1', tls: { ca: minted.caPem, servername: DNS_NAME } };
      const body = await makeColourJpeg('cyan');
      const scored = await endpointRequest(pinned, '/score', {
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${KEY}` },
      });
      assert.equal(scored.status, 200, scored.text);
      assert.equal((JSON.parse(scored.text) as { predictions: { label: string }[] }).predictions[0]?.label, 'cyan');
      assert.equal((await endpointRequest(pinned, '/score', { method: 'POST', body })).status, 401);

      // Without the CA (the system's roots, plus the test run's own CA), the handshake fails.
      await assert.rejects(endpointRequest({ endpoint, connectTo: '127.0.0.1' }, '/healthz', { method: 'GET' }), {
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
      await assert.rejects(fetch(`${ready.url}/healthz`), 'fetch with the default trust refuses it too');
      const stranger = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'other' });
      await assert.rejects(
        endpointRequest({ ...pinned, tls: { ca: stranger.caPem, servername: DNS_NAME } }, '/healthz', {
          method: 'GET',
        }),
        { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
        "another deployment's CA does not vouch for this server",
      );
      await assert.rejects(
        endpointRequest(
          { ...pinned, tls: { ca: minted.caPem, servername: 'inferctl-x-1.eastus.cloudapp.azure.com' } },
          '/healthz',
          { method: 'GET' },
        ),
        { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
      );
      // Pinning the server certificate itself (how a user's own certificate is checked) works too.
      const leafPinned = { ...pinned, tls: { ca: minted.certPem, servername: DNS_NAME, partialChain: true } };
      assert.equal((await endpointRequest(leafPinned, '/healthz', { method: 'GET' })).status, 200);

      // Nothing answers plain HTTP on the HTTPS port.
      await assert.rejects(
        endpointRequest({ endpoint: `http://127.0.0.1:${ready.port}` }, '/healthz', { method: 'GET' }),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a TLS key others can read, a key that is not the certificate’s, or half the pair stops startup', async () => {
    const openKey = path.join(dir, 'open-tls.key');
    await fs.writeFile(openKey, minted.keyPem);
    await fs.chmod(openKey, 0o644);
    const otherKey = path.join(dir, 'other-tls.key');
    const other = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'other' });
    await fs.writeFile(otherKey, other.keyPem, { mode: 0o600 });
    const base = ['--model', modelPath, '--api-key-file', keyFile];
    const cases: Array<[string[], RegExp]> = [
      [[...base, '--tls-cert', certFile, '--tls-key', openKey], /TLS key file .* readable by others \(mode 644\)/],
      [
        [...base, '--tls-cert', certFile, '--tls-key', otherKey],
        /cannot use the TLS certificate .*key values mismatch/,
      ],
      [[...base, '--tls-cert', certFile], /--tls-cert and --tls-key go together/],
      [[...base, '--tls-key', tlsKeyFile], /--tls-cert and --tls-key go together/],
      [[...base, '--tls-cert', path.join(dir, 'none.crt'), '--tls-key', tlsKeyFile], /cannot use the TLS certificate/],
    ];
    const results = await Promise.all(cases.map(([args]) => runServerMain(args)));
    results.forEach(({ code, stderr }, i) => {
      assert.equal(code, 1, cases[i]![0].join(' '));
      assert.match(stderr, cases[i]![1]);
      assert.match(stderr, /^scoring server: [^\n]+\n$/, `one line: ${JSON.stringify(stderr)}`);
    });
  });
});
