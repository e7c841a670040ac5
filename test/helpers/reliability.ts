/**
 * Fault and bad-input tests record what they injected and what they measured; scripts/run-tests.ts
 * gathers the records into test-artifacts/reliability-report.json after the run. Values are the ones
 * the tests assert on, computed from what they observed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface ReliabilityRecord {
  test: string;
  faultsInjected: number;
  /** The run under test completed as required despite the faults. */
  survived: boolean;
  inputsTried?: number;
  inputsRejectedCleanly?: number;
  rowsLost?: number;
  rowsDuplicated?: number;
  /** Replica processes, bundles or directories left behind. */
  resourcesLeaked?: number;
  /** A security test: the kind of attack tried, e.g. 'symlink-escape' (docs/reliability-figures.md counts per kind). */
  attack?: string;
  /** How many attempts of that attack the test made. */
  attacksTried?: number;
  /** How many of them were refused as they must be. */
  attacksRefused?: number;
}

export function recordReliability(record: ReliabilityRecord): void {
  const dir = process.env.INFERCTL_RELIABILITY_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${crypto.randomBytes(6).toString('hex')}.json`), JSON.stringify(record));
}

/** Rows lost and duplicated, from the global indices that came out against how many went in. */
export function rowAccounting(indices: number[], total: number): { rowsLost: number; rowsDuplicated: number } {
  const unique = new Set(indices.filter((i) => i >= 0 && i < total)).size;
  return { rowsLost: total - unique, rowsDuplicated: indices.length - unique };
}

/** A figure a test measured, for the "Figures the tests measured" table of docs/reliability-figures.md. */
export interface TestFigure {
  test: string;
  figure: string;
  value: number;
  unit: string;
}

/** Records a measured figure beside the reliability records (a full run writes it into the docs). */
export function recordFigure(figure: TestFigure): void {
  const dir = process.env.INFERCTL_RELIABILITY_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `figure-${crypto.randomBytes(6).toString('hex')}.json`), JSON.stringify(figure));
}
