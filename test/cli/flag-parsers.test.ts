/**
 * `--ttl none` through commander: a parser's null is replaced by '' (commander's "parseArg might have failed"
 * fallback), so durationOrNone returns NONE and the command turns it into null. The binary's own run of the
 * documented line is in test/docs/doc-commands.test.ts (docs/long-lived-endpoints.md).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Command } from '@commander-js/extra-typings';

import type { NONE } from '../../src/cli/flag-parsers';
import { durationOrNone, noneAsNull } from '../../src/cli/flag-parsers';

function ttlOf(argv: string[]): number | null {
  const program = new Command()
    .exitOverride()
    .option('--ttl <duration|none>', 'ttl', durationOrNone('--ttl'), 3600 as number | typeof NONE);
  program.parse(argv, { from: 'user' });
  return noneAsNull(program.opts().ttl);
}

test('--ttl none reaches the command as null; durations as seconds; the default stays', () => {
  assert.equal(ttlOf(['--ttl', 'none']), null);
  assert.equal(ttlOf(['--ttl', 'None']), null);
  assert.equal(ttlOf(['--ttl', '30m']), 1800);
  assert.equal(ttlOf([]), 3600);
  assert.throws(() => ttlOf(['--ttl', 'soon']), /--ttl "soon" is not a duration/);
});
