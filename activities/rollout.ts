/**
 * A rollout's activities: start a candidate replica set beside the serving one, wait for it, smoke-query
 * each candidate replica, set its share of the endpoint's traffic (or mirror requests to it and read the
 * comparison), watch its error rate through the bake, remove it. Each is idempotent and delegates to the target's `candidates` (target.ts).
 */
import fs from 'node:fs/promises';

import { ApplicationFailure, Context, log } from '@temporalio/activity';

import type { ScriptSmokeResult, ScriptSmokeSpec, SmokeResult, SmokeSpec } from '../src/shared/deploy-types';
import type { MirrorReport } from '../src/shared/mirror-types';
import { FailureType } from '../src/shared/failure-types';
import type {
  DeployResult,
  DeploymentSpec,
  ImageResult,
  ReadinessReport,
  TargetKind,
} from '../src/shared/target-types';
import { endpointRequest } from '../src/targets/endpoint-request';
import type { CandidateMirror, CandidateSets, Target } from '../src/targets/target';
import type { WaitOptions } from './deploy';
import { parsePredictions } from './endpoint-answers';
import { failingPermanently } from './failures';
import { scriptSmokeQuery } from './script-deployment';
import { withHeartbeat } from './heartbeat';

export interface RolloutActivityDeps {
  targets: Partial<Record<TargetKind, Target>>;
}

export interface BakeOptions {
  seconds: number;
  /** The rollout fails once errors / requests exceeds this (with at least `minRequests` answered). */
  maxErrorRate: number;
  minRequests: number;
}

export interface BakeReport {
  requests: number;
  errors: number;
}

/** What bakeCandidate heartbeats: the counters at the bake's start, and when it started (ms since the epoch). */
interface BakeHeartbeat {
  startedAt: number;
  baseTotal: number;
  baseErrors: number;
}

