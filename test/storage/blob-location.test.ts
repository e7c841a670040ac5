/** Blob locations: the three spellings parse to the same account, container and prefix; bad ones say how to write them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  BlobLocationError,
  blobChild,
  formatBlobLocation,
  isBlobLocation,
  normaliseBlobLocation,
  parseBlobLocation,
} from '../../src/storage/blob-location';
import { resolveOutputTemplate } from '../../src/shared/output-template';

describe('blob locations', () => {
  test('az://, the https blob URL and a path-style endpoint', () => {
    assert.deepEqual(parseBlobLocation('az://acct01/images/2026/day 1'), {
      account: 'acct01',
      container: 'images',
      prefix: '2026/day 1',
    });
    assert.deepEqual(parseBlobLocation('https://acct01.blob.core.windows.net/images/2026/day%201'), {
      account: 'acct01',
      container: 'images',
      prefix: '2026/day 1',
      endpoint: 'https://acct01.blob.core.windows.net',
    });
    assert.deepEqual(parseBlobLocation('http://127.0.0.1:10000/devstoreaccount1/images'), {
      account: 'devstoreaccount1',
      container: 'images',
      prefix: '',
      endpoint: 'http://127.0.0.1:10000/devstoreaccount1',
    });
    assert.equal(formatBlobLocation(parseBlobLocation('az://acct01/images/a b/c.jpg')), 'az://acct01/images/a b/c.jpg');
    assert.equal(
      formatBlobLocation(blobChild(parseBlobLocation('http://127.0.0.1:10000/devstoreaccount1/out/run/'), 'shards')),
      'http://127.0.0.1:10000/devstoreaccount1/out/run/shards',
    );
    assert.equal(isBlobLocation('/data/images'), false);
    assert.equal(isBlobLocation('az://a/b'), true);
  });

  test('an output template resolves on the blob prefix', () => {
    const at = new Date('2026-11-24T02:00:00Z');
    assert.equal(normaliseBlobLocation('az://acct01/scores/nightly/{date}'), 'az://acct01/scores/nightly/{date}');
    assert.equal(formatBlobLocation(parseBlobLocation('az://acct01/c1c/100%25')), 'az://acct01/c1c/100%25');
    const resolved = resolveOutputTemplate('az://acct01/scores/nightly/{date}', at);
    assert.equal(resolved, 'az://acct01/scores/nightly/2026-11-24');
    assert.equal(parseBlobLocation(resolved).prefix, 'nightly/2026-11-24');
  });

  test('bad locations are refused with the way to write them; a SAS never goes in the URL', () => {
    const refused = (s: string, why: RegExp) =>
      assert.throws(
        () => parseBlobLocation(s),
        (err: unknown) =>
          err instanceof BlobLocationError && why.test(err.message) && /az:\/\/<account>/.test(err.message),
      );
    refused('az://Bad_Account/c/p', /not a storage account name/);
    refused('az://acct01', /no container/);
    refused('az://acct01/UPPER/p', /not a container name/);
    refused(
      'https://acct01.blob.core.windows.net/c1c/p?sv=2024-01-01&sig=secret',
      /SAS token.*AZURE_STORAGE_SAS_TOKEN/,
    );
  });
});
