/**
 * A mirror rollout's plain data (`rollout --mirror PCT --compare … --min-agreement …`): how a pair of answers
 * is compared, and what the comparison found so far. Workflow-safe: it travels in the rollout request, the
 * status and the result.
 */

/** `top1`: the same top label (classifiers) or argmax (tensors); `tolerance`: numbers within `tolerance` too. */
export type MirrorCompare = { mode: 'top1' } | { mode: 'tolerance'; tolerance: number };

export interface MirrorRequest {
  /** The share (1-100) of the requests served by the current version that are also sent to the candidate. */
  percent: number;
  compare: MirrorCompare;
  /** Promote only when agreed / pairs is at least this (default 0.99). */
  minAgreement: number;
  /** Promote only with at least this many compared pairs (default 20). */
  minPairs: number;
}

export const MIRROR_DEFAULTS = { minAgreement: 0.99, minPairs: 20 } as const;

/** One pair the candidate answered differently: the request id and both answers, truncated. */
export interface MirrorDisagreement {
  requestId: string;
  /** Why, in a phrase ("top label red vs blue", "status 200 vs 500"). */
  why: string;
  serving: string;
  candidate: string;
}

/** What the gateway's comparison has counted since the mirror began. */
export interface MirrorReport {
  /** The mirror these counters belong to (a rollout's own id). */
  id: string;
  /**
   * The run of the process that counts (a random id per start of the aks front or the local gateway): two
   * readings of one epoch are one count, the later one further on; a new epoch is a restarted process that
   * counts from zero (or, the local gateway, from its report file: then the epoch is the file's). Absent from
   * a process older than epochs.
   */
  epoch?: string;
  /** When the reading sums several processes (an aks front rolling: two pods), each one's own reading. */
  parts?: MirrorReport[];
  /** Set by the bake: how many runs of the counting process these counts add up (more than 1: it restarted). */
  runs?: number;
  /** Pairs compared: the serving version's answer and the candidate's to the same request. */
  pairs: number;
  agreed: number;
  /** Mirrors dropped because the queue was full (the client was never made to wait). */
  dropped: number;
  /** Mirrors the candidate did not answer (refused, reset, timed out): counted as disagreements too. */
  failed: number;
  /** Requests not compared: an answer over the comparison's size limit. */
  skipped: number;
  /** The largest score (or number) difference seen in an agreeing or disagreeing pair. */
  maxDifference?: number;
  /** The first few disagreements. */
  disagreements: MirrorDisagreement[];
}

/** How many disagreements a report keeps, and how many characters of each answer. */
export const MIRROR_KEPT_DISAGREEMENTS = 5;
export const MIRROR_ANSWER_EXCERPT = 300;

/** agreed / pairs, or undefined before the first pair. */
export function mirrorAgreement(report: Pick<MirrorReport, 'pairs' | 'agreed'>): number | undefined {
  return report.pairs > 0 ? report.agreed / report.pairs : undefined;
}

/** `412 pairs, 99.8% agree, 0 dropped` (and the largest difference when there is one; the runs after a restart). */
export function describeMirror(report: MirrorReport): string {
  const agreement = mirrorAgreement(report);
  const runs = report.runs ?? 1;
  return (
    `${report.pairs} pair(s) compared, ` +
    (agreement === undefined ? 'none yet' : `${(100 * agreement).toFixed(1)}% agree`) +
    `, ${report.dropped} dropped` +
    (report.failed > 0 ? `, ${report.failed} unanswered by the candidate` : '') +
    (report.maxDifference !== undefined ? `, largest difference ${report.maxDifference.toPrecision(3)}` : '') +
    (runs > 1
      ? `, added up over ${runs} runs of the mirror's process (it restarted ${runs - 1} time(s); pairs compared ` +
        'between the last reading and a restart are not counted)'
      : '')
  );
}

/**
 * The bake's readings so far with one more: the last reading of each run (epoch) of the counting process,
 * in the order first seen. A restarted process counts from zero under a new epoch; the runs before it keep
 * their last reading, so nothing read before a restart is lost. A reading of a known epoch replaces that
 * run's unless it counted less (a run's counts only grow). A reading without an epoch (a process older than
 * epochs) stands alone, as before epochs, and is replaced by the next reading.
 */
export function observeMirror(runs: readonly MirrorReport[], reading: MirrorReport): MirrorReport[] {
  const next = runs.filter((r) => r.epoch !== undefined);
  for (const part of reading.parts ?? [reading]) {
    const { parts: _parts, runs: _runs, ...plain } = part;
    if (plain.epoch === undefined) return [plain];
    const i = next.findIndex((r) => r.epoch === plain.epoch);
    if (i < 0) next.push(plain);
    else if (counted(plain) >= counted(next[i]!)) next[i] = plain;
  }
  return next;
}

function counted(r: MirrorReport): number {
  return r.pairs + r.dropped + r.skipped;
}

/**
 * The runs' counts added up: pairs, agreed, dropped, failed, skipped; the largest difference of any; the
 * first disagreements in the order the runs came (the earliest kept); `runs` how many there were.
 */
export function mergeMirrorReports(id: string, runs: readonly MirrorReport[]): MirrorReport {
  const sum: MirrorReport = { id, pairs: 0, agreed: 0, dropped: 0, failed: 0, skipped: 0, disagreements: [] };
  for (const run of runs) {
    for (const key of ['pairs', 'agreed', 'dropped', 'failed', 'skipped'] as const) sum[key] += run[key];
    if (run.maxDifference !== undefined) sum.maxDifference = Math.max(sum.maxDifference ?? 0, run.maxDifference);
    sum.disagreements.push(...run.disagreements);
  }
  sum.disagreements = sum.disagreements.slice(0, MIRROR_KEPT_DISAGREEMENTS);
  if (runs.length === 1 && runs[0]!.epoch !== undefined) sum.epoch = runs[0]!.epoch;
  if (runs.length > 1) sum.runs = runs.length;
  return sum;
}

/**
 * Why the candidate is kept off after its mirror, in a sentence naming the first disagreements; undefined
 * when it may be promoted (at least `minPairs` pairs, agreement at or above `minAgreement`).
 */
export function mirrorRefusal(report: MirrorReport, request: MirrorRequest): string | undefined {
  const agreement = mirrorAgreement(report) ?? 0;
  if (report.pairs < request.minPairs) {
    return (
      `only ${report.pairs} pair(s) were compared during the bake (${request.minPairs} needed` +
      (report.dropped > 0 ? `; ${report.dropped} dropped with the mirror queue full` : '') +
      '): send traffic during the bake, or lengthen --bake'
    );
  }
  if (agreement >= request.minAgreement) return undefined;
  const shown = report.disagreements
    .map((d) => `[${d.requestId}] ${d.why}: serving ${d.serving} | candidate ${d.candidate}`)
    .join('; ');
  return (
    `the candidate agreed on ${report.agreed} of ${report.pairs} pair(s) (${(100 * agreement).toFixed(1)}%, ` +
    `under the ${(100 * request.minAgreement).toFixed(1)}% required); first disagreements: ${shown}`
  );
}
