/** Every page under docs/ (and bench/README.md) is reachable from README.md by following local links. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const REPO = path.resolve(__dirname, '..', '..', '..');

/** The local markdown files a page links to, relative to the repository root. */
function linkedPages(page: string): string[] {
  const text = fs.readFileSync(path.join(REPO, page), 'utf8');
  const targets = [...text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!);
  return targets
    .filter((t) => !/^[a-z]+:/i.test(t) && t.endsWith('.md'))
    .map((t) => path.normalize(path.join(path.dirname(page), t)));
}

test('README.md reaches every docs page and bench/README.md', () => {
  const reached = new Set<string>();
  const queue = ['README.md'];
  while (queue.length > 0) {
    const page = queue.shift()!;
    if (reached.has(page) || !fs.existsSync(path.join(REPO, page))) continue;
    reached.add(page);
    queue.push(...linkedPages(page));
  }
  const pages = [
    ...fs
      .readdirSync(path.join(REPO, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => path.join('docs', f)),
    path.join('bench', 'README.md'),
  ];
  assert.deepEqual(
    pages.filter((p) => !reached.has(p)),
    [],
    'pages no link from README.md leads to',
  );
  assert.ok(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8').split('\n').length <= 250, 'README.md ≤ 250 lines');
});
