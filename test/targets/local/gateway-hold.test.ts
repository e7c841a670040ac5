/**
 * The local gateway's waiting room (scale to zero), over real HTTP: a request at zero replicas is held and
 * answered once a replica appears; one that waits past the hold time, or finds the queue full, gets 503 with
 * Retry-After; the gateway's own counters say what it held, and carry no key.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createGateway } from '../../../src/targets/local/gateway';
import { readGatewayCounts } from '../../../src/targets/local/gateway-counts';

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('gateway hold (scale to zero)', () => {
  let dir: string;
  let replica: http.Server;
  let replicaUrl: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-hold-'));
    // A real upstream: answers every request with what it got.
    replica = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ answered: req.url, auth: req.headers.authorization ?? null }));
    });
    replicaUrl = await listen(replica);
  });
  after(async () => {
    await close(replica);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function gatewayAt(sub: string, hold: { timeoutMs: number; maxHeld: number }) {
    const replicasDir = path.join(dir, sub, 'replicas');
    const routesFile = path.join(dir, sub, 'routes.json');
    fs.mkdirSync(replicasDir, { recursive: true });
    fs.writeFileSync(routesFile, JSON.stringify({ replicas: 0 }));
    const server = createGateway({
      replicasDir,
      replicas: 0,
      routesFile,
      maxBodyBytes: 1024,
      hold: { ...hold, retryAfterSeconds: 7 },
    });
    /** A replica comes up: it writes its ready file and the routes name it. */
    const wake = () => {
      fs.mkdirSync(path.join(replicasDir, '0'), { recursive: true });
      fs.writeFileSync(path.join(replicasDir, '0', 'ready.json'), JSON.stringify({ url: replicaUrl }));
      fs.writeFileSync(routesFile, JSON.stringify({ replicas: 1 }));
    };
    return { server, wake };
  }

  test('a held request is answered once a replica is up, with its headers intact', async () => {
    const { server, wake } = gatewayAt('wake', { timeoutMs: 10_000, maxHeld: 5 });
    const url = await listen(server);
    try {
      const pending = fetch(`${url}/score`, { method: 'POST', body: 'x', headers: { authorization: 'Bearer k' } });
      await new Promise((r) => setTimeout(r, 300));
      const held = await readGatewayCounts(url);
      assert.equal(held.held, 1, 'the request waits');
      assert.equal(held.inFlight, 1);
      wake();
      const res = await pending;
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { answered: '/score', auth: 'Bearer k' });
      const counts = await readGatewayCounts(url);
      assert.deepEqual(
        [counts.held, counts.heldTotal, counts.heldAnsweredTotal, counts.heldRefusedTotal, counts.scoringTotal],
        [0, 1, 1, 0, 1],
      );
      const metrics = await (await fetch(`${url}/gateway/metrics`)).text();
      assert.doesNotMatch(metrics, /Bearer|\bk\b/, 'the counters carry no key');
    } finally {
      await close(server);
    }
  });

  test('past the hold time, or past the queue bound, 503 with Retry-After; a client that leaves is not counted', async () => {
    const { server } = gatewayAt('refuse', { timeoutMs: 600, maxHeld: 2 });
    const url = await listen(server);
    try {
      const started = Date.now();
      const first = fetch(`${url}/score`, { method: 'POST', body: 'a' });
      const second = fetch(`${url}/score`, { method: 'POST', body: 'b' });
      await new Promise((r) => setTimeout(r, 150));
      const third = await fetch(`${url}/score`, { method: 'POST', body: 'c' });
      assert.equal(third.status, 503, 'the queue is full');
      assert.equal(third.headers.get('retry-after'), '7');
      assert.match(((await third.json()) as { error: { message: string } }).error.message, /2 requests are already/);
      for (const res of await Promise.all([first, second])) {
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('retry-after'), '7');
        assert.match(((await res.json()) as { error: { message: string } }).error.message, /did not wake/);
      }
      const waited = Date.now() - started;
      assert.ok(waited >= 550 && waited < 5000, `answered after the hold time, not hung (${waited} ms)`);

      const gone = new AbortController();
      const leaving = fetch(`${url}/score`, { method: 'POST', body: 'd', signal: gone.signal }).catch(() => 'aborted');
      await new Promise((r) => setTimeout(r, 100));
      gone.abort();
      assert.equal(await leaving, 'aborted');
      await new Promise((r) => setTimeout(r, 100));
      const counts = await readGatewayCounts(url);
      assert.deepEqual([counts.held, counts.heldRefusedTotal, counts.inFlight], [0, 3, 0]);
    } finally {
      await close(server);
    }
  });

  test('a routed replica that refuses connections (crashed) gets a 503 at once, not a hold', async () => {
    const { server } = gatewayAt('crashed', { timeoutMs: 10_000, maxHeld: 5 });
    const url = await listen(server);
    const gone = http.createServer();
    const goneUrl = await listen(gone);
    await close(gone); // nothing listens there any more
    const replicasDir = path.join(dir, 'crashed', 'replicas');
    fs.mkdirSync(path.join(replicasDir, '0'), { recursive: true });
    fs.writeFileSync(path.join(replicasDir, '0', 'ready.json'), JSON.stringify({ url: goneUrl }));
    fs.writeFileSync(path.join(dir, 'crashed', 'routes.json'), JSON.stringify({ replicas: 1 }));
    try {
      const started = Date.now();
      const res = await fetch(`${url}/score`, { method: 'POST', body: 'x' });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'no-replica');
      assert.ok(Date.now() - started < 2000, 'answered at once');
      assert.equal((await readGatewayCounts(url)).heldTotal, 0);
    } finally {
      await close(server);
    }
  });
});
