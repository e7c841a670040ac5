/**
 * The Temporal launcher, against real dev servers of its own (beside the run-wide one): it answers with
 * inferctl's search attributes and the Web UI, keeps workflows across a restart on the same SQLite file
 * (registering attributes an older data dir lacks, refusing a conflicting type), refuses a busy port,
 * and leaves no process behind, not even when its parent is SIGKILLed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { Client, Connection } from '@temporalio/client';

import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';
import { connectClient, connectWorker } from '../../src/temporal/connection';
import { PortInUseError, SearchAttributeConflictError, startDevServer } from '../../src/temporal/dev-server';
import type { DevServer } from '../../src/temporal/dev-server';
import { withEnv } from './env';

/** No such process, or only its zombie (a container's init may be slow to reap an orphan's). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? false;
  } catch {
    return true;
  }
}

async function listedAttributes(address: string): Promise<Record<string, unknown>> {
  const connection = await Connection.connect({ address });
  try {
    return (await connection.operatorService.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {};
  } finally {
    await connection.close();
  }
}

describe('startDevServer', () => {
  let scratch: string;
  const running = new Set<DevServer>();
  const start = async (opts: Parameters<typeof startDevServer>[0]) => {
    const server = await startDevServer(opts);
    running.add(server);
    return server;
  };
  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-devserver-'));
  });
  after(async () => {
    await Promise.all([...running].map((s) => s.stop()));
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test('answers, keeps workflows across a restart, registers attributes added since, stops cleanly', async (t) => {
    const dataDir = path.join(scratch, 'persist');
    const older = SEARCH_ATTRIBUTES.slice(0, 3);
    const startedAt = Date.now();
    let server = await start({ dataDir, searchAttributes: older });
    const startMs = Date.now() - startedAt;
    assert.equal(server.dbFile, path.join(dataDir, 'temporal.sqlite'));
    assert.ok(server.uiUrl, 'the Web UI is on');
    const ui = await fetch(server.uiUrl);
    assert.equal(ui.status, 200, 'the Web UI answers');
    await ui.arrayBuffer();
    assert.deepEqual(Object.keys(await listedAttributes(server.address)).sort(), older.map((a) => a.name).sort());

    // The SDK's envconfig reaches it, for the client and the worker alike.
    await withEnv(
      { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_PROFILE: undefined },
      async () => {
        const { client, connection, address, namespace } = await connectClient();
        assert.deepEqual([address, namespace], [server.address, 'default']);
        await client.workflow.start('noSuchWorkflowType', { taskQueue: 'nobody-polls', workflowId: 'persisted-1' });
        await connection.close();
        const worker = await connectWorker();
        await worker.connection.close();
      },
    );

    const port = Number(server.address.split(':').pop());
    await assert.rejects(
      startDevServer({ dataDir: path.join(scratch, 'busy'), port, headless: true }),
      (err: unknown) =>
        err instanceof PortInUseError &&
        err.port === port &&
        /already in use; pick another with --port/.test(err.message),
    );

    const firstPid = server.pid;
    await server.stop();
    await server.stop(); // idempotent
    assert.ok(processGone(firstPid), 'the server process is gone');

    const restartedAt = Date.now();
    server = await start({ dataDir });
    const restartMs = Date.now() - restartedAt;
    const listed = await listedAttributes(server.address);
    for (const a of SEARCH_ATTRIBUTES) assert.ok(a.name in listed, `${a.name} registered after the restart`);
    const connection = await Connection.connect({ address: server.address });
    const described = await new Client({ connection }).workflow.getHandle('persisted-1').describe();
    assert.equal(described.status.name, 'RUNNING', 'the workflow survived the restart');
    await connection.close();
    await server.stop();
    assert.ok(processGone(server.pid));
    t.diagnostic(`start ${startMs} ms, restart ${restartMs} ms`);
  });

  test('a data dir with a search attribute of another type is refused, and its server stopped', async () => {
    const dataDir = path.join(scratch, 'conflict');
    const server = await start({ dataDir, headless: true, searchAttributes: [{ name: 'Stage', type: 'Int' }] });
    await server.stop();
    await assert.rejects(startDevServer({ dataDir, headless: true }), (err: unknown) => {
      assert.ok(err instanceof SearchAttributeConflictError, String(err));
      assert.match(err.message, /Stage of type Int, but inferctl needs Stage=Keyword.*fresh data dir/);
      return true;
    });
  });

  test('the server goes when the process that started it is SIGKILLed', async () => {
    const devServerModule = path.resolve(__dirname, '..', '..', 'src', 'temporal', 'dev-server.js');
    const script = `
      require(${JSON.stringify(devServerModule)})
        .startDevServer({ dataDir: ${JSON.stringify(path.join(scratch, 'orphan'))}, headless: true })
        .then((s) => { console.log(s.pid); setInterval(() => {}, 1000); });`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) before the server started`)));
    });
    assert.ok(pid > 0 && !processGone(pid), 'the server runs');
    parent.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while (!processGone(pid) && Date.now() < deadline) await delay(100);
    assert.ok(processGone(pid), `server ${pid} outlived its parent`);
  });
});
