/**
 * The scoring image's build context: the same inputs give the same bytes and digest whatever the files'
 * mtimes and modes, the tar lists exactly the expected entries with fixed headers, and the tar is one that
 * other readers (tar-stream's extract, the system's tar) read back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';

import { packageRoot } from '../../../src/paths';
import { buildContext, DOCKERFILE, packTar } from '../../../src/targets/aks/build-context';
import { tarEntries } from '../../helpers/azure/arm-endpoint';

/** What the model is served with (servedWith's output for a real model; these bytes stand in). */
const SERVED = { preprocess: Buffer.from('{"resize":{"width":64,"height":64}}\n'), labels: Buffer.from('a\nb\n') };

describe('AKS build context', () => {
  let dir: string;
  let modelPath: string;
  const model = crypto.randomBytes(50_000);

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-build-context-'));
    modelPath = path.join(dir, 'model.onnx');
    await fs.writeFile(modelPath, model);
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('two builds of the same inputs give the same digest, whatever the mtimes and modes', async () => {
    const first = await buildContext(modelPath, SERVED);
    // Touch what the context is built from: the model (new mtime, another mode) and a compiled server file.
    await fs.utimes(modelPath, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    await fs.chmod(modelPath, 0o600);
    const serverJs = path.join(packageRoot(), 'dist', 'src', 'server', 'metrics.js');
    const before = await fs.stat(serverJs);
    await fs.utimes(serverJs, before.atime, new Date(before.mtimeMs + 3_600_000));
    let second;
    try {
      second = await buildContext(modelPath, SERVED);
    } finally {
      await fs.utimes(serverJs, before.atime, before.mtime);
    }
    assert.match(first.digest, /^[0-9a-f]{64}$/);
    assert.equal(second.digest, first.digest);
    assert.ok(second.archive.equals(first.archive), 'the gzipped archive is byte for byte the same');
    assert.equal(crypto.createHash('sha256').update(zlib.gunzipSync(first.archive)).digest('hex'), first.digest);

    const otherModel = path.join(dir, 'other.onnx');
    await fs.writeFile(otherModel, Buffer.concat([model, Buffer.from([1])]));
    assert.notEqual((await buildContext(otherModel, SERVED)).digest, first.digest, 'another model, another tag');
  });

  test('the tar lists the Dockerfile, package manifests, model and compiled server, with fixed headers', async () => {
    const context = await buildContext(modelPath, SERVED);
    const entries = await tarEntries(zlib.gunzipSync(context.archive));
    const names = entries.map((e) => e.header.name);
    assert.deepEqual(names, context.files, 'the entries, in the order reported');
    assert.deepEqual(names, [...names].sort(), 'sorted');
    for (const expected of [
      'Dockerfile',
      'model.onnx',
      'model.labels.txt',
      'preprocess.json',
      'package.json',
      'package-lock.json',
    ]) {
      assert.ok(names.includes(expected), expected);
    }
    for (const js of ['dist/src/server/main.js', 'dist/src/server/scoring-server.js', 'dist/src/server/metrics.js']) {
      assert.ok(names.includes(js), js);
    }
    assert.ok(
      names.filter((n) => n.startsWith('dist/')).every((n) => n.startsWith('dist/src/') && n.endsWith('.js')),
      'only compiled JavaScript from dist/src (no maps, no tests)',
    );
    for (const { header, data } of entries) {
      assert.deepEqual(
        {
          type: header.type,
          mode: header.mode,
          uid: header.uid,
          gid: header.gid,
          uname: header.uname,
          gname: header.gname,
          mtime: header.mtime.getTime(),
          size: header.size,
        },
        { type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: 0, size: data.length },
        header.name,
      );
    }
    const file = (name: string) => entries.find((e) => e.header.name === name)!.data;
    assert.equal(file('Dockerfile').toString('utf8'), DOCKERFILE);
    assert.ok(file('model.onnx').equals(model));
    assert.ok(file('model.labels.txt').equals(SERVED.labels), 'the labels the deployment serves with');
    assert.ok(file('preprocess.json').equals(SERVED.preprocess), 'the resolved preprocessing spec');
    assert.ok(file('package.json').equals(await fs.readFile(path.join(packageRoot(), 'package.json'))));
    assert.ok(
      file('dist/src/server/metrics.js').equals(
        await fs.readFile(path.join(packageRoot(), 'dist', 'src', 'server', 'metrics.js')),
      ),
    );
  });

  test('the image is built on Node 24, and every file the Dockerfile copies is in the context', async () => {
    const context = await buildContext(modelPath, SERVED);
    assert.match(DOCKERFILE, /^FROM node:24-bookworm-slim AS deps$/m);
    assert.doesNotMatch(DOCKERFILE, /node:20/);
    for (const [, source] of DOCKERFILE.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const item of source!.split(' ')) {
        assert.ok(
          context.files.some((f) => f === item || f.startsWith(`${item}/`)),
          `${item} is in the build context`,
        );
      }
    }
  });

  test('packTar: long and non-ASCII names read back, and the bytes depend on names and contents only', async () => {
    const files = new Map<string, Buffer>([
      [`${'deep/'.repeat(30)}file.js`, Buffer.from('long, with slashes (ustar prefix)')],
      ['n'.repeat(130), Buffer.from('long, no slash (pax header)')],
      ['dist/ünïcode.js', Buffer.from('non-ASCII (pax header)')],
      ['a.txt', Buffer.alloc(0)],
      ['b.bin', crypto.randomBytes(1537)],
    ]);
    const packed = await packTar(files);
    const reversed = await packTar(new Map([...files].reverse()));
    assert.ok(packed.equals(reversed), 'insertion order does not matter');
    assert.equal(packed.length % 512, 0);

    const back = await tarEntries(packed);
    assert.deepEqual(
      back.map((e) => e.header.name),
      [...files.keys()].sort(),
    );
    for (const { header, data } of back) assert.ok(data.equals(files.get(header.name)!), header.name);

    // The system's tar (GNU tar or bsdtar) reads the same names: a registry builder will too.
    const listing = spawnSync('tar', ['-tf', '-'], { input: packed, encoding: 'utf8' });
    if (listing.error) return; // no tar on this machine
    assert.equal(listing.status, 0, listing.stderr);
    assert.deepEqual(listing.stdout.trimEnd().split('\n'), [...files.keys()].sort());
  });
});
