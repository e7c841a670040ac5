import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  EnvironmentFileError,
  INFERENCE_SERVER_REQUIREMENT,
  parseEnvironmentFile,
  requirementName,
} from '../../src/script/environment-file';
import { pypiNameOf } from '../../src/script/conda-names';

/** The EnvironmentFileError `fn` throws. */
function caught(fn: () => unknown): EnvironmentFileError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof EnvironmentFileError, String(err));
    return err;
  }
  assert.fail('expected an EnvironmentFileError');
}

test('a requirements file is installed as written, with the inference server added when absent', () => {
  const env = parseEnvironmentFile('/w/requirements.txt', '# deps\nnumpy==1.26.4\nPillow>=10 # images\n\nujson\n');
  assert.deepEqual(env.requirements, ['numpy==1.26.4', 'Pillow>=10', 'ujson', INFERENCE_SERVER_REQUIREMENT]);
  assert.equal(env.pythonMinor, undefined);
  const own = parseEnvironmentFile('/w/req.txt', 'azureml_inference_server_http==1.4.1\n');
  assert.deepEqual(
    own.requirements,
    ['azureml_inference_server_http==1.4.1'],
    'the user’s own pin of the server is kept',
  );
});

test('requirements pip would read from elsewhere are refused, every one at once', () => {
  const err = caught(() =>
    parseEnvironmentFile('/w/r.txt', '-r base.txt\n-e .\n./wheels/x.whl\nnumpy\n--index-url https://pypi.org/simple\n'),
  );
  assert.equal(err.problems.length, 3);
  assert.match(err.message, /line 1 "-r base.txt".*line 2 "-e \.".*line 3 "\.\/wheels\/x\.whl"/);
});

test("the how-to's conda file: conda names mapped to PyPI, conda's = read as a version prefix, the python pin kept", () => {
  const text = [
    'name: aml-accel-perf',
    'channels:',
    '  - defaults',
    'dependencies:',
    '  - python=3.11',
    '  - tensorflow-gpu = 1.12',
    '  - numpy',
    '  - conda-forge::ujson>=5',
    '  - pytorch==2.3.1',
    '  - pip',
    '  - pip:',
    '    - azureml-core',
    '    - azureml-contrib-services',
  ].join('\n');
  const env = parseEnvironmentFile('/w/myenv.yml', text);
  assert.equal(env.pythonMinor, '3.11');
  assert.deepEqual(env.requirements, [
    'tensorflow==1.12.*',
    'numpy',
    'ujson>=5',
    'torch==2.3.1',
    'azureml-core',
    'azureml-contrib-services',
    INFERENCE_SERVER_REQUIREMENT,
  ]);
  assert.deepEqual(env.renamed, ['tensorflow-gpu → tensorflow', 'pytorch → torch']);
});

test('a conda file with a mapped and unmappable dependencies names every unmappable one in one error', () => {
  const text = 'dependencies:\n  - numpy\n  - cudatoolkit=11.8\n  - mkl\n  - tensorflow-gpu\n  - python>=3\n';
  const { problems, message } = caught(() => parseEnvironmentFile('/w/env.yaml', text));
  assert.equal(problems.length, 2, message);
  assert.match(message, /python "python>=3": pin a minor version/);
  assert.match(message, /no known PyPI name: cudatoolkit, mkl \(list each under `pip:`/);
  assert.doesNotMatch(message, /numpy|tensorflow/, 'the mapped ones are not reported');
  assert.throws(() => parseEnvironmentFile('/w/env.yml', 'name: x\n'), /no `dependencies:` list/);
  assert.throws(() => parseEnvironmentFile('/w/env.yml', 'dependencies: [\n'), /not valid YAML/);
});

test('package names: conda renames and PyPI normalisation', () => {
  assert.equal(pypiNameOf('PyTorch'), 'torch');
  assert.equal(pypiNameOf('py-opencv'), 'opencv-python-headless');
  assert.equal(pypiNameOf('scikit-learn'), 'scikit-learn');
  assert.equal(pypiNameOf('libgcc-ng'), undefined);
  assert.equal(requirementName('Azureml_Inference.Server-HTTP[x]>=1'), 'azureml-inference-server-http');
});
