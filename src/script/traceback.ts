/**
 * Why the Python server exited, in a few lines a user can act on: its log's last traceback (the script's
 * init() raising, an import failing) cut to its last frames and the error, or the end of the log.
 */
import fs from 'node:fs';

/** The traceback lines kept: the last frame (File line and source line) and the error. */
const KEPT = 3;

export function lastTraceback(log: string): string[] | undefined {
  const lines = log.split('\n').map((l) => l.replace(/\s+$/, ''));
  const start = lastIndexWhere(lines, (l) => l.includes('Traceback (most recent call last):'));
  if (start < 0) return undefined;
  // The traceback ends at its first unindented line after the header: the exception itself.
  let end = start + 1;
  while (end < lines.length && (lines[end]!.startsWith(' ') || lines[end] === '')) end++;
  const body = lines.slice(start + 1, end + 1).filter((l) => l.trim() !== '' && !/^\s*[~^]+$/.test(l));
  return body.slice(-KEPT).map((l) => l.replace(/^.*?(\s*(?:File "|\w+(?:\.\w+)*(?:Error|Exception)))/, '$1'));
}

/** The front's one message for an exited Python server. */
export function scriptFailure(logFile: string, code: number | null, signal: NodeJS.Signals | null): string {
  let log = '';
  try {
    log = fs.readFileSync(logFile, 'utf8').slice(-64 * 1024);
  } catch {
    // no log
  }
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const initFailed = log.includes("User's init function failed") || code === 3;
  const trace = lastTraceback(log);
  const head = initFailed ? `the scoring script's init() raised; the Python server ${how}` : `the Python server ${how}`;
  const detail = trace ?? log.trim().split('\n').slice(-3);
  return `${head}:\n${detail.join('\n')}`;
}

/** The index of the last element that passes, or -1. */
export function lastIndexWhere<T>(items: readonly T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i]!)) return i;
  return -1;
}
