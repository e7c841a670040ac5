/**
 * No storage credential goes to a host the operator did not name. A loopback "attacker" server stands
 * where a manifest line or an --input would point; Azurite is the real storage. Locations on the attacker
 * (path-style, with the workers' account name or another one, an https look-alike of an Azure host, an
 * http Azure host) are refused before any client exists, whatever credential the worker holds (a SAS, an
 * account-key connection string); the attacker receives no request at all. Azurite, named by the
 * operator (INFERCTL_BLOB_ENDPOINTS) or by the connection string's own BlobEndpoint, keeps working. A
 * batch job naming the attacker is refused at validation, saying what to set.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { BlobEndpointNotAllowedError, isTrustedEndpoint } from '../../src/storage/blob-client';
import { BlobBatchOutput } from '../../src/storage/blob-output';
import { InputPrefetcher } from '../../src/storage/blob-reader';
import { FailureType } from '../../src/shared/failure-types';
import { useAzurite } from '../helpers/azurite';
import { expectWorkflowFailure } from '../helpers/failure-chain';
import { recordReliability } from '../helpers/reliability';
import { workflowSuite } from '../helpers/workflow-suite';

describe('blob endpoints that may receive credentials', () => {
  const azurite = useAzurite();
  let attacker: http.Server;
  let evil = '';
  const received: Array<{ url: string; authorization?: string }> = [];
  const saved = { ...process.env };

  before(async () => {
    attacker = http.createServer((req, res) => {
      received.push({ url: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(200, { 'content-length': '1' });
      res.end('x');
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    evil = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  });
  after(() => {
    attacker.close();
    process.env = saved;
  });

  const withCredential = /sig=|SharedKey|Bearer/;
  const credentialed = () =>
    received.filter((r) => withCredential.test(r.url) || withCredential.test(r.authorization ?? ''));

  test('locations on another host are refused whatever the worker holds; named endpoints work', async () => {
    await azurite.container('real');
    await azurite.put('real', 'in/a.jpg', 'real bytes');
    const attacks = [
      `${evil}/devstoreaccount1/real/in/a.jpg`, // the workers' own account name, another host
      `${evil}/evilacct/loot/in/a.jpg`, // another account: would have fallen through to the SAS or a token
      'https://devstoreaccount1.blob.core.windows.net.127.0.0.1.nip.io/devstoreaccount1/real/a.jpg', // an Azure look-alike
      'http://devstoreaccount1.blob.core.windows.net/real/a.jpg', // Azure's host, but in clear text
      `${evil.replace('http://', 'http://user:pw@')}/devstoreaccount1/real/a.jpg`,
    ];
    let tried = 0;
    let refused = 0;
    const credentials: Array<[string, NodeJS.ProcessEnv]> = [
      ['a SAS', { AZURE_STORAGE_CONNECTION_STRING: '', AZURE_STORAGE_SAS_TOKEN: azurite.sas('rl') }],
      ['a connection string and a SAS', { ...azurite.env, AZURE_STORAGE_SAS_TOKEN: azurite.sas('rl') }],
    ];
    for (const [held, env] of credentials) {
      process.env = { ...saved, INFERCTL_BLOB_ENDPOINTS: '', ...env };
      for (const url of attacks) {
        tried++;
        // An input read (a manifest line): that input's error, never a request.
        await assert.rejects(new InputPrefetcher([url]).read(url, 0), (err: unknown) => {
          assert.ok(err instanceof BlobEndpointNotAllowedError, `${url} with ${held}: ${String(err)}`);
          assert.equal(err.type, FailureType.BlobEndpointNotAllowed);
          assert.match(err.message, /INFERCTL_BLOB_ENDPOINTS=/);
          return true;
        });
        // An output: refused before anything is written.
        await assert.rejects(
          new BlobBatchOutput(url.replace(/\/[^/]*$/, '/out')).checkWritable(),
          BlobEndpointNotAllowedError,
        );
        refused++;
      }
    }
    assert.deepEqual(received, [], 'the attacker received no request');

    // Named endpoints still receive what they need: the connection string's own BlobEndpoint…
    process.env = { ...saved, INFERCTL_BLOB_ENDPOINTS: '', ...azurite.env };
    const viaConnection = azurite.httpUrl('real', 'in/a.jpg');
    assert.equal((await new InputPrefetcher([viaConnection]).read(viaConnection, 0)).toString(), 'real bytes');
    // …and an endpoint the operator names, with a SAS alone.
    process.env = { ...saved, AZURE_STORAGE_CONNECTION_STRING: '', AZURE_STORAGE_SAS_TOKEN: azurite.sas('rl') };
    const url = azurite.httpUrl('real', 'in/a.jpg');
    await assert.rejects(new InputPrefetcher([url]).read(url, 0), BlobEndpointNotAllowedError, 'not named yet');
    process.env.INFERCTL_BLOB_ENDPOINTS = `https://example.invalid, ${new URL(azurite.endpoint).origin}`;
    assert.equal((await new InputPrefetcher([url]).read(url, 0)).toString(), 'real bytes');
    assert.ok(isTrustedEndpoint('https://myaccount.blob.core.usgovcloudapi.net'), 'a sovereign cloud’s endpoint');
    assert.ok(!isTrustedEndpoint('https://myaccount.blob.core.windows.net:8443'), 'not on another port');
    assert.deepEqual(credentialed(), []);
    process.env = { ...saved };
    recordReliability({
      test: 'credential-harvest blob URLs',
      faultsInjected: 0,
      survived: true,
      attack: 'credential-harvest-url',
      attacksTried: tried,
      attacksRefused: refused,
    });
  });

  describe('a batch job naming another host', () => {
    const sas = () => ({ AZURE_STORAGE_SAS_TOKEN: azurite.sas('rl'), AZURE_STORAGE_CONNECTION_STRING: '' });
    const suite = workflowSuite('blob-endpoints', { control: false });

    test('is refused at validation, saying what to set; the attacker hears nothing', async () => {
      await suite.startControlWorker({ env: sas() });
      {
        const handle = await suite.startBatch(
          suite.batchInput({
            inputPath: `${evil}/devstoreaccount1/real/in`,
            outputDir: `${evil}/devstoreaccount1/real/out`,
          }),
        );
        const { activity, root } = await expectWorkflowFailure(handle, 'the job');
        assert.equal(activity?.activityType, 'prepareBatch');
        assert.equal(root.type, FailureType.InvalidBatchJob);
        assert.match(
          root.message,
          /not an Azure Blob Storage endpoint.*INFERCTL_BLOB_ENDPOINTS=http:\/\/127\.0\.0\.1:\d+/,
        );
        assert.deepEqual(received, [], 'the attacker received no request');
        recordReliability({
          test: 'batch job naming an attacker endpoint',
          faultsInjected: 0,
          survived: true,
          attack: 'credential-harvest-url',
          attacksTried: 1,
          attacksRefused: 1,
        });
      }
    });
  });
});
