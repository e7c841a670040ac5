/**
 * The local gateway routes paths only: a request whose target is absolute-form (`GET http://host/…`, an
 * https: one, a CONNECT authority, `*`) gets 400 and nothing is sent to the host it names; the gateway
 * keeps serving the replicas afterwards.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { createGateway } from '../../../src/targets/local/gateway';
import { recordReliability } from '../../helpers/reliability';

let dir: string;
let replica: http.Server;
let attacker: http.Server;
let gateway: http.Server;
const attackerSaw: string[] = [];
const replicaSaw: string[] = [];

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Sends `head` as written (no client library rewrites the target) and returns the status line's code. */
function rawRequest(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed without an answer: ${text}`)));
  });
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-gateway-'));
  replica = http.createServer((req, res) => {
    replicaSaw.push(req.url ?? '');
    res.end('replica');
  });
  attacker = http.createServer((req, res) => {
    attackerSaw.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    res.end('attacker');
  });
  const replicaPort = await listen(replica);
  await listen(attacker);
  await fs.mkdir(path.join(dir, '0'));
  await fs.writeFile(path.join(dir, '0', 'ready.json'), JSON.stringify({ url: `http://127.0.0.1:${replicaPort}` }));
  gateway = createGateway({ replicasDir: dir, replicas: 1, maxBodyBytes: 1024 });
  await listen(gateway);
});

after(async () => {
  for (const s of [gateway, replica, attacker]) s.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('absolute-form targets get 400 and reach no other host; the gateway keeps serving', async () => {
  const port = (gateway.address() as AddressInfo).port;
  const evil = `127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  const attacks = [
    `GET http://${evil}/v1/models HTTP/1.1\r\nHost: ${evil}\r\nAuthorization: Bearer k\r\n\r\n`,
    `POST http://${evil}/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}`,
    `GET https://${evil}/ HTTP/1.1\r\nHost: ${evil}\r\n\r\n`,
    `GET https://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n`,
    `CONNECT ${evil} HTTP/1.1\r\nHost: ${evil}\r\n\r\n`,
    `OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
  ];
  let refused = 0;
  for (const head of attacks) {
    const status = await rawRequest(port, head);
    assert.equal(status, 400, `400 for ${head.split('\r\n')[0]}`);
    refused++;
  }
  // A path that starts with '//' is still a path: it goes to a replica, not to the host it spells.
  assert.equal(await rawRequest(port, `GET //${evil}/steal HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`), 200);
  assert.ok(replicaSaw.includes(`//${evil}/steal`));
  assert.deepEqual(attackerSaw, [], 'no request reached the host an absolute-form target named');

  const ok = await fetch(`http://127.0.0.1:${port}/v1/models`);
  assert.equal(ok.status, 200, 'the gateway still serves');
  assert.equal(await ok.text(), 'replica');
  recordReliability({
    test: 'gateway absolute-form targets',
    faultsInjected: 0,
    survived: true,
    attack: 'absolute-form-target',
    attacksTried: attacks.length + 1,
    attacksRefused: refused + (attackerSaw.length === 0 ? 1 : 0),
  });
});
