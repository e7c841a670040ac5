/**
 * Why the Python server exited, in a few lines a user can act on: from its log's tracebacks (the script's
 * init() raising, an import failing), the last one with a frame in the user's own code, cut to that frame
 * and the error; else the last traceback's end; else the end of the log. The server wraps the user's
 * exception in its own (UserScriptException), so the last traceback alone would show only the wrapper.
 */
import fs from 'node:fs';

/** The index of the last element that passes, or -1. */
export function lastIndexWhere<T>(items: readonly T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i]!)) return i;
  return -1;
}

interface Block {
  /** `File "…", line N, in f` lines, each followed by its source line when there is one. */
  frames: Array<{ file: string; lines: string[] }>;
  error: string;
}

function tracebacks(log: string): Block[] {
  const lines = log.split('\n').map((l) => l.replace(/\s+$/, ''));
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.includes('Traceback (most recent call last):')) continue;
    const block: Block = { frames: [], error: '' };
    let j = i + 1;
    for (; j < lines.length && (lines[j]!.startsWith(' ') || lines[j] === ''); j++) {
      const line = lines[j]!;
      const file = /^\s+File "([^"]+)"/.exec(line);
      if (file) block.frames.push({ file: file[1]!, lines: [line] });
      else if (line.trim() && !/^\s*[~^]+$/.test(line)) block.frames.at(-1)?.lines.push(line);
    }
    block.error = lines[j] ?? '';
    blocks.push(block);
    i = j;
  }
  return blocks;
}

/** The lines that say why: the last frame in `appDir` (or the last frame) and the error. */
export function lastTraceback(log: string, appDir?: string): string[] | undefined {
  const blocks = tracebacks(log);
  if (blocks.length === 0) return undefined;
  const inApp = (f: { file: string }) => appDir !== undefined && f.file.startsWith(appDir);
  const block = blocks[lastIndexWhere(blocks, (b) => b.frames.some(inApp))] ?? blocks.at(-1)!;
  const frame = block.frames[lastIndexWhere(block.frames, inApp)] ?? block.frames.at(-1);
  return [...(frame?.lines.slice(0, 2) ?? []), block.error];
}

/** The front's one message for an exited Python server. */
export function scriptFailure(
  logFile: string,
  code: number | null,
  signal: NodeJS.Signals | null,
  appDir?: string,
): string {
  let log = '';
  try {
    log = fs.readFileSync(logFile, 'utf8').slice(-64 * 1024);
  } catch {
    // no log
  }
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const initFailed = log.includes("User's init function failed") || code === 3;
  const trace = lastTraceback(log, appDir);
  const head = initFailed ? `the scoring script's init() raised; the Python server ${how}` : `the Python server ${how}`;
  const detail = trace ?? log.trim().split('\n').slice(-3);
  return `${head}:\n${detail.join('\n')}`;
}
