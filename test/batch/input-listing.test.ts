/**
 * Input listing: manifests in each format name the right files (CSV with quoted fields included), and a
 * bad manifest is refused with its line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { listInputs } from '../../src/batch/input-listing';
import { InvalidInputError } from '../../src/errors';

let dir: string;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-input-listing-'));
});

after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function list(input: string): Promise<string[]> {
  const out: string[] = [];
  for await (const p of listInputs(input)) out.push(p);
  return out;
}

async function manifest(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, text);
  return file;
}

test('a CSV manifest: quoted paths keep their commas and quotes; header, comments and blank lines skipped', async () => {
  const file = await manifest(
    'images.csv',
    [
      'path,label',
      '"cats, dogs/a.png",cat',
      '# a comment',
      '',
      '"say ""cheese"".png",smile',
      '  plain.png  , other ,extra column',
      '/abs/b.png',
      '"line\nbreak.png"',
      '"#not-a-comment.png"',
    ].join('\r\n') + '\r\n',
  );
  assert.deepEqual(await list(file), [
    path.join(dir, 'cats, dogs/a.png'),
    path.join(dir, 'say "cheese".png'),
    path.join(dir, 'plain.png'),
    '/abs/b.png',
    path.join(dir, 'line\nbreak.png'),
    path.join(dir, '#not-a-comment.png'),
  ]);
});

test('a CSV manifest without a header lists its first row too', async () => {
  const file = await manifest('no-header.csv', 'first.png,1\n"second, too.png",2\n');
  assert.deepEqual(await list(file), [path.join(dir, 'first.png'), path.join(dir, 'second, too.png')]);
});

test('a CSV row with an empty path is refused with its line and text', async () => {
  const file = await manifest('empty-path.csv', 'path\n# note\nok.png\n\n,label-only\n');
  await assert.rejects(list(file), (err: unknown) => {
    assert.ok(err instanceof InvalidInputError);
    assert.equal(err.type, 'InvalidManifest');
    assert.equal(err.message, `${file}:5: expected a path, got: ,label-only`);
    return true;
  });
});

test('a CSV manifest with an unclosed quote is refused as an invalid manifest', async () => {
  const file = await manifest('unclosed.csv', 'ok.png\n"never closed.png\nnext.png\n');
  await assert.rejects(list(file), (err: unknown) => {
    assert.ok(err instanceof InvalidInputError);
    assert.equal(err.type, 'InvalidManifest');
    assert.match(err.message, /^.*unclosed\.csv:\d+: .*[Qq]uote/);
    return true;
  });
});

test('text and JSON-lines manifests', async () => {
  const txt = await manifest('list.txt', 'a.png\n\n# skipped\n  b, c.png  \n');
  assert.deepEqual(await list(txt), [path.join(dir, 'a.png'), path.join(dir, 'b, c.png')]);
  const jsonl = await manifest('list.jsonl', '"a.png"\n{"path":"sub/b.png","label":1}\n');
  assert.deepEqual(await list(jsonl), [path.join(dir, 'a.png'), path.join(dir, 'sub/b.png')]);
  const bad = await manifest('bad.jsonl', '"a.png"\n{"label":1}\n');
  await assert.rejects(list(bad), (err: unknown) => {
    assert.ok(err instanceof InvalidInputError);
    assert.equal(err.type, 'InvalidManifest');
    assert.equal(err.message, `${bad}:2: expected a JSON string or {"path": …}, got: {"label":1}`);
    return true;
  });
});

test('a listing stopped early closes the manifest', async () => {
  const file = await manifest('long.csv', Array.from({ length: 100_000 }, (_, i) => `img-${i}.png,${i}`).join('\n'));
  const fds = async () => (await fs.readdir('/proc/self/fd').catch(() => [])).length;
  const open = await fds();
  for (let i = 0; i < 5; i++) {
    for await (const p of listInputs(file)) {
      assert.equal(p, path.join(dir, 'img-0.png'));
      break;
    }
  }
  // The stream closes asynchronously: wait for it (up to 10 s on a loaded machine), not a fixed 50 ms.
  const deadline = Date.now() + 10_000;
  while ((await fds()) > open && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok((await fds()) <= open, 'no file descriptor left open');
});
