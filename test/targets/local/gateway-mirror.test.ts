/**
 * The local gateway's mirror with real HTTP replicas: clients get only the serving replica's answers, and
 * get them while the candidate still holds every copy (the client never waits for it); a full queue drops
 * copies and counts them; the copies carry the client's key to the candidate and a request the serving
 * replica refused with 401 is not copied; disagreements are kept with their request id; a mirror route
 * naming a directory outside the deployment, or a candidate address off loopback, sends nothing anywhere; a
 * gateway started again resumes the counts from the report file under their epoch.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import type { MirrorReport } from '../../../src/shared/mirror-types';
import { createGateway, mirrorReportFile } from '../../../src/targets/local/gateway';

const KEY = 'the-key';
let dir: string;
let routesFile: string;
let serving: http.Server;
let candidate: http.Server;
let outsider: http.Server;
let gateway: http.Server;
let release: () => void = () => {};
let held: Promise<void> = Promise.resolve();
const candidateSaw: Array<{ auth?: string; id?: string }> = [];
const outsiderSaw: string[] = [];

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function answer(res: http.ServerResponse, label: string): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ predictions: [{ label, score: 0.9 }] }));
}

async function bodyOf(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function writeRoutes(mirror: object): Promise<void> {
  await fs.writeFile(routesFile, JSON.stringify({ replicas: 1, mirror }));
}

async function report(): Promise<MirrorReport> {
  return JSON.parse(await fs.readFile(mirrorReportFile(routesFile), 'utf8')) as MirrorReport;
}

/** The report once `done` holds for it (the gateway writes it 200 ms after a change), or the last one read. */
async function reportWhen(done: (r: MirrorReport) => boolean): Promise<MirrorReport> {
  let last: MirrorReport | undefined;
  for (let i = 0; i < 100; i++) {
    last = await report().catch(() => undefined);
    if (last && done(last)) return last;
    await delay(100);
  }
  return last!;
}

function score(body: string, extra: Record<string, string> = {}): Promise<Response> {
  const port = (gateway.address() as AddressInfo).port;
  return fetch(`http://127.0.0.1:${port}/score`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, ...extra },
    body,
  });
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-gateway-mirror-'));
  serving = http.createServer((req, res) => {
    void bodyOf(req).then((body) => {
      if (req.headers.authorization !== `Bearer ${KEY}`) {
        res.statusCode = 401;
        return res.end('{"error":"key"}');
      }
      answer(res, body);
    });
  });
  candidate = http.createServer((req, res) => {
    void bodyOf(req).then(async (body) => {
      candidateSaw.push({ auth: req.headers.authorization, id: req.headers['x-request-id'] as string | undefined });
      await held;
      answer(res, body === 'red' ? 'blue' : body);
    });
  });
  outsider = http.createServer((req, res) => {
    outsiderSaw.push(`${req.method} ${req.url}`);
    res.end('{}');
  });
  const servingUrl = await listen(serving);
  const candidateUrl = await listen(candidate);
  const outsiderUrl = await listen(outsider);
  const ready = async (d: string, url: string) => {
    await fs.mkdir(path.join(d, '0'), { recursive: true });
    await fs.writeFile(path.join(d, '0', 'ready.json'), JSON.stringify({ url }));
  };
  await ready(path.join(dir, 'deployment', 'replicas'), servingUrl);
  await ready(path.join(dir, 'deployment', 'candidate', 'replicas'), candidateUrl);
  await ready(path.join(dir, 'elsewhere'), outsiderUrl);
  await ready(path.join(dir, 'deployment', 'off-loopback'), outsiderUrl.replace('127.0.0.1', 'localhost.invalid'));
  await fs.mkdir(path.join(dir, 'deployment', 'gateway'));
  routesFile = path.join(dir, 'deployment', 'gateway', 'routes.json');
  gateway = createGateway({
    replicasDir: path.join(dir, 'deployment', 'replicas'),
    replicas: 1,
    routesFile,
    maxBodyBytes: 1024,
  });
  await listen(gateway);
});

