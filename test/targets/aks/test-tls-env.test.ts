/**
 * The test run's trust bundle keeps the CAs the operator had set: run-tests once replaced NODE_EXTRA_CA_CERTS
 * with the run's certificate, which cut the aks image build double's `npm ci` off from a registry reached
 * through a TLS-inspecting proxy (SELF_SIGNED_CERT_IN_CHAIN) whenever package-lock.json changed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';

import { ensureTestTls, testTlsEnv, testTlsFromEnv } from '../../helpers/azure/test-tls';

const pemBlocks = (text: string): string[] => [
  ...(text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []),
];

describe('the test run’s TLS environment', () => {
  const saved = process.env.NODE_EXTRA_CA_CERTS;
  afterEach(() => {
    if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = saved;
  });

  test('NODE_EXTRA_CA_CERTS is the operator’s CAs followed by the run’s certificate; the certificate is named apart', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-tls-env-'));
    try {
      const proxy = ensureTestTls(path.join(dir, 'proxy')); // stands for a proxy's CA the operator trusts
      const run = ensureTestTls(path.join(dir, 'run'));
      process.env.NODE_EXTRA_CA_CERTS = proxy.certFile;
      const env = testTlsEnv(run, dir);
      const bundle = pemBlocks(fs.readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8'));
      assert.deepEqual(bundle, [
        ...pemBlocks(fs.readFileSync(proxy.certFile, 'utf8')),
        ...pemBlocks(fs.readFileSync(run.certFile, 'utf8')),
      ]);
      assert.equal(env.INFERCTL_TEST_TLS_CERT, run.certFile);
      assert.equal(env.INFERCTL_TEST_TLS_KEY, run.keyFile);

      delete process.env.NODE_EXTRA_CA_CERTS; // none set: the bundle is the certificate alone
      const alone = testTlsEnv(run, path.join(dir, 'run'));
      assert.deepEqual(
        pemBlocks(fs.readFileSync(alone.NODE_EXTRA_CA_CERTS!, 'utf8')),
        pemBlocks(fs.readFileSync(run.certFile, 'utf8')),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('this run’s processes trust its certificate through the bundle', () => {
    const { certFile } = testTlsFromEnv();
    const trusted = pemBlocks(fs.readFileSync(saved!, 'utf8'));
    for (const block of pemBlocks(fs.readFileSync(certFile, 'utf8'))) assert.ok(trusted.includes(block));
  });
});
