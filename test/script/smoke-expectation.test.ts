import assert from 'node:assert/strict';
import { test } from 'node:test';

import { lastTraceback } from '../../src/script/traceback';
import {
  expectationProblem,
  jsonPathSteps,
  parseExpectJson,
  scriptSmokeProblems,
  topLabel,
} from '../../src/script/smoke-expectation';

const sample = '/s.jpg';

test('--expect-json paths read dotted and bracketed forms, values as JSON or as text', () => {
  assert.deepEqual(jsonPathSteps('$.predictions[0].label'), ['predictions', 0, 'label']);
  assert.deepEqual(jsonPathSteps('predictions.0.label'), ['predictions', 0, 'label']);
  assert.equal(jsonPathSteps('a..b]'), undefined);
  assert.deepEqual(parseExpectJson('label=lynx'), { path: 'label', value: 'lynx' });
  assert.equal(parseExpectJson('=x'), undefined);
  const body = JSON.stringify({ predictions: [{ label: 'lynx', score: 0.5 }], n: 3, ok: true });
  const check = (path: string, value: string) =>
    expectationProblem({ samplePath: sample, expectJson: { path, value } }, body);
  assert.equal(check('predictions.0.label', 'lynx'), undefined);
  assert.equal(check('predictions.0.label', '"lynx"'), undefined);
  assert.equal(check('n', '3'), undefined);
  assert.equal(check('ok', 'true'), undefined);
  assert.match(check('n', '4') ?? '', /n is 3, not 4/);
  assert.match(check('predictions.1.label', 'lynx') ?? '', /nothing at predictions\.1\.label/);
});

test('--expect-label reads classifier-shaped answers only, and says when the answer is not one', () => {
  assert.equal(topLabel({ predictions: [{ label: 'a' }, { label: 'b' }] }), 'a');
  assert.equal(topLabel([{ label: 'c', score: 1 }]), 'c');
  assert.equal(topLabel({ label: 'd' }), 'd');
  const label = (body: string) => expectationProblem({ samplePath: sample, expectLabel: 'red' }, body);
  assert.equal(label('{"predictions":[{"label":"red","score":0.9}]}'), undefined);
  assert.match(label('{"predictions":[{"label":"blue","score":0.9}]}') ?? '', /top label is "blue", not "red"/);
  // The how-to's own answer: a list of scores, in whatever order the signature's outputs came.
  assert.match(label('[0.1, 0.9]') ?? '', /not classifier-shaped/);
  assert.match(label('GET is not supported') ?? '', /not JSON/);
  assert.equal(
    expectationProblem({ samplePath: sample, expectContains: 'not supported' }, 'GET is not supported'),
    undefined,
  );
});

test('the smoke spec itself: one expectation at most, a real status', () => {
  assert.deepEqual(scriptSmokeProblems({ samplePath: sample, expectStatus: 405, expectContains: 'x' }), []);
  assert.equal(scriptSmokeProblems({ samplePath: sample, expectLabel: 'a', expectContains: 'b' }).length, 1);
  assert.equal(scriptSmokeProblems({ samplePath: sample, expectStatus: 99 }).length, 1);
});

test('an init() traceback is cut to its last frame and the error', () => {
  const log = [
    "2026-12-06 12:00:00,000 I [1] azmlinfsrv - Invoking user's init function",
    "2026-12-06 12:00:00,001 E [1] azmlinfsrv - User's init function failed",
    '2026-12-06 12:00:00,001 E [1] azmlinfsrv - Encountered Exception Traceback (most recent call last):',
    '  File "/x/user_script.py", line 117, in invoke_init',
    '    self._user_init()',
    '  File "/app/score.py", line 6, in init',
    '    raise FileNotFoundError(f"no model at {path}")',
    'FileNotFoundError: no model at /m/missing.onnx',
    '',
    'The above exception was the direct cause of the following exception:',
    '',
    'Traceback (most recent call last):',
    '  File "/x/user_script.py", line 121, in invoke_init',
    '    raise UserScriptException(ex) from ex',
    'azureml_inference_server_http.server.user_script.UserScriptException: Caught an unhandled exception from the user script',
    '[2026-12-06 12:00:00 +0000] [1] [INFO] Worker exiting (pid: 1)',
  ].join('\n');
  assert.deepEqual(lastTraceback(log, '/app'), [
    '  File "/app/score.py", line 6, in init',
    '    raise FileNotFoundError(f"no model at {path}")',
    'FileNotFoundError: no model at /m/missing.onnx',
  ]);
  assert.equal(lastTraceback('no traceback here'), undefined);
  assert.match(lastTraceback(log)!.at(-1)!, /UserScriptException/, 'without the app folder: the last traceback');
});
