/**
 * A worker's flags as one table: each row is a command-line flag, its help, its default and the
 * INFERCTL_* variable read when the flag is not given. Both entries of a worker read the same table:
 * `node dist/worker/<kind>.js` parses argv with `parseWorkerArgv`, and `inferctl <kind>` builds its
 * commander options from it (src/cli/worker-flag-options.ts); both then call `readWorkerFlags`, the one
 * place where a flag falls back to its variable and then to its default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { InvalidInputError } from '../src/errors';

export interface WorkerFlag {
  /** The long flag without its dashes (`intra-op-threads`); a boolean that defaults to true is given as `--no-<name>`. */
  readonly name: string;
  /** The value's placeholder in --help (`<n>`); none for a boolean. */
  readonly value?: string;
  readonly description: string;
  /** Used when neither the flag nor its variable is given (booleans default to false). */
  readonly default?: string | boolean;
  /** What --help says about a default the worker works out itself (`the core count`). */
  readonly defaultText?: string;
  /** The environment variable read when the flag is not given. */
  readonly env: string;
}

export type WorkerFlagTable = readonly WorkerFlag[];

/** What a command line gave, by flag name (`intra-op-threads`); undefined: not given. */
export type GivenFlags = Readonly<Record<string, string | boolean | undefined>>;

/** The flag as typed (`--no-make-current` for a boolean that defaults to true). */
export function flagSpelling(flag: WorkerFlag): string {
  return flag.default === true ? `--no-${flag.name}` : `--${flag.name}`;
}

/** One help line's description: what it does, its default and its variable. */
export function flagHelp(flag: WorkerFlag): string {
  const fallback =
    flag.default === true
      ? `${flag.env}=0 does the same`
      : `default: ${flag.defaultText ?? (flag.default === undefined || flag.default === false ? 'off' : flag.default)}; env ${flag.env}`;
  return `${flag.description} (${fallback})`;
}

/** `node dist/worker/<kind>.js [flags]`: argv parsed against the table (unknown flags are refused). */
export function parseWorkerArgv(table: WorkerFlagTable, argv: string[]): GivenFlags {
  try {
    const { values } = parseArgs({
      args: argv,
      allowNegative: true,
      options: Object.fromEntries(
        table.map((f) => [f.name, { type: f.value === undefined ? ('boolean' as const) : ('string' as const) }]),
      ),
    });
    return values;
  } catch (err) {
    throw new InvalidInputError(err instanceof Error ? err.message : String(err));
  }
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off', ''];

/**
 * The flags' values, each from the command line, else its variable, else its default; the checks on them
 * name where a bad value came from (`--intra-op-threads` or `INFERCTL_INTRA_OP_THREADS`), and `done()`
 * reports every problem at once.
 */
export class WorkerFlagReader {
  private readonly problems: string[] = [];

  constructor(
    private readonly table: WorkerFlagTable,
    private readonly given: GivenFlags,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The value and where it came from; undefined where nothing gave one. */
  private raw(name: string): { value: string | boolean; from: string } | undefined {
    const flag = this.table.find((f) => f.name === name);
    if (!flag) throw new Error(`no worker flag --${name} in this table`);
    const given = this.given[name];
    if (given !== undefined) return { value: given, from: `--${name}` };
    const fromEnv = this.env[flag.env];
    if (fromEnv !== undefined) return { value: fromEnv, from: flag.env };
    return flag.default === undefined ? undefined : { value: flag.default, from: `--${name}'s default` };
  }

  string(name: string): string | undefined {
    const r = this.raw(name);
    if (r === undefined) return undefined;
    const text = String(r.value).trim();
    return text === '' ? undefined : text;
  }

  boolean(name: string): boolean {
    const r = this.raw(name);
    if (r === undefined) return false;
    if (typeof r.value === 'boolean') return r.value;
    const v = r.value.trim().toLowerCase();
    if (TRUE.includes(v)) return true;
    if (!FALSE.includes(v)) this.problems.push(`${r.from} must be 1 or 0 (got ${r.value})`);
    return false;
  }

  /** A whole number ≥ min, or undefined where nothing gave one. */
  whole(name: string, min: number): number | undefined {
    const r = this.raw(name);
    if (r === undefined) return undefined;
    const n = Number(r.value);
    if (typeof r.value !== 'string' || r.value.trim() === '' || !Number.isInteger(n) || n < min) {
      this.problems.push(`${r.from} must be a whole number ≥ ${min} (got ${String(r.value)})`);
      return undefined;
    }
    return n;
  }

  /** An absolute path to an existing file (`kind` file) or folder holding `holding` (`kind` folder). */
  existing(name: string, kind: 'file' | 'folder', holding?: string): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const target = holding ? path.join(value, holding) : value;
    const ok =
      path.isAbsolute(value) &&
      fs.statSync(target, { throwIfNoEntry: false })?.isFile() === true &&
      (kind === 'file' || fs.statSync(value).isDirectory());
    if (ok) return value;
    const what = kind === 'file' ? 'an existing file' : `a folder holding ${holding ?? 'files'}`;
    this.problems.push(`${this.raw(name)?.from} must be ${what}, by its absolute path (got ${value})`);
    return undefined;
  }

  /** A problem of several flags together, reported with the others. */
  problem(text: string): void {
    this.problems.push(text);
  }

  oneOf<T extends string>(name: string, choices: readonly T[]): T | undefined {
    const value = this.string(name);
    if (value === undefined || (choices as readonly string[]).includes(value)) return value as T | undefined;
    this.problems.push(`${this.raw(name)?.from} must be one of ${choices.join(', ')} (got ${value})`);
    return undefined;
  }

  /** Throws every problem found, at once, as bad input. */
  done(): void {
    if (this.problems.length > 0) throw new InvalidInputError(this.problems.join('; '));
  }
}
