/**
 * A self-signed certificate for the local ARM endpoint. The Azure SDK refuses to send bearer tokens over
 * plain http, so the endpoint speaks TLS like the real one; test processes trust the certificate through
 * NODE_EXTRA_CA_CERTS, which scripts/run-tests.ts sets before any test process starts (`testTlsEnv`): a bundle
 * of the extra CAs the operator had already set (a proxy's, through which npm reaches the registry: the aks
 * image build double's `npm ci` needs it) and this certificate, named by INFERCTL_TEST_TLS_CERT.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestTls {
  keyFile: string;
  certFile: string;
}

/** Creates `key.pem` and `cert.pem` (CN localhost, SAN 127.0.0.1) in `dir` unless they already exist. */
export function ensureTestTls(dir: string): TestTls {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  if (fs.existsSync(keyFile) && fs.existsSync(certFile)) return { keyFile, certFile };
  fs.mkdirSync(dir, { recursive: true });
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '7',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'pipe' },
  );
  return { keyFile, certFile };
}

/**
 * The environment of a test run's processes: the certificate and its key, and NODE_EXTRA_CA_CERTS a bundle in
 * `dir` of the CAs already in NODE_EXTRA_CA_CERTS (kept: replacing them cuts npm off from a registry reached
 * through a TLS-inspecting proxy) followed by the certificate.
 */
export function testTlsEnv(tls: TestTls, dir: string): Record<string, string> {
  const own = process.env.NODE_EXTRA_CA_CERTS;
  const kept = own && own !== tls.certFile && fs.existsSync(own) ? fs.readFileSync(own, 'utf8') : '';
  const bundle = path.join(dir, 'trusted.pem');
  const parts = [kept, fs.readFileSync(tls.certFile, 'utf8')].filter((p) => p.trim() !== '');
  fs.writeFileSync(bundle, parts.map((p) => `${p.trimEnd()}\n`).join(''));
  return { NODE_EXTRA_CA_CERTS: bundle, INFERCTL_TEST_TLS_CERT: tls.certFile, INFERCTL_TEST_TLS_KEY: tls.keyFile };
}

/** The certificate run-tests created for this run, or a clear error when run outside `npm test`. */
export function testTlsFromEnv(): TestTls {
  const certFile = process.env.INFERCTL_TEST_TLS_CERT;
  const keyFile = process.env.INFERCTL_TEST_TLS_KEY;
  if (!certFile || !keyFile) {
    throw new Error('INFERCTL_TEST_TLS_CERT / INFERCTL_TEST_TLS_KEY are not set: run the tests with `npm test`.');
  }
  return { keyFile, certFile };
}
