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

/** `412 pairs, 99.8% agree, 0 dropped` (and the largest difference when there is one). */
export function describeMirror(report: MirrorReport): string {
  const agreement = mirrorAgreement(report);
  return (
    `${report.pairs} pair(s) compared, ` +
    (agreement === undefined ? 'none yet' : `${(100 * agreement).toFixed(1)}% agree`) +
    `, ${report.dropped} dropped` +
    (report.failed > 0 ? `, ${report.failed} unanswered by the candidate` : '') +
    (report.maxDifference !== undefined ? `, largest difference ${report.maxDifference.toPrecision(3)}` : '')
  );
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
