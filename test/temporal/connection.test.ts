/**
 * Connection settings come from the SDK's envconfig for client and worker alike; an unreachable server
 * or a broken config file says what to do; Web UI links have the documented forms.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  connectClient,
  connectWorker,
  TemporalConfigError,
  TemporalUnavailableError,
  webUiUrl,
} from '../../src/temporal/connection';
import { freePort } from '../../src/temporal/dev-server';
import { withEnv } from './env';

describe('webUiUrl', () => {
  test('INFERCTL_UI_URL is the base: the namespace, a workflow, a run', () =>
    withEnv({ INFERCTL_UI_URL: 'http://ui.example:8080/' }, () => {
      assert.equal(webUiUrl({ namespace: 'default' }), 'http://ui.example:8080/namespaces/default/workflows');
      assert.equal(
        webUiUrl({ namespace: 'ns', workflowId: 'deploy-a' }),
        'http://ui.example:8080/namespaces/ns/workflows/deploy-a',
      );
      assert.equal(
        webUiUrl({ namespace: 'ns', workflowId: 'score-x/1 2', runId: 'r1' }),
        'http://ui.example:8080/namespaces/ns/workflows/score-x%2F1%202/r1/history',
      );
    }));

  test('without INFERCTL_UI_URL it follows the dev server layout (gRPC port + 1000)', () =>
    withEnv({ INFERCTL_UI_URL: undefined, TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_CONFIG_FILE: undefined }, () => {
      assert.equal(
        webUiUrl({ namespace: 'default', workflowId: 'deploy-a' }),
        'http://localhost:8233/namespaces/default/workflows/deploy-a',
      );
    }));

  test('a Temporal Cloud address links to the Cloud UI', () =>
    withEnv({ INFERCTL_UI_URL: undefined, TEMPORAL_ADDRESS: 'my-ns.a1b2c.tmprl.cloud:7233' }, () => {
      assert.equal(
        webUiUrl({ namespace: 'my-ns.a1b2c' }),
        'https://cloud.temporal.io/namespaces/my-ns.a1b2c/workflows',
      );
    }));
});

describe('connectClient / connectWorker', () => {
  let scratch: string;
  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-conn-'));
  });
  after(() => fs.rm(scratch, { recursive: true, force: true }));

  test('nothing listening: TemporalUnavailableError names the address and `inferctl dev`', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    await withEnv({ TEMPORAL_ADDRESS: address, TEMPORAL_CONFIG_FILE: path.join(scratch, 'none.toml') }, () =>
      Promise.all(
        [connectClient, connectWorker].map((connect) =>
          assert.rejects(connect(), (err: unknown) => {
            assert.ok(err instanceof TemporalUnavailableError, String(err));
            assert.equal(err.address, address);
            assert.match(
              err.message,
              new RegExp(`Cannot reach Temporal at ${address}.*inferctl dev.*TEMPORAL_ADDRESS`),
            );
            return true;
          }),
        ),
      ),
    );
  });

  test('a profile from TEMPORAL_CONFIG_FILE is used; a broken file is a TemporalConfigError', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const config = path.join(scratch, 'temporal.toml');
    await fs.writeFile(config, `[profile.staging]\naddress = "${address}"\nnamespace = "staging"\n`);
    await withEnv(
      {
        TEMPORAL_ADDRESS: undefined,
        TEMPORAL_NAMESPACE: undefined,
        TEMPORAL_CONFIG_FILE: config,
        TEMPORAL_PROFILE: 'staging',
      },
      () =>
        assert.rejects(
          connectWorker(),
          (err: unknown) => err instanceof TemporalUnavailableError && err.address === address,
        ),
    );
    const broken = path.join(scratch, 'broken.toml');
    await fs.writeFile(broken, 'this is [ not toml\n');
    await withEnv({ TEMPORAL_CONFIG_FILE: broken }, () =>
      assert.rejects(connectClient(), (err: unknown) => {
        assert.ok(err instanceof TemporalConfigError, String(err));
        assert.ok(err.message.includes(broken), err.message);
        return true;
      }),
    );
  });
});
