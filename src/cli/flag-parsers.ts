/** Commander argument parsers: each turns a bad value into a usage error that says what is accepted. */
import { InvalidArgumentError } from '@commander-js/extra-typings';

import { parseDurationSeconds } from '../shared/duration';

export function int(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be a whole number ≥ ${min}.`);
    return n;
  };
}

export function threshold(value: string): number {
  const t = Number(value);
  if (!(t === -1 || (t >= 0 && t < 1) || (Number.isInteger(t) && t >= 1))) {
    throw new InvalidArgumentError(
      '--error-threshold must be -1 (ignore), a fraction in [0, 1) such as 0.05, or a whole count.',
    );
  }
  return t;
}

export function duration(flag: string) {
  return (value: string): number => {
    try {
      return parseDurationSeconds(value, flag);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** What `durationOrNone` gives for `none`: a parser must not return null, which commander replaces with ''. */
export const NONE = 'none';

/** A duration, or `none` (`NONE`): e.g. `--ttl none` serves until teardown; `noneAsNull` turns it into null. */
export function durationOrNone(flag: string) {
  const parse = duration(flag);
  return (value: string): number | typeof NONE => (value.trim().toLowerCase() === NONE ? NONE : parse(value));
}

/** A `durationOrNone` value as the workflow takes it: seconds, or null for none. */
export function noneAsNull(value: number | typeof NONE): number | null {
  return value === NONE ? null : value;
}

/** An ISO 8601 date or date-time, e.g. 2026-11-20 or 2026-11-20T02:00:00Z. */
export function isoDate(flag: string) {
  return (value: string): Date => {
    const d = new Date(value);
    if (Number.isNaN(d.getTime()))
      throw new InvalidArgumentError(`${flag} "${value}" is not a date; use e.g. 2026-11-20T02:00:00Z.`);
    return d;
  };
}
