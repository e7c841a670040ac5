/**
 * The fenced ```bash blocks of the docs, as test/docs/doc-commands.test.ts runs them: each block with its
 * file and line, whether a `<!-- docs-test: skip (reason) -->` line precedes it (blank lines between are
 * allowed), and its logical command lines (backslash continuations joined, `# …` comments cut off).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DocCommand {
  /** The command as a shell would read it, without its comment. */
  text: string;
  /** The comment after it, if any: what the docs promise it prints or does. */
  comment?: string;
  /** Ends with `&`: a process the docs leave running (a worker, a dev server). */
  background: boolean;
  /** Runs `inferctl` (or `npx inferctl`) as a command of the line. */
  inferctl: boolean;
}

export interface DocBlock {
  /** Relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  skip?: string;
  commands: DocCommand[];
}

const SKIP = /^<!--\s*docs-test:\s*skip\s*\((.+)\)\s*-->$/;
/** `inferctl` at a command position: the line's start, or after `&`, `&&`, `;`, `|`. */
export const INFERCTL_COMMAND = /(^|[;&|]\s*)(npx\s+)?inferctl(?=\s|$)/g;

/** The `# comment` of a line, outside quotes; undefined when it has none. */
function commentStart(line: string): number | undefined {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return i;
    }
  }
  return undefined;
}

function commandsOf(body: string[]): DocCommand[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of body) {
    const line = pending ? `${pending} ${raw.trim()}` : raw;
    if (/\\\s*$/.test(line)) {
      pending = line.replace(/\\\s*$/, '').trimEnd();
      continue;
    }
    pending = '';
    logical.push(line);
  }
  if (pending) logical.push(pending);
  const commands: DocCommand[] = [];
  for (const line of logical) {
    const at = commentStart(line);
    const text = (at === undefined ? line : line.slice(0, at)).trim();
    if (!text) continue;
    const comment = at === undefined ? undefined : line.slice(at + 1).trim();
    commands.push({
      text,
      ...(comment ? { comment } : {}),
      background: /(^|[^&])&$/.test(text),
      inferctl: new RegExp(INFERCTL_COMMAND.source).test(text),
    });
  }
  return commands;
}

/** The ```bash blocks of one markdown text. */
export function bashBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)(`{3,})(\S*)/.exec(lines[i]!);
    if (!fence) continue;
    const [, , ticks = '```', lang] = fence;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(ticks)) end++;
    if (lang === 'bash') {
      let before = i - 1;
      while (before >= 0 && lines[before]!.trim() === '') before--;
      const skip = before >= 0 ? SKIP.exec(lines[before]!.trim())?.[1] : undefined;
      blocks.push({
        file,
        line: i + 1,
        ...(skip ? { skip } : {}),
        commands: commandsOf(lines.slice(i + 1, end)),
      });
    }
    i = end;
  }
  return blocks;
}

/** README.md, then docs/*.md in name order: every block the docs show. */
export function docBlocks(repoRoot: string): DocBlock[] {
  const docs = fs
    .readdirSync(path.join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join('docs', f));
  return ['README.md', ...docs].flatMap((file) => bashBlocks(file, fs.readFileSync(path.join(repoRoot, file), 'utf8')));
}
