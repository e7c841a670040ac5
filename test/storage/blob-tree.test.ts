/** Which blob names under a script's model prefix can be paths in the model folder, and the size limit's setting. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { maxModelBytes, modelBlobNameProblem } from '../../src/storage/blob-tree';

test('a name that would leave the folder, or cannot be a file name, is refused with its reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['../escape.txt', /a "\.\." segment/],
    ['a/../../b', /a "\.\." segment/],
    ['./a', /a "\." segment/],
    ['/abs', /an empty path segment/],
    ['a//b', /an empty path segment/],
    ['dir/', /an empty path segment/],
    ['a\\..\\b', /a backslash/],
    ['bad\nname', /a control character/],
    ['nul\u0000', /a control character/],
    [`${'x'.repeat(256)}/y`, /a segment over 255 bytes/],
  ];
  for (const [name, reason] of cases) assert.match(modelBlobNameProblem(name) ?? 'accepted', reason, name);
});

test('ordinary names, nested and dotted, are paths', () => {
  for (const name of ['model.onnx', 'variables/variables.data-00000-of-00001', '.hidden', 'a..b/c', 'ünïcode.txt']) {
    assert.equal(modelBlobNameProblem(name), undefined, name);
  }
});

test('INFERCTL_MAX_MODEL_BYTES sets the limit; anything but a positive number leaves the 32 GiB default', () => {
  assert.equal(maxModelBytes({ INFERCTL_MAX_MODEL_BYTES: '1000' }), 1000);
  for (const v of [undefined, '', '0', '-5', 'lots']) {
    assert.equal(maxModelBytes({ INFERCTL_MAX_MODEL_BYTES: v }), 32 * 1024 ** 3, String(v));
  }
});
