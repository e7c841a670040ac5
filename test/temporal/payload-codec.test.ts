/**
 * Payload encryption: AES-256-GCM with key ids and rotation, tamper detection, a deployment whose
 * history holds only ciphertext, and the codec server that lets an authorised Web UI read it again.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';

import { deployWorkflowId } from '../../src/shared/deploy-types';
import type { DeployInput } from '../../src/shared/deploy-types';
import { createCodecServer } from '../../src/temporal/codec-server';
import { AesGcmCodec, CodecKeyError, codecFromEnv, ENCRYPTED_ENCODING } from '../../src/temporal/payload-codec';
import { deploy } from '../../workflows/deploy';
import { demoAssets, requireTemporalAddress, startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const key = () => crypto.randomBytes(32).toString('base64');

describe('payload encryption', () => {
  const oldKey = key();
  const newKey = key();
  const env = { INFERCTL_CODEC_KEYS: `k2=${newKey},k1=${oldKey}` };

  test('round trip, rotation by key id, unknown key and tampering are refused', async () => {
    const old = codecFromEnv({ INFERCTL_CODEC_KEYS: `k1=${oldKey}` })!;
    const current = codecFromEnv(env)!;
    const plain = defaultPayloadConverter.toPayload({ secret: 'model at /data/m.onnx' });
    const [sealedOld] = await old.encode([plain]);
    const [sealedNew] = await current.encode([plain]);
    assert.equal(Buffer.from(sealedNew!.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
    assert.ok(!Buffer.from(sealedNew!.data!).toString('latin1').includes('/data/m.onnx'), 'ciphertext only');
    // The rotated configuration still reads what the old key wrote, and writes with the new key.
    for (const sealed of [sealedOld!, sealedNew!]) {
      const [opened] = await current.decode([sealed]);
      assert.deepEqual(defaultPayloadConverter.fromPayload(opened!), { secret: 'model at /data/m.onnx' });
    }
    await assert.rejects(old.decode([sealedNew!]), CodecKeyError);
    const tampered: Payload = {
      ...sealedNew!,
      data: Buffer.from(sealedNew!.data!).map((b, i) => (i === 20 ? b ^ 1 : b)),
    };
    await assert.rejects(current.decode([tampered]), /authenticate|Unsupported state/);
    assert.throws(() => new AesGcmCodec(new Map([['short', Buffer.alloc(16)]]), 'short'), /needs 32/);
    assert.equal(codecFromEnv({}), undefined, 'off unless configured');
  });

  describe('end to end', () => {
    const taskQueue = uniqueName('codec-tq');
    let worker: WorkerProcess;
    let connection: Connection;

    before(async () => {
      worker = await startControlWorker(taskQueue, [], { ...process.env, ...env });
      connection = await Connection.connect({ address: requireTemporalAddress() });
    });
    after(async () => {
      await worker?.stop();
      await connection?.close();
    });

    test('history holds ciphertext; the codec server decodes it for an allowed, authorised caller', async () => {
      const codec = codecFromEnv(env)!;
      const sealedClient = new Client({ connection, dataConverter: { payloadCodecs: [codec] } });
      const assets = await demoAssets();
      const name = uniqueName('sealed');
      const input: DeployInput = { name, modelPath: assets.modelPath, target: 'local', replicas: 1, ttlSeconds: 1 };
      const outcome = await sealedClient.workflow.execute(deploy, {
        taskQueue,
        workflowId: deployWorkflowId(name),
        args: [input],
      });
      assert.equal(outcome.stage, 'done', 'the workflow ran normally with the codec');

      const plainClient = new Client({ connection });
      const history = await plainClient.workflow.getHandle(deployWorkflowId(name)).fetchHistory();
      const text = JSON.stringify(history);
      assert.ok(!text.includes(assets.modelPath), 'the model path appears nowhere in the stored history');
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      assert.ok(started);
      assert.equal(Buffer.from(started.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);

      const hosts: string[] = [];
      const token = 'ui-token-0123456789abcdef';
      const server = createCodecServer({
        codec,
        allowedOrigins: ['http://localhost:8233'],
        token,
        allowedHosts: hosts,
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      hosts.push(new URL(url).host);
      try {
        const body = JSON.stringify({
          payloads: [
            {
              metadata: Object.fromEntries(
                Object.entries(started.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
              ),
              data: Buffer.from(started.data!).toString('base64'),
            },
          ],
        });
        const anonymous = await fetch(`${url}/decode`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(anonymous.status, 401);
        await anonymous.arrayBuffer();
        const res = await fetch(`${url}/decode`, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${token}`,
            origin: 'http://localhost:8233',
          },
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:8233');
        const decoded = (await res.json()) as { payloads: Array<{ data: string }> };
        const json = JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString()) as DeployInput;
        assert.equal(json.modelPath, assets.modelPath, 'decoded back to the workflow input');
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });
});
