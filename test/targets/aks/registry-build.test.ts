/**
 * The image build's upload, with the real clients against the local ARM endpoint: the build context goes
 * up through @azure/storage-blob's BlockBlobClient with the headers Azure Blob requires; the blob double
 * answers as Azure does and refuses what Azure refuses; an upload refused for an expired SAS fails the
 * attempt as retryable, and the next attempt (a fresh upload URL) builds.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { isRestError } from '@azure/core-rest-pipeline';
import { BlockBlobClient } from '@azure/storage-blob';

import { aksSettingsFromEnv } from '../../../src/targets/aks/aks-config';
import type { AksSettings } from '../../../src/targets/aks/aks-config';
import { createAzureClients } from '../../../src/targets/aks/azure-clients';
import type { AzureClients } from '../../../src/targets/aks/azure-clients';
import { buildContext } from '../../../src/targets/aks/build-context';
import { buildImageInRegistry } from '../../../src/targets/aks/registry-build';
import { deleteRegistryImage, listRegistryTags } from '../../../src/targets/aks/registry-images';
import { ArmEndpoint } from '../../helpers/azure/arm-endpoint';
import { BLOB_LIMITS } from '../../helpers/azure/blob-storage';
import { TEST_LOCATION, TEST_REGISTRY, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION } from '../../helpers/azure/aks-testbed';
import { testTlsFromEnv } from '../../helpers/azure/test-tls';

const SERVED = { preprocess: Buffer.from('{}\n'), labels: Buffer.from('a\n') };

describe('image build upload through @azure/storage-blob', () => {
  let arm: ArmEndpoint;
  let clients: AzureClients;
  let settings: AksSettings;
  let dir: string;

  async function model(name: string): Promise<string> {
    const file = path.join(dir, name);
    await fs.writeFile(file, crypto.randomBytes(20_000));
    return file;
  }

  /** The RestError `promise` rejects with: its status and Azure's error code. */
  async function refusal(promise: Promise<unknown>): Promise<{ status?: number; code?: string }> {
    try {
      await promise;
    } catch (err) {
      assert.ok(isRestError(err), `a RestError, not ${String(err)}`);
      return { status: err.statusCode, code: err.code };
    }
    assert.fail('the request was accepted');
  }

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-registry-build-'));
    arm = await new ArmEndpoint({
      tls: testTlsFromEnv(),
      subscriptionId: TEST_SUBSCRIPTION,
      location: TEST_LOCATION,
      kubeconfig: '',
      registries: [`${TEST_RESOURCE_GROUP}/${TEST_REGISTRY}`],
    }).start();
    // DefaultAzureCredential reads the managed-identity variables when it is built: set them first.
    Object.assign(process.env, arm.workerEnv(TEST_RESOURCE_GROUP, TEST_REGISTRY), { INFERCTL_AKS_POLL_MS: '100' });
    settings = aksSettingsFromEnv();
    clients = createAzureClients(settings);
  });

  after(async () => {
    await arm?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the context goes up as one BlockBlob with x-ms-version, and the registry builds from it', async () => {
    const modelPath = await model('model.onnx');
    const image = await buildImageInRegistry(clients, settings, 'inferctl-scorer', modelPath, SERVED);
    assert.equal(image.reused, false);
    const context = await buildContext(modelPath, SERVED);
    assert.equal(image.digest, `sha256:${context.digest}`);

    const writes = arm.blobs.writes.filter((w) => w.path.startsWith('source/'));
    assert.equal(writes.length, 1);
    const [write] = writes;
    assert.equal(write!.operation, 'PutBlob');
    assert.equal(write!.blobType, 'BlockBlob');
    assert.match(write!.version ?? '', /^\d{4}-\d{2}-\d{2}$/, 'the SDK names its service version');
    assert.equal(write!.contentType, 'application/gzip');
    assert.equal(write!.length, context.archive.length);
    assert.ok(arm.blobs.get(write!.path)?.equals(context.archive), 'the stored blob is the context, byte for byte');
    const built = arm.images.get(`${TEST_REGISTRY}/inferctl-scorer:${context.digest}`);
    assert.ok(built?.context.equals(context.archive), 'the image was built from the uploaded context');
    assert.ok(
      arm.requests.some((r) => r.method === 'PUT' && r.path === `/_blob/${write!.path}` && r.status === 201),
      'the upload was answered 201',
    );
  });

  test('the blob double answers as Azure Blob does, single shot and in blocks', async () => {
    const data = crypto.randomBytes(5000);
    const md5 = crypto.createHash('md5').update(data).digest();
    const single = await new BlockBlobClient(arm.blobs.sasUrl('probe/one.bin', 'cw')).upload(data, data.length);
    assert.match(single.etag ?? '', /^"0x8D[0-9A-F]+"$/);
    assert.ok(single.lastModified instanceof Date && !Number.isNaN(single.lastModified.getTime()));
    assert.match(single.requestId ?? '', /^[0-9a-f-]{36}$/);
    assert.ok(single.contentMD5 && Buffer.from(single.contentMD5).equals(md5), 'Content-MD5 of the body');
    assert.equal(single.isServerEncrypted, true);
    assert.ok(arm.blobs.get('probe/one.bin')?.equals(data));

    // Past its single-shot size uploadData stages blocks and commits a block list.
    const blocks = new BlockBlobClient(arm.blobs.sasUrl('probe/blocks.bin', 'cw'));
    await blocks.uploadData(data, { maxSingleShotSize: 1024, blockSize: 1024, concurrency: 2 });
    assert.ok(arm.blobs.get('probe/blocks.bin')?.equals(data), 'the blocks, in the listed order');
    const ops = arm.blobs.writes.filter((w) => w.path === 'probe/blocks.bin').map((w) => w.operation);
    assert.deepEqual(ops, ['PutBlock', 'PutBlock', 'PutBlock', 'PutBlock', 'PutBlock', 'PutBlockList']);

    // What was written can be read back with a read SAS (how the run log is fetched).
    const read = await fetch(arm.blobs.sasUrl('probe/one.bin', 'r'));
    assert.equal(read.status, 200);
    assert.equal(read.headers.get('x-ms-blob-type'), 'BlockBlob');
    assert.ok(Buffer.from(await read.arrayBuffer()).equals(data));
  });

  test('the blob double refuses what Azure refuses', async () => {
    const data = Buffer.from('context');
    const sasFor = (blob: string, permissions = 'cw', ttlMs?: number) => arm.blobs.sasUrl(blob, permissions, ttlMs);

    // A Put Blob without x-ms-blob-type.
    const raw = await fetch(sasFor('refused/no-type.bin'), { method: 'PUT', body: data });
    assert.equal(raw.status, 400);
    assert.equal(raw.headers.get('x-ms-error-code'), 'MissingRequiredHeader');
    assert.match(await raw.text(), /<Code>MissingRequiredHeader<\/Code>/);

    // A SAS issued for another blob, used on this one.
    const other = new URL(sasFor('refused/a.bin'));
    other.pathname = other.pathname.replace('/a.bin', '/b.bin');
    assert.deepEqual(await refusal(new BlockBlobClient(other.toString()).upload(data, data.length)), {
      status: 403,
      code: 'AuthenticationFailed',
    });
    // A SAS past its expiry.
    const expired = new BlockBlobClient(sasFor('refused/late.bin', 'cw', -60_000));
    assert.deepEqual(await refusal(expired.upload(data, data.length)), { status: 403, code: 'AuthenticationFailed' });
    // A SAS whose permissions were edited (its signature no longer matches).
    const widened = new URL(sasFor('refused/read-only.bin', 'r'));
    widened.searchParams.set('sp', 'rw');
    assert.deepEqual(await refusal(new BlockBlobClient(widened.toString()).upload(data, data.length)), {
      status: 403,
      code: 'AuthenticationFailed',
    });
    // A read-only SAS, used to write; a create-only one, used to overwrite.
    const readOnly = new BlockBlobClient(sasFor('refused/read-only.bin', 'r'));
    assert.deepEqual(await refusal(readOnly.upload(data, data.length)), {
      status: 403,
      code: 'AuthorizationPermissionMismatch',
    });
    await new BlockBlobClient(sasFor('refused/once.bin', 'c')).upload(data, data.length);
    assert.deepEqual(await refusal(new BlockBlobClient(sasFor('refused/once.bin', 'c')).upload(data, data.length)), {
      status: 403,
      code: 'AuthorizationPermissionMismatch',
    });
    for (const blob of ['refused/no-type.bin', 'refused/a.bin', 'refused/b.bin', 'refused/late.bin']) {
      assert.equal(arm.blobs.get(blob), undefined, `${blob} was not written`);
    }
  });

  test('the blob double refuses a write over Azure’s size limits from its Content-Length, before its body', async () => {
    const oversized = (url: string, bytes: number) =>
      new Promise<{ status?: number; code?: string | string[] }>((resolve, reject) => {
        const target = new URL(url);
        const send = target.protocol === 'https:' ? https.request : http.request;
        const req = send(
          target,
          { method: 'PUT', headers: { 'content-length': String(bytes), 'x-ms-blob-type': 'BlockBlob' } },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode, code: res.headers['x-ms-error-code'] });
          },
        );
        req.on('error', (err) => reject(err)); // after the answer, a closed socket is expected and ignored
        req.flushHeaders(); // the headers only: a body of gigabytes is never sent
      });
    const refused = { status: 413, code: 'RequestBodyTooLarge' };
    assert.deepEqual(await oversized(arm.blobs.sasUrl('big/one.bin', 'cw'), BLOB_LIMITS.putBlobBytes + 1), refused);
    const block = `${arm.blobs.sasUrl('big/blocks.bin', 'cw')}&comp=block&blockid=${Buffer.from('b-0').toString('base64')}`;
    assert.deepEqual(await oversized(block, BLOB_LIMITS.putBlockBytes + 1), refused);
    assert.equal(arm.blobs.get('big/one.bin'), undefined);
    assert.ok(
      arm.requests.filter((r) => r.path.startsWith('/_blob/big/')).every((r) => r.status === 413),
      'both answered 413',
    );
  });

  test('an upload refused for an expired SAS fails the attempt as retryable; the next attempt builds', async () => {
    const modelPath = await model('other.onnx');
    arm.faults.expiredUploadSas = { count: 1 };
    await assert.rejects(
      buildImageInRegistry(clients, settings, 'inferctl-scorer', modelPath, SERVED),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal(Object.getPrototypeOf(err), Error.prototype, 'a plain Error: the activity retries it');
        assert.match(err.message, /uploading the build context failed: 403 AuthenticationFailed/);
        return true;
      },
    );
    const image = await buildImageInRegistry(clients, settings, 'inferctl-scorer', modelPath, SERVED);
    assert.equal(image.reused, false);
    assert.match(image.runId ?? '', /^ca\d+$/);
  });

  test('an image deleted from the registry (the janitor) is built again, though its run history says it was pushed', async () => {
    const modelPath = await model('deleted.onnx');
    const first = await buildImageInRegistry(clients, settings, 'inferctl-scorer', modelPath, SERVED);
    assert.equal((await buildImageInRegistry(clients, settings, 'inferctl-scorer', modelPath, SERVED)).reused, true);
    // The manifest digest is the registry's (not the context's): the janitor takes it from the tag list.
    const tag = first.imageRef.split(':').pop()!;
    const listed = (await listRegistryTags(settings, 'inferctl-scorer')).find((t) => t.tag === tag)!;
    assert.equal(await deleteRegistryImage(settings, 'inferctl-scorer', listed.digest), true);
    assert.equal(await deleteRegistryImage(settings, 'inferctl-scorer', listed.digest), false, 'already gone');
    const again = await buildImageInRegistry(clients, settings, 'inferctl-scorer', modelPath, SERVED);
    assert.equal(again.reused, false);
    assert.notEqual(again.runId, first.runId);
    assert.ok(arm.images.has(`${TEST_REGISTRY}/${again.imageRef.split('/')[1]}`));
  });
});