after(async () => {
  release();
  for (const s of [gateway, serving, candidate, outsider]) s.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('clients get the serving answers while the candidate holds every copy; a full queue drops and counts', async () => {
  held = new Promise((resolve) => (release = resolve));
  await writeRoutes({
    id: 'm1',
    dir: path.join(dir, 'deployment', 'candidate', 'replicas'),
    replicas: 1,
    percent: 100,
    compare: { mode: 'top1' },
  });
  const answers = await Promise.all(
    Array.from({ length: 150 }, (_, i) => score(i % 2 ? 'red' : 'green', { 'x-request-id': `r-${i}` })),
  );
  const texts = await Promise.all(answers.map((r) => r.text()));
  assert.deepEqual(new Set(answers.map((r) => r.status)), new Set([200]));
  assert.ok(
    texts.every((t) => !t.includes('blue')),
    "no client got the candidate's answer",
  );
  assert.equal(candidateSaw.length <= 4, true, 'the candidate still holds its first copies');
  const full = await reportWhen((r) => r.id === 'm1' && r.dropped >= 150 - 68);
  assert.equal(full.dropped, 150 - 68, 'the queue (64) and the copies in flight (4) took the rest');
  assert.equal(full.pairs, 0, 'nothing compared while the candidate holds the copies');
  release();
  const final = await reportWhen((r) => r.pairs >= 68);
  assert.equal(final.pairs, 68);
  assert.equal(final.agreed + final.disagreements.length >= 5, true);
  assert.equal(final.agreed, 34, 'the green ones');
  assert.match(final.disagreements[0]!.why, /top label "red" vs "blue"/);
  assert.match(final.disagreements[0]!.requestId, /^r-\d+$/);
  assert.match(final.disagreements[0]!.candidate, /^200 \{"predictions":\[\{"label":"blue"/);
  assert.ok(
    candidateSaw.every((s) => s.auth === `Bearer ${KEY}`),
    "each copy carried the client's key",
  );
});

test('a request the serving replica refused with 401 is not copied', async () => {
  held = Promise.resolve();
  const before = candidateSaw.length;
  await writeRoutes({
    id: 'm2',
    dir: path.join(dir, 'deployment', 'candidate', 'replicas'),
    replicas: 1,
    percent: 100,
    compare: { mode: 'top1' },
  });
  const port = (gateway.address() as AddressInfo).port;
  const refused = await fetch(`http://127.0.0.1:${port}/score`, { method: 'POST', body: 'green' });
  assert.equal(refused.status, 401);
  assert.equal((await score('green')).status, 200);
  const compared = await reportWhen((r) => r.id === 'm2' && r.pairs >= 1);
  await delay(300);
  assert.equal(candidateSaw.length, before + 1, 'only the authorised request reached the candidate');
  assert.equal(compared.pairs, 1);
});

test('a mirror route outside the deployment, or a candidate off loopback, sends nothing anywhere', async () => {
  await writeRoutes({
    id: 'm3',
    dir: path.join(dir, 'elsewhere'),
    replicas: 1,
    percent: 100,
    compare: { mode: 'top1' },
  });
  assert.equal((await score('green')).status, 200);
  await writeRoutes({
    id: 'm4',
    dir: path.join(dir, 'deployment', 'off-loopback'),
    replicas: 1,
    percent: 100,
    compare: { mode: 'top1' },
  });
  assert.equal((await score('green')).status, 200);
  const last = await reportWhen((r) => r.id === 'm4' && r.failed >= 1);
  assert.deepEqual(outsiderSaw, []);
  assert.equal(last.id, 'm4');
  assert.equal(last.failed, 1, 'counted as unanswered, sent nowhere');
  assert.match(last.disagreements[0]!.candidate, /no answer/);
});

test('a gateway started again resumes the counts under their epoch; a new mirror gets its own epoch', async () => {
  held = Promise.resolve();
  const route = (id: string) => ({
    id,
    dir: path.join(dir, 'deployment', 'candidate', 'replicas'),
    replicas: 1,
    percent: 100,
    compare: { mode: 'top1' },
  });
  await writeRoutes(route('m5'));
  assert.equal((await score('red', { 'x-request-id': 'early-1' })).status, 200);
  const first = await reportWhen((r) => r.id === 'm5' && r.pairs >= 1);
  assert.ok(first.epoch, 'the report names the run that counts');
  // Another gateway (a new process's counters) on the same routes and report file: it goes on counting.
  await new Promise<void>((resolve) => gateway.close(() => resolve()));
  gateway = createGateway({
    replicasDir: path.join(dir, 'deployment', 'replicas'),
    replicas: 1,
    routesFile,
    maxBodyBytes: 1024,
  });
  await listen(gateway);
  assert.equal((await score('green')).status, 200);
  const resumed = await reportWhen((r) => r.id === 'm5' && r.pairs >= 2);
  assert.deepEqual([resumed.pairs, resumed.agreed, resumed.epoch], [2, 1, first.epoch]);
  assert.equal(resumed.disagreements[0]!.requestId, 'early-1', 'the disagreement before the restart is kept');
  await writeRoutes(route('m6'));
  assert.equal((await score('green')).status, 200);
  const next = await reportWhen((r) => r.id === 'm6' && r.pairs >= 1);
  assert.equal(next.pairs, 1);
  assert.ok(next.epoch && next.epoch !== first.epoch, 'a new mirror in this gateway counts under its own epoch');
});
