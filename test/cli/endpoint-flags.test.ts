/**
 * The aks endpoint flags of `inferctl deploy`, checked before anything starts: aks only, no
 * contradictions, --tls-ca-out only when following; and the CA file and line the CLI gives users.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { CliError } from '../../src/cli/cli-error';
import { checkEndpointFlags, describeTls, endpointOptions, writeCa } from '../../src/cli/endpoint-flags';
import { createOutput } from '../../src/cli/output';
import type { DeployStatus } from '../../src/shared/deploy-types';

describe('deploy endpoint flags', () => {
  test('aks only, no contradictions, files made absolute, --tls-ca-out needs to follow', () => {
    assert.throws(() => checkEndpointFlags('local', { internal: true }, {}), CliError);
    assert.throws(() => checkEndpointFlags('local', {}, { tlsCaOut: 'ca.pem' }), /for --target aks/);
    assert.throws(() => checkEndpointFlags('aks', {}, { tlsCaOut: 'ca.pem', detach: true }), /drop --detach/);
    const options = endpointOptions({ tlsCert: 'c.pem', insecureHttp: true });
    assert.equal(options.tlsCertPath, path.resolve('c.pem'));
    assert.throws(
      () => checkEndpointFlags('aks', options, {}),
      /--tls-cert and --tls-key go together; --insecure-http and a certificate contradict/,
    );
    assert.doesNotThrow(() => checkEndpointFlags('aks', endpointOptions({ internal: true }), { tlsCaOut: 'x' }));
    assert.doesNotThrow(() => checkEndpointFlags('local', {}, {}));
  });

  test('--tls-ca-out writes the deployment CA; the TLS line names the host and fingerprint', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-ca-out-'));
    try {
      const tls = {
        source: 'deployment-ca' as const,
        hostname: 'inferctl-x-1.eastus.cloudapp.azure.com',
        fingerprint: 'AB:CD',
        caPem: '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n',
        notAfter: '2027-12-01T00:00:00.000Z',
      };
      const status = { name: 'x', endpoint: `https://${tls.hostname}`, tls } as DeployStatus;
      const file = path.join(dir, 'ca.pem');
      writeCa(file, status, createOutput(true));
      assert.equal(fs.readFileSync(file, 'utf8'), tls.caPem);
      assert.match(describeTls(tls), /inferctl-x-1\.eastus\.cloudapp\.azure\.com .*own CA, SHA-256 AB:CD/);
      const own = path.join(dir, 'own.pem');
      writeCa(own, { ...status, tls: { ...tls, source: 'user-certificate', caPem: undefined } }, createOutput(true));
      assert.equal(fs.existsSync(own), false, 'nothing to write for the user’s own certificate');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
