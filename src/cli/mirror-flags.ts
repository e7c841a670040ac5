/**
 * `inferctl rollout`'s mirror flags: `--mirror PCT --compare top1|tolerance:X [--min-agreement F]
 * [--min-pairs N]`, checked for what goes with what and made into the rollout request's `mirror`.
 */
import { InvalidArgumentError } from '@commander-js/extra-typings';

import { MIRROR_DEFAULTS, describeMirror } from '../shared/mirror-types';
import type { MirrorCompare, MirrorReport, MirrorRequest } from '../shared/mirror-types';
import { CliError } from './cli-error';
import type { Output } from './output';

export interface MirrorFlags {
  mirror?: number;
  compare?: MirrorCompare;
  minAgreement?: number;
  minPairs?: number;
}

export function percent(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new InvalidArgumentError('--mirror must be a whole percentage from 1 to 100.');
  }
  return n;
}

/** `top1` or `tolerance:0.01`. */
export function compareFlag(value: string): MirrorCompare {
  if (value === 'top1') return { mode: 'top1' };
  const m = /^tolerance:(\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(value);
  if (m) return { mode: 'tolerance', tolerance: Number(m[1]) };
  throw new InvalidArgumentError('--compare takes top1 or tolerance:X (e.g. tolerance:0.01).');
}

export function agreementFlag(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('--min-agreement must be a fraction in (0, 1], e.g. 0.99.');
  return n;
}

/** The request's `mirror`, or undefined without --mirror; a mirror flag without it (or with --canary) is exit 2. */
export function mirrorRequest(flags: MirrorFlags, canaryGiven: boolean): MirrorRequest | undefined {
  if (flags.mirror === undefined) {
    const stray = [
      flags.compare ? '--compare' : undefined,
      flags.minAgreement !== undefined ? '--min-agreement' : undefined,
      flags.minPairs !== undefined ? '--min-pairs' : undefined,
    ].filter((f) => f !== undefined);
    if (stray.length > 0) throw new CliError(`${stray.join(', ')} go with --mirror.`, 2);
    return undefined;
  }
  if (canaryGiven)
    throw new CliError('Give --mirror or --canary, not both: a mirrored candidate answers no client.', 2);
  if (!flags.compare) throw new CliError('--mirror needs --compare top1 or --compare tolerance:X.', 2);
  return {
    percent: flags.mirror,
    compare: flags.compare,
    minAgreement: flags.minAgreement ?? MIRROR_DEFAULTS.minAgreement,
    minPairs: flags.minPairs ?? MIRROR_DEFAULTS.minPairs,
  };
}

/** The comparison's line, and its first disagreements, one a line. */
export function printMirror(report: MirrorReport, out: Output): void {
  out.line(`Comparison: ${describeMirror(report)}.`);
  for (const d of report.disagreements) {
    out.line(`  [${d.requestId}] ${d.why}`);
    out.line(`    serving:   ${d.serving}`);
    out.line(`    candidate: ${d.candidate}`);
  }
}
