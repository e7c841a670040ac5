/**
 * The Temporal launcher: the CLI is found in the documented order, a missing one says how to install it,
 * and a second real dev server starts on free ports with inferctl's search attributes, keeps workflows
 * across a restart on the same SQLite file, and leaves no process behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client, Connection } from '@temporalio/client';

import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';
import { findTemporalCli, TemporalCliNotFoundError } from '../../src/temporal/cli-binary';
import { webUiUrl } from '../../src/temporal/connection';
import { startDevServer } from '../../src/temporal/dev-server';
import type { DevServer } from '../../src/temporal/dev-server';

function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  return Promise.resolve()
    .then(fn)
    .finally(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
}

describe('Temporal CLI lookup', () => {
  let scratch: string;
  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-cli-'));
  });
  after(() => fs.rm(scratch, { recursive: true, force: true }));

  test('TEMPORAL_CLI_PATH wins, and a bad one is named in the error', async () => {
    const fake = path.join(scratch, 'my-temporal');
    await fs.writeFile(fake, '#!/bin/sh\n', { mode: 0o755 });
    assert.equal(await withEnv({ TEMPORAL_CLI_PATH: fake }, () => findTemporalCli()), fake);
    await assert.rejects(
      withEnv({ TEMPORAL_CLI_PATH: path.join(scratch, 'nope') }, () => findTemporalCli()),
      (err: unknown) =>
        err instanceof TemporalCliNotFoundError && /TEMPORAL_CLI_PATH=.*nope is not an executable/.test(err.message),
    );
  });

  test('PATH comes before the cache; nothing anywhere lists the install routes', async () => {
    const bin = path.join(scratch, 'bin');
    await fs.mkdir(bin, { recursive: true });
    await fs.writeFile(path.join(bin, 'temporal'), '#!/bin/sh\n', { mode: 0o755 });
    const emptyCache = path.join(scratch, 'cache');
    assert.equal(
      await withEnv({ TEMPORAL_CLI_PATH: undefined, PATH: bin, INFERCTL_CACHE_DIR: emptyCache }, () =>
        findTemporalCli(),
      ),
      path.join(bin, 'temporal'),
    );
    await assert.rejects(
      withEnv({ TEMPORAL_CLI_PATH: undefined, PATH: path.join(scratch, 'empty'), INFERCTL_CACHE_DIR: emptyCache }, () =>
        findTemporalCli({ build: false }),
      ),
      (err: unknown) => {
        assert.ok(err instanceof TemporalCliNotFoundError);
        for (const route of [
          'brew install temporal',
          'temporal.download',
          'go install github.com/temporalio/cli/cmd/temporal@v1.5.1',
          'TEMPORAL_CLI_PATH',
        ]) {
          assert.ok(err.message.includes(route), `mentions ${route}`);
        }
        return true;
      },
    );
  });
});

describe('webUiUrl', () => {
  test('links to a namespace, a workflow and a run', () =>
    withEnv({ INFERCTL_UI_URL: 'http://ui.example:8080/' }, () => {
      assert.equal(webUiUrl({ namespace: 'default' }), 'http://ui.example:8080/namespaces/default/workflows');
      assert.equal(
        webUiUrl({ namespace: 'ns', workflowId: 'deploy-a' }),
        'http://ui.example:8080/namespaces/ns/workflows/deploy-a',
      );
      assert.equal(
        webUiUrl({ namespace: 'ns', workflowId: 'score-x/1', runId: 'r1' }),
        'http://ui.example:8080/namespaces/ns/workflows/score-x%2F1/r1/history',
      );
    }));

  test('without INFERCTL_UI_URL it follows the dev server layout (gRPC port + 1000)', () =>
    withEnv({ INFERCTL_UI_URL: undefined, TEMPORAL_ADDRESS: 'localhost:7233' }, () => {
      assert.equal(webUiUrl({ namespace: 'default' }), 'http://localhost:8233/namespaces/default/workflows');
    }));
});

describe('startDevServer', () => {
  let dataDir: string;
  let server: DevServer | undefined;
  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-devserver-'));
  });
  after(async () => {
    await server?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('starts, registers the search attributes, persists across a restart, and stops cleanly', async () => {
    server = await startDevServer({ dataDir });
    assert.ok(server.uiUrl, 'the Web UI is on');
    const ui = await fetch(server.uiUrl);
    assert.equal(ui.status, 200, 'the Web UI answers');
    await ui.arrayBuffer();

    let connection = await Connection.connect({ address: server.address });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const a of SEARCH_ATTRIBUTES)
      assert.ok(customAttributes && a.name in customAttributes, `${a.name} registered`);
    const client = new Client({ connection });
    await client.workflow.start('noSuchWorkflowType', { taskQueue: 'nobody-polls', workflowId: 'persisted-1' });
    await connection.close();

    const firstPid = server.pid;
    await server.stop();
    assert.throws(() => process.kill(firstPid, 0), 'the server process is gone');

    server = await startDevServer({ dataDir });
    connection = await Connection.connect({ address: server.address });
    const described = await new Client({ connection }).workflow.getHandle('persisted-1').describe();
    assert.equal(described.status.name, 'RUNNING', 'the workflow survived the restart');
    await connection.close();
    await server.stop();
    server = undefined;
  });

  test('a busy port is refused with the flag to change', async () => {
    const other = await startDevServer({ dataDir: path.join(dataDir, 'second'), headless: true });
    try {
      const port = Number(other.address.split(':')[1]);
      await assert.rejects(
        startDevServer({ dataDir: path.join(dataDir, 'third'), port, headless: true }),
        /Port \d+ .* already in use; pick another with --port/,
      );
    } finally {
      await other.stop();
    }
  });
});
