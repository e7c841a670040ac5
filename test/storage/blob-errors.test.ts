/**
 * What Blob Storage refusals become (against Azurite, strict mode): a missing container and a SAS
 * without write permission are permanent StorageErrors of a stable type whose message says what the
 * user must do; a missing input blob is an `unreadable` input, not a failed shard.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { StorageError } from '../../src/storage/blob-client';
import { listBlobInputs } from '../../src/storage/blob-listing';
import { parseBlobLocation } from '../../src/storage/blob-location';
import { BlobBatchOutput } from '../../src/storage/blob-output';
import { InputPrefetcher } from '../../src/storage/blob-reader';
import { ImageError } from '../../src/errors';
import { FailureType } from '../../src/shared/failure-types';
import { useAzurite } from '../helpers/azurite';

describe('Blob Storage errors', () => {
  const azurite = useAzurite();

  const refused = (type: string, what: RegExp) => (err: unknown) => {
    assert.ok(err instanceof StorageError, `a StorageError, got ${String(err)}`);
    assert.equal(err.type, type);
    assert.match(err.message, what);
    return true;
  };

  test('missing container, read-only SAS, missing blob', async () => {
    await azurite.container('readonly');
    await azurite.put('readonly', 'in/a.jpg', 'x');
    // az:// locations: this process reaches Azurite with the account key (clients are made on first use).
    process.env.AZURE_STORAGE_CONNECTION_STRING = azurite.connectionString;
    await assert.rejects(
      new BlobBatchOutput(azurite.url('missing', 'out')).checkWritable(),
      refused(FailureType.StorageContainerNotFound, /container "missing" does not exist.*az storage container create/),
    );
    const listing = listBlobInputs(parseBlobLocation(azurite.url('missing', 'in')));
    await assert.rejects(listing.next(), refused(FailureType.StorageContainerNotFound, /list the inputs/));

    // Locations on Azurite's endpoint, known by a read-and-list SAS only.
    process.env.AZURE_STORAGE_CONNECTION_STRING = '';
    process.env.AZURE_STORAGE_SAS_TOKEN = azurite.sas('rl');
    process.env.INFERCTL_BLOB_ENDPOINTS = azurite.endpoint; // the operator names Azurite: the SAS may go there
    await assert.rejects(
      new BlobBatchOutput(azurite.httpUrl('readonly', 'out')).checkWritable(),
      refused(
        FailureType.StorageAccessDenied,
        /refused access.*Storage Blob Data Contributor.*SAS needs read, list, write/,
      ),
    );

    const inputs = [azurite.httpUrl('readonly', 'in/a.jpg'), azurite.httpUrl('readonly', 'in/gone.jpg')];
    const reader = new InputPrefetcher(inputs);
    assert.equal((await reader.read(inputs[0]!, 0)).toString(), 'x');
    await assert.rejects(
      reader.read(inputs[1]!, 1),
      (err: unknown) => err instanceof ImageError && err.reason === 'unreadable',
    );
  });
});
