/**
 * The kubelet stand-in's Python image, assembled from a scoring script's real build context
 * (script-image.ts) as its Dockerfile says: this machine's Python of the base's minor version laid out as
 * python:3.X-slim-bookworm lays out its own, `python -m venv /opt/venv` and `pip install -r` run inside it
 * (azureml-inference-server-http from PyPI), every layer cached by content so a second assembly builds
 * nothing; the venv holds container paths as the real image does, and the image's user (not root) runs
 * its Python. A minor version the machine lacks is refused with the versions it has.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, describe, test } from 'node:test';

import { findInterpreters } from '../../../src/script/interpreters';
import { planScript } from '../../../src/script/script-plan';
import { scriptBuildContext, scriptImage } from '../../../src/targets/aks/script-image';
import { readTar } from '../../helpers/azure/arm-endpoint';
import { assembleImage, inRoot } from '../../helpers/kubernetes/image-filesystem';
import { PYTHON_SKIP, fixture } from '../../helpers/script-fixtures';

describe('kubelet stand-in: a scoring script’s Python image', { skip: PYTHON_SKIP }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-pyimage-'));
  fs.chmodSync(dir, 0o711);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function context() {
    const plan = await planScript(fixture('v2-model', 'colours'), {
      entryScript: fixture('v2', 'score.py'),
      environmentFile: fixture('v2', 'requirements.txt'),
    });
    const image = scriptImage(plan, { name: 'pyimage', tls: false });
    return {
      plan,
      files: await readTar(
        zlib.gunzipSync((await scriptBuildContext(plan, fixture('v2-model', 'colours'), image)).archive),
      ),
    };
  }

  test('the venv and pip install run inside the image as its Dockerfile says; its user runs the Python', async () => {
    const { plan, files } = await context();
    const first = Date.now();
    const image = await assembleImage(files, path.join(dir, 'a'));
    const firstMs = Date.now() - first;
    const { root, config } = image;
    assert.equal(config.user, '1000:1000');
    assert.deepEqual(config.entrypoint, ['node']);
    assert.equal(config.env.LANG, 'C.UTF-8');
    assert.match(config.env.PYTHON_VERSION ?? '', new RegExp(`^${plan.interpreter.minor.replace('.', '\\.')}\\.\\d+$`));

    // What the real image holds: the interpreter in /usr/local, the venv pointing at it by container paths.
    const venv = inRoot(root, '/opt/venv');
    assert.ok(fs.statSync(inRoot(root, `/usr/local/bin/python${plan.interpreter.minor}`)).isFile());
    assert.equal(fs.readlinkSync(inRoot(root, '/usr/local/bin/python')), 'python3');
    assert.ok(!path.isAbsolute(fs.readlinkSync(path.join(venv, 'bin', 'python'))), 'a link inside the image');
    assert.match(fs.readFileSync(path.join(venv, 'bin', 'pip'), 'utf8'), /^#!\/opt\/venv\/bin\/python\n/);
    assert.ok(fs.existsSync(path.join(venv, 'requirements.txt')));
    assert.equal(
      fs.statSync(path.join(venv, 'pyvenv.cfg')).uid,
      0,
      'RUN runs as root: the image user cannot change it',
    );
    assert.ok(fs.existsSync(inRoot(root, '/var/azureml-app/app/azureml-models/colours/1/colours/labels.txt')));
    const manifest = JSON.parse(fs.readFileSync(inRoot(root, '/var/azureml-app/script.json'), 'utf8')) as {
      python: string;
    };
    assert.equal(manifest.python, '/opt/venv/bin/python');

    // The image's user runs the venv's Python and finds the server pip installed, and nothing of the host's.
    const probe =
      'import sys, azureml_inference_server_http as s, gunicorn; print(sys.prefix); print(sys.base_prefix); print(s.__file__)';
    const out = execFileSync(path.join(venv, 'bin', 'python'), ['-I', '-c', probe], {
      uid: 1000,
      gid: 1000,
      env: { PATH: '/usr/bin:/bin' },
      encoding: 'utf8',
    })
      .trim()
      .split('\n');
    assert.deepEqual(out.slice(0, 2), [venv, inRoot(root, '/usr/local')]);
    assert.ok(out[2]!.startsWith(`${venv}/lib/`), out[2]);

    // A second assembly links every layer from the cache: nothing is created or installed again.
    const second = Date.now();
    const again = await assembleImage(files, path.join(dir, 'b'));
    const secondMs = Date.now() - second;
    assert.ok(fs.existsSync(inRoot(again.root, '/opt/venv/bin/pip')));
    const ino = (r: string) => fs.statSync(inRoot(r, '/opt/venv/bin/pip')).ino;
    assert.equal(ino(again.root), ino(root), 'the same cached file, linked');
    assert.ok(secondMs < firstMs || firstMs < 20_000, `cached ${secondMs} ms, first ${firstMs} ms`);
  });

  test('a Python minor this machine lacks is refused, naming the versions it has', async () => {
    const { files } = await context();
    const have = new Set((await findInterpreters()).map((i) => i.minor));
    const missing = ['3.8', '3.9', '3.10', '3.11', '3.12', '3.13', '3.14', '3.15'].find((m) => !have.has(m))!;
    const dockerfile = files
      .get('Dockerfile')!
      .toString()
      .replace(/FROM python:3\.\d+-slim-bookworm/, `FROM python:${missing}-slim-bookworm`);
    const changed = new Map(files).set('Dockerfile', Buffer.from(dockerfile));
    await assert.rejects(
      assembleImage(changed, path.join(dir, 'c')),
      new RegExp(
        `builds python:${missing.replace('.', '\\.')}-slim-bookworm from this machine's Python ${missing.replace('.', '\\.')}, and it has none \\(it has .*3\\.\\d+`,
      ),
    );
  });
});
