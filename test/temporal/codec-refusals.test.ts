/**
 * What payload encryption refuses and hides, on the real dev server: a worker that holds keys acts on no
 * unencrypted input (a workflow started by a client without the codec makes no step run), a failure's
 * message and stack trace are stored encrypted, and the codec server decrypts only for a caller with its
 * token that reaches it by its own name.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';

import { deployWorkflowId } from '../../src/shared/deploy-types';
import { FailureType } from '../../src/shared/failure-types';
import type { DeployInput } from '../../src/shared/deploy-types';
import { DeploymentName, ModelName } from '../../src/shared/search-attributes';
import { CodecServerTokenError, createCodecServer } from '../../src/temporal/codec-server';
import { FAILURE_CONVERTER_PATH } from '../../src/temporal/connection';
import { codecFromEnv, ENCRYPTED_ENCODING } from '../../src/temporal/payload-codec';
import { payloadConverter } from '../../src/temporal/payload-converter';
import { RefusedPayload } from '../../src/shared/refused-payload';
import { freePort } from '../../src/temporal/dev-server';
import { searchAttributeText } from '../../src/temporal/search-attribute-privacy';
import {
  deploy,
  extendTtlSignal,
  extendUpdate,
  scaleUpdate,
  statusQuery,
  teardownUpdate,
} from '../../workflows/deploy';
import { recordReliability } from '../helpers/reliability';
import { demoAssets, eventually, requireTemporalAddress, startControlWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';

const env = { INFERCTL_CODEC_KEYS: `k1=${crypto.randomBytes(32).toString('base64')}` };

describe('payload encryption refuses and hides', () => {
  const taskQueue = uniqueName('codec-refuse-tq');
  let worker: WorkerProcess;
  let connection: Connection;
  let sealed: Client;
  let plain: Client;

  before(async () => {
    worker = await startControlWorker(taskQueue, [], { ...process.env, ...env });
    connection = await Connection.connect({ address: requireTemporalAddress() });
    sealed = new Client({
      connection,
      dataConverter: { payloadCodecs: [codecFromEnv(env)!], failureConverterPath: FAILURE_CONVERTER_PATH },
    });
    plain = new Client({ connection });
  });
  after(async () => {
    await worker?.stop();
    await connection?.close();
  });

  test('a worker decoding for itself marks plaintext refused; a client reads it', async () => {
    const payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"name":"x"}') };
    assert.deepEqual(await codecFromEnv(env, 'client')!.decode([payload]), [payload]);
    const [refused] = await codecFromEnv(env, 'worker')!.decode([payload]);
    assert.equal(refused!.data, undefined, 'what it said is dropped');
    assert.ok(payloadConverter.fromPayload(refused!) instanceof RefusedPayload, 'and it reads as refused');
    const migrating = codecFromEnv({ ...env, INFERCTL_CODEC_ACCEPT_PLAINTEXT: '1' }, 'worker')!;
    assert.deepEqual(await migrating.decode([payload]), [payload]);
  });

  test('unencrypted-start: a workflow started without the codec runs no step', async () => {
    const assets = await demoAssets();
    const name = uniqueName('plain');
    const input: DeployInput = { name, modelPath: assets.modelPath, target: 'local', replicas: 1, ttlSeconds: 1 };
    const handle = await plain.workflow.start(deploy, { taskQueue, workflowId: deployWorkflowId(name), args: [input] });
    const failed = await eventually(
      async () => {
        const events = (await handle.fetchHistory()).events ?? [];
        return events.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes ?? undefined;
      },
      'the worker to refuse the workflow task',
      30_000,
    );
    // The task failure itself is stored encrypted: read it with the key.
    const [attrs] = await codecFromEnv(env)!.decode([failed.failure!.encodedAttributes!]);
    const said = defaultPayloadConverter.fromPayload<{ message: string }>(attrs!);
    assert.match(said.message, /Refused an unencrypted payload/);
    const events = (await handle.fetchHistory()).events ?? [];
    assert.ok(!events.some((e) => e.activityTaskScheduledEventAttributes), 'no step was scheduled');
    await handle.terminate('test done: refused as it should be');
    recordReliability({
      test: 'payload encryption: a workflow started without the key',
      faultsInjected: 0,
      survived: true,
      attack: 'unencrypted-start',
      attacksTried: 1,
      attacksRefused: 1,
    });
  });

  test('unencrypted-signal-update: a running deployment acts on no signal or Update sent without the key', async () => {
    const assets = await demoAssets();
    const name = uniqueName('plain-msg');
    const input: DeployInput = { name, modelPath: assets.modelPath, target: 'local', replicas: 1, ttlSeconds: 600 };
    const handle = await sealed.workflow.start(deploy, {
      taskQueue,
      workflowId: deployWorkflowId(name),
      args: [input],
    });
    const before = await eventually(
      async () => {
        const status = await handle.query(statusQuery);
        return status.stage === 'serving' && status.expiresAt ? status : undefined;
      },
      'the deployment to serve',
      120_000,
    );
    // A client with namespace access but no key, straight to the Temporal server. The Updates' answers are
    // encrypted failures: the test reads them with the key (it sends in clear, decodes with the codec).
    await plain.workflow.getHandle(deployWorkflowId(name)).signal(extendTtlSignal, { seconds: 86_400 });
    const codec = codecFromEnv(env)!;
    const readsWithKey = new Client({
      connection,
      dataConverter: {
        payloadCodecs: [{ encode: (p) => Promise.resolve(p), decode: (p) => codec.decode(p) }],
        failureConverterPath: FAILURE_CONVERTER_PATH,
      },
    });
    const intruder = readsWithKey.workflow.getHandle<typeof deploy>(deployWorkflowId(name));
    const refusals = await Promise.all(
      [
        intruder.executeUpdate(scaleUpdate, { args: [{ replicas: 2 }] }),
        intruder.executeUpdate(extendUpdate, { args: [{ seconds: 86_400 }] }),
      ].map((update) =>
        Promise.race([
          update.then(
            () => assert.fail('an unencrypted Update was applied'),
            (err: unknown) => err,
          ),
          // Refused at once by the validator; a frozen workflow (its task failing on every try) never answers.
          new Promise((resolve) => setTimeout(() => resolve(new Error('no answer in 30 s')), 30_000).unref()),
        ]),
      ),
    );
    for (const err of refusals) {
      assert.ok(err instanceof WorkflowUpdateFailedError, `refused, not lost: ${String(err)}`);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, FailureType.UnencryptedInput);
      assert.match(err.cause.message, /Refused an unencrypted payload/);
    }
    // The deployment is unchanged, and still answers the key's holder: neither frozen nor extended.
    const after = await handle.query(statusQuery);
    assert.equal(after.expiresAt, before.expiresAt, 'the TTL was not extended');
    assert.equal(after.replicas, before.replicas, 'no replica was added');
    const extended = await handle.executeUpdate(extendUpdate, { args: [{ seconds: 3_600 }] });
    assert.ok(Date.parse(extended.expiresAt!) > Date.parse(before.expiresAt!), 'a sealed Update still works');
    await handle.executeUpdate(teardownUpdate, { args: [{ reason: 'test done' }] });
    assert.equal((await handle.result()).stage, 'done');
    recordReliability({
      test: 'payload encryption: a signal and Updates sent without the key to a running deployment',
      faultsInjected: 0,
      survived: true,
      attack: 'unencrypted-signal-update',
      attacksTried: 1 + refusals.length,
      attacksRefused: 1 + refusals.length,
    });
  });

  test('a failure’s message and stack trace are stored encrypted, and read back by a client with the key', async () => {
    const name = uniqueName('fails');
    const secretPath = `/nonexistent/secret-dir-${crypto.randomBytes(4).toString('hex')}/model.onnx`;
    const input: DeployInput = { name, modelPath: secretPath, target: 'local', replicas: 1, ttlSeconds: 1 };
    const err = await sealed.workflow
      .execute(deploy, { taskQueue, workflowId: deployWorkflowId(name), args: [input] })
      .then(
        () => assert.fail('the deployment of a missing model succeeded'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof WorkflowFailedError);
    let text = '';
    for (let c: Error | undefined = err; c; c = (c as { cause?: Error }).cause) text += `${c.message}\n${c.stack}\n`;
    assert.ok(text.includes(secretPath), 'a client with the key reads the whole message');

    const history = JSON.stringify(await plain.workflow.getHandle(deployWorkflowId(name)).fetchHistory());
    assert.ok(!history.includes('secret-dir-'), 'neither message nor stack trace is in clear in the history');
    const raw = (await plain.workflow.getHandle(deployWorkflowId(name)).fetchHistory()).events!.find(
      (e) => e.workflowExecutionFailedEventAttributes,
    )!.workflowExecutionFailedEventAttributes!.failure!;
    assert.equal(raw.message, 'Encoded failure');
    assert.equal(Buffer.from(raw.encodedAttributes!.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
  });

  test('INFERCTL_HASH_SEARCH_ATTRIBUTES=1: the CLI stores the names as keyed hashes', async () => {
    const assets = await demoAssets();
    const name = uniqueName('hashed');
    const hashing = { ...env, INFERCTL_HASH_SEARCH_ATTRIBUTES: '1' };
    const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');
    const args = ['deploy', '--model', assets.modelPath, '--name', name, '--ttl', '1s', '--detach'];
    await promisify(execFile)(process.execPath, [bin, ...args, '--task-queue', taskQueue], {
      env: { ...process.env, ...hashing },
    });
    const handle = plain.workflow.getHandle(deployWorkflowId(name));
    const attrs = (await handle.describe()).typedSearchAttributes;
    const deploymentName = attrs.get(DeploymentName);
    const modelName = attrs.get(ModelName);
    assert.match(deploymentName ?? '', /^h:[0-9a-f]{16}$/);
    assert.equal(deploymentName, searchAttributeText(name, hashing), 'the same name gives the same hash');
    assert.equal(modelName, searchAttributeText(path.basename(assets.modelPath), hashing));
    assert.equal(searchAttributeText(name, {}), name, 'in clear unless asked');
    assert.throws(() => searchAttributeText(name, { INFERCTL_HASH_SEARCH_ATTRIBUTES: '1' }), /INFERCTL_CODEC_KEYS/);
    assert.equal((await sealed.workflow.getHandle<typeof deploy>(deployWorkflowId(name)).result()).stage, 'done');
  });

  test('the codec server: a token always, and only for its own host name', async () => {
    const codec = codecFromEnv(env)!;
    assert.throws(
      () => createCodecServer({ codec, allowedOrigins: [], allowedHosts: [], token: '' }),
      CodecServerTokenError,
    );
    const token = crypto.randomBytes(18).toString('base64url');
    const hosts: string[] = [];
    const server = createCodecServer({ codec, allowedOrigins: [], token, allowedHosts: hosts });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    hosts.push(`127.0.0.1:${port}`);
    const [sealedPayload] = await codec.encode([
      { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"hello"') },
    ]);
    const body = JSON.stringify({
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(sealedPayload!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(sealedPayload!.data!).toString('base64'),
        },
      ],
    });
    // node:http, not fetch: fetch sends the URL's host whatever the headers say, and a rebinding page's Host is its own.
    const post = (path: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const tried = [
        await post('/decode'), // no token
        await post('/decode', { authorization: 'Bearer wrong-token-wrong-token' }),
        await post('/wrong-token-wrong-token/decode'),
        // A page on another site that rebinds its name to 127.0.0.1 sends its own Host.
        await post(`/${token}/decode`, { host: `attacker.example:${port}` }),
      ];
      assert.deepEqual(tried, [401, 401, 401, 421]);
      assert.equal(await post(`/${token}/decode`), 200, 'the token in the URL (the Web UI’s setting)');
      assert.equal(await post('/decode', { authorization: `Bearer ${token}` }), 200);
      recordReliability({
        test: 'codec server: decrypting without the token or by another host name',
        faultsInjected: 0,
        survived: true,
        attack: 'codec-server-without-token',
        attacksTried: tried.length,
        attacksRefused: tried.filter((s) => s === 401 || s === 421).length,
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('inferctl codec-server makes a token, prints the URL that carries it, and answers only its --host-name', async () => {
    const port = await freePort();
    const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'inferctl.js');
    const server = spawn(process.execPath, [bin, 'codec-server', '--port', String(port), '--host-name', 'codec.test'], {
      env: { ...process.env, ...env, INFERCTL_CODEC_SERVER_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const url = await eventually(
        () => Promise.resolve(/(http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24,})/.exec(out)?.[1]),
        'the codec server to print its URL',
        30_000,
      );
      const token = new URL(url).pathname.slice(1);
      const post = (host: string, urlPath: string) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request(
            { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers: { host } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end('{"payloads":[]}');
        });
      assert.equal(await post(`codec.test:${port}`, `/${token}/decode`), 200, 'by the name it was given');
      assert.equal(await post(`127.0.0.1:${port}`, `/${token}/decode`), 200, 'by its address');
      assert.equal(await post(`attacker.example:${port}`, `/${token}/decode`), 421);
      assert.equal(await post(`codec.test:${port}`, '/decode'), 401, 'no token');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  });
});
