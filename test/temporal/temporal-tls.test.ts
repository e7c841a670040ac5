/**
 * Temporal Cloud's way in, on this machine: TLS with an API key, and mutual TLS. The dev server speaks
 * plain gRPC only, so a gateway in front of it (test/helpers/temporal-gateway.ts) presents a server
 * certificate of a test CA and requires the API key or a client certificate that CA signed. The CLI, the control worker and the GPU
 * worker connect through it with the SDK's environment configuration (TEMPORAL_TLS_*, TEMPORAL_API_KEY),
 * and are refused without the key or the certificate.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { recordReliability } from '../helpers/reliability';
import { startTemporalGateway } from '../helpers/temporal-gateway';
import type { Gateway } from '../helpers/temporal-gateway';
import { demoAssets, requireTemporalAddress, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';

const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');

/**
 * A CA, a server certificate (localhost, 127.0.0.1) and a client certificate it signed, all X.509 v3: the
 * Rust core's TLS (rustls) refuses a self-signed certificate used as its own CA, and v1 certificates.
 */
function certificates(dir: string) {
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem')].concat([
      '-days',
      '2',
      '-subj',
      '/CN=inferctl-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ]),
  );
  const issue = (name: string, cn: string, ext: string) => {
    fs.writeFileSync(f(`${name}.ext`), `basicConstraints=CA:FALSE\n${ext}\n`);
    run(
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`)].concat([
        '-subj',
        `/CN=${cn}`,
      ]),
    );
    run(
      ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial'].concat([
        '-out',
        f(`${name}.pem`),
        '-days',
        '2',
        '-extfile',
        f(`${name}.ext`),
      ]),
    );
    return { cert: f(`${name}.pem`), key: f(`${name}.key`) };
  };
  return {
    ca: f('ca.pem'),
    server: issue('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'),
    client: issue('client', 'worker', 'extendedKeyUsage=clientAuth'),
  };
}

async function inferctl(args: string[], env: NodeJS.ProcessEnv) {
  return promisify(execFile)(process.execPath, [BIN, ...args], { env, timeout: 120_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );
}

describe('Temporal over TLS with an API key, and over mutual TLS', () => {
  const apiKey = `test-api-key-${uniqueName('k')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-temporal-tls-'));
  let certs: ReturnType<typeof certificates>;
  let withKey: Gateway;
  let mutual: Gateway;

  /** The SDK's environment configuration for `gateway`; the rest of the environment without TEMPORAL_*. */
  const envFor = (gateway: Gateway, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
    return {
      ...base,
      TEMPORAL_CLI_PATH: process.env.TEMPORAL_CLI_PATH,
      TEMPORAL_ADDRESS: gateway.address,
      TEMPORAL_NAMESPACE: process.env.TEMPORAL_NAMESPACE ?? 'default',
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
      // The CLI's Node client checks the server against its own roots too.
      NODE_EXTRA_CA_CERTS: certs.ca,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
      ...extra,
    };
  };

  before(async () => {
    certs = certificates(dir);
    const server = { key: fs.readFileSync(certs.server.key), cert: fs.readFileSync(certs.server.cert) };
    withKey = await startTemporalGateway({ target: requireTemporalAddress(), ...server, apiKey });
    mutual = await startTemporalGateway({
      target: requireTemporalAddress(),
      ...server,
      clientCa: fs.readFileSync(certs.ca),
    });
  });
  after(async () => {
    await withKey?.stop();
    await mutual?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('TLS + API key: the CLI deploys through a control worker, and a GPU worker polls; a wrong key is refused', async () => {
    const env = envFor(withKey, { TEMPORAL_API_KEY: apiKey });
    const queue = uniqueName('tls-tq');
    const control = await startControlWorker(queue, [], env);
    const gpu = await startGpuWorker(uniqueName('tls-gpu-tq'), [], env);
    try {
      const assets = await demoAssets();
      const name = uniqueName('tls');
      const args = ['deploy', '--model', assets.modelPath, '--name', name, '--ttl', '1s', '--follow', '--json'];
      const run = await inferctl([...args, '--task-queue', queue], env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /"stage":\s*"done"/, run.stdout);
      assert.ok(withKey.forwardedCalls() > 0);

      const refusedBefore = withKey.refusedCalls();
      const wrong = await inferctl(['list', '--json'], envFor(withKey, { TEMPORAL_API_KEY: 'not-the-key' }));
      const none = await inferctl(['list', '--json'], envFor(withKey, {}));
      assert.notEqual(wrong.code, 0);
      assert.notEqual(none.code, 0);
      assert.match(wrong.stderr, /Cannot reach Temporal .*TEMPORAL_API_KEY/);
      assert.match(none.stderr, /Cannot reach Temporal .*TEMPORAL_API_KEY/);
      assert.ok(withKey.refusedCalls() >= refusedBefore + 2);
      recordReliability({
        test: 'Temporal TLS + API key: calls without the key',
        faultsInjected: 0,
        survived: true,
        attack: 'temporal-without-api-key',
        attacksTried: 2,
        attacksRefused: [wrong, none].filter((r) => r.code !== 0).length,
      });
    } finally {
      await gpu.stop();
      await control.stop();
    }
  });

  test('mutual TLS: the CLI and both workers connect with the client certificate; without it the handshake fails', async () => {
    const env = envFor(mutual, {
      TEMPORAL_TLS_CLIENT_CERT_PATH: certs.client.cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: certs.client.key,
    });
    const queue = uniqueName('mtls-tq');
    const control = await startControlWorker(queue, [], env);
    const gpu = await startGpuWorker(uniqueName('mtls-gpu-tq'), [], env);
    try {
      const listed = await inferctl(['list', '--json'], env);
      assert.equal(listed.code, 0, listed.stderr);
      const anonymous = await inferctl(['list', '--json'], envFor(mutual, {}));
      assert.notEqual(anonymous.code, 0);
      assert.match(anonymous.stderr, /Cannot reach Temporal/);
      await assert.rejects(startControlWorker(uniqueName('mtls-anon-tq'), [], envFor(mutual, {})));
      recordReliability({
        test: 'Temporal mTLS: a client and a worker without a client certificate',
        faultsInjected: 0,
        survived: true,
        attack: 'temporal-without-client-certificate',
        attacksTried: 2,
        attacksRefused: 2,
      });
    } finally {
      await gpu.stop();
      await control.stop();
    }
  });
});