export function createRolloutActivities({ targets }: RolloutActivityDeps) {
  function candidatesOf(kind: TargetKind): { target: Target; candidates: CandidateSets } {
    const target = targets[kind];
    if (!target?.candidates) {
      throw ApplicationFailure.nonRetryable(
        `Target "${kind}" cannot run a candidate beside the serving version (rollout is not supported there yet).`,
        FailureType.TargetUnavailable,
      );
    }
    return { target, candidates: target.candidates };
  }

  return {
    async startCandidate(spec: DeploymentSpec, image: ImageResult): Promise<DeployResult> {
      const { candidates } = candidatesOf(spec.target);
      return failingPermanently(() => candidates.start(spec, image, Context.current().cancellationSignal));
    },

    /** Polls the candidate's readiness, heartbeating; the deadline counts from the first attempt. */
    async waitForCandidate(spec: DeploymentSpec, opts: WaitOptions): Promise<ReadinessReport> {
      const { candidates } = candidatesOf(spec.target);
      const ctx = Context.current();
      const previous = ctx.info.heartbeatDetails as { firstPolledAt?: number } | undefined;
      const firstPolledAt = previous?.firstPolledAt ?? Date.now();
      for (;;) {
        const report = await failingPermanently(() => candidates.readiness(spec, ctx.cancellationSignal));
        ctx.heartbeat({ firstPolledAt, readyReplicas: report.readyReplicas });
        if (report.ready) return report;
        if (report.fatal || Date.now() >= firstPolledAt + opts.timeoutSeconds * 1000) {
          throw ApplicationFailure.nonRetryable(
            `The candidate was not ready (${report.readyReplicas}/${report.desiredReplicas} replicas): ${report.reason}`,
            FailureType.DeploymentNotReady,
          );
        }
        await ctx.sleep(opts.pollIntervalMs ?? 500);
      }
    },

    /**
     * POSTs the sample to every candidate replica with the key (or, where the target reaches the candidate
     * only as a whole, to its own address: `candidates.access`); each must answer, with the expected label.
     */
    async smokeCandidate(spec: DeploymentSpec, replicaUrls: string[], smoke: SmokeSpec): Promise<SmokeResult> {
      const { target, candidates } = candidatesOf(spec.target);
      const signal = Context.current().cancellationSignal;
      const access = candidates.access
        ? await failingPermanently(() => candidates.access!(spec, signal))
        : await failingPermanently(() => target.endpointAccess(spec));
      const urls = candidates.access ? [access.endpoint] : replicaUrls;
      const body = await fs.readFile(smoke.samplePath);
      let result: SmokeResult | undefined;
      for (const url of urls) {
        const started = Date.now();
        const res = await endpointRequest({ ...access, endpoint: url }, '/score', {
          method: 'POST',
          body,
          headers: { authorization: `Bearer ${access.apiKey}`, 'content-type': 'image/jpeg' },
          signal,
        });
        const { text } = res;
        const predictions = res.status === 200 ? parsePredictions(text) : undefined;
        if (!predictions) {
          throw ApplicationFailure.nonRetryable(
            `The candidate's smoke query got ${res.status} from ${url}: ${text.slice(0, 300)}`,
            FailureType.SmokeQueryFailed,
          );
        }
        const top = predictions[0]!;
        if (smoke.expectedLabel !== undefined && top.label !== smoke.expectedLabel) {
          throw ApplicationFailure.nonRetryable(
            `The candidate's smoke query expected top label "${smoke.expectedLabel}" but it answered "${top.label}" ` +
              `(score ${top.score.toFixed(3)}).`,
            FailureType.SmokeQueryMismatch,
          );
        }
        result = { predictions, latencyMs: Date.now() - started };
      }
      return result!;
    },

    /**
     * A scoring-script candidate's smoke query, as deploy's (script-deployment.ts: 401 without the key, the
     * expected status and check with it), on every candidate replica; the first that misses fails the rollout.
     */
    async smokeScriptCandidate(
      spec: DeploymentSpec,
      replicaUrls: string[],
      smoke: ScriptSmokeSpec,
    ): Promise<ScriptSmokeResult> {
      const { target, candidates } = candidatesOf(spec.target);
      const signal = Context.current().cancellationSignal;
      const access = candidates.access
        ? await failingPermanently(() => candidates.access!(spec, signal))
        : await failingPermanently(() => target.endpointAccess(spec));
      let result: ScriptSmokeResult | undefined;
      for (const url of candidates.access ? [access.endpoint] : replicaUrls) {
        result = await scriptSmokeQuery({ ...access, endpoint: url }, smoke, signal, 'The candidate');
      }
      return result!;
    },

    async routeToCandidate(spec: DeploymentSpec, percent: number): Promise<void> {
      const { candidates } = candidatesOf(spec.target);
      await failingPermanently(() => candidates.route(spec, percent));
      log.info('Candidate traffic set', { name: spec.name, percent });
    },

    /**
     * Watches the candidate's own counters for `seconds`; fails (not retried) as soon as its error rate
     * passes the threshold. Heartbeats the counters at its start, so a retry keeps the bake's clock.
     */
    async bakeCandidate(spec: DeploymentSpec, opts: BakeOptions): Promise<BakeReport> {
      const { candidates } = candidatesOf(spec.target);
      const ctx = Context.current();
      let base = ctx.info.heartbeatDetails as BakeHeartbeat | undefined;
      if (!base) {
        const counts = await candidates.requestCount(spec, ctx.cancellationSignal);
        base = { startedAt: Date.now(), baseTotal: counts.total, baseErrors: counts.errors };
      }
      for (;;) {
        const counts = await candidates.requestCount(spec, ctx.cancellationSignal);
        const report = { requests: counts.total - base.baseTotal, errors: counts.errors - base.baseErrors };
        ctx.heartbeat(base);
        if (report.requests >= opts.minRequests && report.errors / report.requests > opts.maxErrorRate) {
          throw ApplicationFailure.nonRetryable(
            `The candidate answered ${report.errors} error(s) in ${report.requests} request(s) during its bake ` +
              `(${((100 * report.errors) / report.requests).toFixed(1)}%, over the ${(100 * opts.maxErrorRate).toFixed(1)}% allowed).`,
            FailureType.CanaryErrorRate,
          );
        }
        if (Date.now() >= base.startedAt + opts.seconds * 1000) return report;
        await ctx.sleep(Math.min(1000, base.startedAt + opts.seconds * 1000 - Date.now() + 10));
      }
    },

    /** A mirror rollout: copies of `percent` of the served requests go to the candidate, compared, never answered. */
    async mirrorToCandidate(spec: DeploymentSpec, mirror: CandidateMirror): Promise<void> {
      const { candidates } = candidatesOf(spec.target);
      if (!candidates.mirror) {
        throw ApplicationFailure.nonRetryable(
          `Target "${spec.target}" cannot mirror requests to a candidate yet; roll out with a canary (--canary) instead.`,
          FailureType.TargetUnavailable,
        );
      }
      await withHeartbeat((signal) => failingPermanently(() => candidates.mirror!(spec, mirror, signal)));
      log.info('Candidate mirror set', { name: spec.name, percent: mirror.percent });
    },

    /** What the mirror has compared so far (the gateway's counters). */
    async mirrorReport(spec: DeploymentSpec, id: string): Promise<MirrorReport> {
      const { candidates } = candidatesOf(spec.target);
      if (!candidates.mirrorReport) {
        throw ApplicationFailure.nonRetryable(`Target "${spec.target}" cannot mirror.`, FailureType.TargetUnavailable);
      }
      return failingPermanently(() => candidates.mirrorReport!(spec, id, Context.current().cancellationSignal));
    },

    async removeCandidate(spec: DeploymentSpec): Promise<void> {
      const { candidates } = candidatesOf(spec.target);
      await withHeartbeat((signal) => candidates.remove(spec, signal));
      log.info('Candidate removed', { name: spec.name });
    },
  };
}
