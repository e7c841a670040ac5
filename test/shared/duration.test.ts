import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatDuration, parseDurationSeconds } from '../../src/shared/duration';
import { InvalidInputError } from '../../src/errors';

test('durations parse in the forms the CLI documents', () => {
  assert.equal(parseDurationSeconds('90', '--ttl'), 90);
  assert.equal(parseDurationSeconds('90s', '--ttl'), 90);
  assert.equal(parseDurationSeconds('15m', '--ttl'), 900);
  assert.equal(parseDurationSeconds('1h30m', '--ttl'), 5400);
  assert.equal(parseDurationSeconds('2d', '--ttl'), 172800);
  assert.equal(parseDurationSeconds('500ms', '--ttl'), 0.5);
  for (const bad of ['', 'soon', '10 m', '1h-5m', '0', '0s', '-5']) {
    assert.throws(() => parseDurationSeconds(bad, '--ttl'), InvalidInputError, bad);
  }
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(1500), '1.5s');
  assert.equal(formatDuration(125_000), '2m5s');
  assert.equal(formatDuration(3_900_000), '1h5m');
});
