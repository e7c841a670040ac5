/**
 * A benchmark's command line, checked before anything starts: `--help` (or `-h`) prints the usage and runs
 * nothing, and a flag the benchmark does not know, a value where none belongs or a flag missing its value
 * is refused with the usage (exit code 2) instead of being ignored at the start of a run of many minutes.
 * Each benchmark keeps reading its own flags' values where it did; this only says which flags exist.
 */

/** `switch`: no value; `value`: one value after it; `optional-value`: a value after it or none. */
export type FlagKind = 'switch' | 'value' | 'optional-value';

/** The first problem with `args` (process.argv less node and the script), or undefined. */
export function benchArgsProblem(flags: Record<string, FlagKind>, args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const kind = flags[arg];
    if (kind === undefined) {
      return arg.startsWith('-') ? `unknown flag ${arg}` : `unexpected argument "${arg}"`;
    }
    const next = args[i + 1];
    const hasValue = next !== undefined && !next.startsWith('--');
    if (kind === 'value' && !hasValue) return `${arg} needs a value`;
    if (kind !== 'switch' && hasValue) i++;
  }
  return undefined;
}

/** Prints `usage` and exits 0 for --help; prints the problem and `usage` and exits 2 for a bad command line. */
export function checkBenchArgs(usage: string, flags: Record<string, FlagKind>, argv = process.argv.slice(2)): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  const problem = benchArgsProblem(flags, argv);
  if (problem) {
    process.stderr.write(`${problem}\n\n${usage.trimEnd()}\n`);
    process.exit(2);
  }
}
