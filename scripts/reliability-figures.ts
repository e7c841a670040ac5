/**
 * docs/reliability-figures.md, written by a full `npm test` (scripts/run-tests.ts) from the run's reliability
 * report: the date, the totals, one row per kind of record (the test that wrote it), and the attacks tried per
 * kind. Never edited by hand; docs/reliability.md links it.
 */
import fs from 'node:fs';
import path from 'node:path';

import prettier from 'prettier';

/** One record as the tests write it (test/helpers/reliability.ts), read back from JSON. */
export type ReportRecord = Record<string, number | boolean | string | undefined>;

export interface ReliabilityReport {
  date: string;
  totals: Record<string, number>;
  records: ReportRecord[];
  /** Figures the tests measured (test/helpers/reliability.ts recordFigure): test, figure, value, unit. */
  figures?: ReportRecord[];
}

export const FIGURES_FILE = path.join('docs', 'reliability-figures.md');

const num = (r: ReportRecord, key: string): number => (typeof r[key] === 'number' ? r[key] : 0);
const fmt = (n: number): string => n.toLocaleString('en-US');

interface KindRow {
  kind: string;
  runs: number;
  survived: number;
  faults: number;
  inputsTried: number;
  inputsRefused: number;
  rowsLost: number;
  rowsDuplicated: number;
  leaked: number;
}

function byKind(records: ReportRecord[]): KindRow[] {
  const rows = new Map<string, KindRow>();
  for (const r of records) {
    const kind = typeof r.test === 'string' ? r.test : '(unnamed)';
    const row = rows.get(kind) ?? {
      kind,
      runs: 0,
      survived: 0,
      faults: 0,
      inputsTried: 0,
      inputsRefused: 0,
      rowsLost: 0,
      rowsDuplicated: 0,
      leaked: 0,
    };
    row.runs++;
    if (r.survived === true) row.survived++;
    row.faults += num(r, 'faultsInjected');
    row.inputsTried += num(r, 'inputsTried');
    row.inputsRefused += num(r, 'inputsRejectedCleanly');
    row.rowsLost += num(r, 'rowsLost');
    row.rowsDuplicated += num(r, 'rowsDuplicated');
    row.leaked += num(r, 'resourcesLeaked');
    rows.set(kind, row);
  }
  return [...rows.values()].sort((a, b) => a.kind.localeCompare(b.kind));
}

function attacks(records: ReportRecord[]): Array<{ attack: string; tests: number; tried: number; refused: number }> {
  const rows = new Map<string, { attack: string; tests: number; tried: number; refused: number }>();
  for (const r of records) {
    if (typeof r.attack !== 'string') continue;
    const row = rows.get(r.attack) ?? { attack: r.attack, tests: 0, tried: 0, refused: 0 };
    row.tests++;
    row.tried += num(r, 'attacksTried');
    row.refused += num(r, 'attacksRefused');
    rows.set(r.attack, row);
  }
  return [...rows.values()].sort((a, b) => a.attack.localeCompare(b.attack));
}

const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** The page's markdown (not yet formatted). */
export function renderReliabilityFigures(report: ReliabilityReport): string {
  const t = report.totals;
  const total = (key: string) => fmt(t[key] ?? 0);
  const lines = [
    '# Reliability figures',
    '',
    `<!-- Written by \`npm test\` (a full run; scripts/run-tests.ts) from test-artifacts/reliability-report.json. Do not edit. -->`,
    '',
    `Figures of the last full run, ${report.date.slice(0, 10)} (${report.date}). What each test injects and`,
    'asserts: [reliability.md](reliability.md).',
    '',
    '## Totals',
    '',
    '| figure | value |',
    '| --- | --- |',
    `| faults injected (SIGKILLs, SIGSTOPs, cancellations, server stops) | ${total('faultsInjected')} across ${total('runsUnderFault')} recorded runs |`,
    `| runs that completed as required despite them | ${total('runsSurvived')} of ${total('runsUnderFault')} |`,
    `| malformed inputs tried / refused with a typed reason | ${total('inputsTried')} / ${total('inputsRejectedCleanly')} |`,
    `| output rows lost / duplicated | ${total('rowsLost')} / ${total('rowsDuplicated')} |`,
    `| replicas, bundles or directories leaked | ${total('resourcesLeaked')} |`,
    `| endpoint keys searched for in every workflow history / histories that held one | ${total('endpointKeysChecked')} / ${total('secretLeaks')} |`,
    '',
    '## By kind of record',
    '',
    '| record | runs | completed | faults | inputs tried / refused | rows lost / duplicated | leaked |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...byKind(report.records).map(
      (r) =>
        `| ${cell(r.kind)} | ${r.runs} | ${r.survived} | ${fmt(r.faults)} | ${fmt(r.inputsTried)} / ${fmt(r.inputsRefused)} | ${r.rowsLost} / ${r.rowsDuplicated} | ${r.leaked} |`,
    ),
    '',
    '## Attacks tried',
    '',
  ];
  const tried = attacks(report.records);
  if (tried.length === 0) {
    lines.push('No test of this run recorded an attack (records with `attack`, `attacksTried`, `attacksRefused`).');
  } else {
    lines.push('| attack | tests | tried | refused |', '| --- | ---: | ---: | ---: |');
    for (const a of tried) lines.push(`| ${cell(a.attack)} | ${a.tests} | ${fmt(a.tried)} | ${fmt(a.refused)} |`);
  }
  lines.push('', '## Figures the tests measured', '');
  const figures = report.figures ?? [];
  if (figures.length === 0) {
    lines.push('No test of this run recorded a figure.');
  } else {
    lines.push('| test | figure | value |', '| --- | --- | ---: |');
    for (const f of figures) {
      lines.push(
        `| ${cell(String(f.test))} | ${cell(String(f.figure))} | ${fmt(num(f, 'value'))} ${cell(String(f.unit))} |`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

/** Writes docs/reliability-figures.md under `repoRoot`, formatted as the repository's Prettier settings say. */
export async function writeReliabilityFigures(repoRoot: string, report: ReliabilityReport): Promise<string> {
  const file = path.join(repoRoot, FIGURES_FILE);
  const options = (await prettier.resolveConfig(file)) ?? {};
  const text = await prettier.format(renderReliabilityFigures(report), { ...options, parser: 'markdown' });
  fs.writeFileSync(file, text);
  return file;
}
