/** The docs-test parser: which blocks are skipped and why, continuations, comments, background lines. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bashBlocks } from './doc-blocks';

const PAGE = [
  '# A page',
  '',
  '```bash',
  'npx inferctl worker &          # the control worker',
  "npx inferctl deploy --model m.onnx --name 'a # b' \\",
  '  --ttl none   # serves until teardown',
  'curl -s http://127.0.0.1:1/score',
  '```',
  '',
  '<!-- docs-test: skip (needs Azure) -->',
  '',
  '```bash',
  'inferctl deploy -m m.onnx --target aks',
  '```',
  '',
  '```json',
  '{"inferctl": 1}',
  '```',
  '',
  '```bash',
  'npm ci && npm test',
  '```',
].join('\n');

test('bash blocks: skip reasons, joined continuations, comments, background and inferctl lines', () => {
  const blocks = bashBlocks('docs/page.md', PAGE);
  assert.equal(blocks.length, 3, 'the json block is not a bash block');
  const [first, skipped, npm] = blocks;
  assert.equal(first!.line, 3);
  assert.equal(first!.skip, undefined);
  assert.deepEqual(first!.commands, [
    { text: 'npx inferctl worker &', comment: 'the control worker', background: true, inferctl: true },
    {
      text: "npx inferctl deploy --model m.onnx --name 'a # b' --ttl none",
      comment: 'serves until teardown',
      background: false,
      inferctl: true,
    },
    { text: 'curl -s http://127.0.0.1:1/score', background: false, inferctl: false },
  ]);
  assert.equal(skipped!.skip, 'needs Azure');
  assert.equal(skipped!.line, 12);
  assert.deepEqual(
    npm!.commands.map((c) => [c.inferctl, c.background]),
    [[false, false]],
    '&& is not a background line, npm is not inferctl',
  );
});
