/**
 * The local gateway's mirror (`rollout --mirror`): a copy of the requests the serving set answered, sent to
 * the candidate set once the client has its answer, and the two answers compared (src/mirror/compare-answers.ts).
 *
 * The client never waits for it: a mirrored request joins a bounded queue after the serving answer is sent,
 * a few go to the candidate at a time, and one that finds the queue full is dropped and counted. The
 * candidate's answers go nowhere but the comparison. A copy carries the client's own headers (its key
 * included), so the candidate checks the key as it would real traffic; requests the serving set refused with
 * 401 are not copied. Where copies go is the place's (MirrorPlace): locally only a candidate replica's loopback
 * address, in the deployment's own candidate directory, with the counters and the first disagreements written
 * to `gateway/mirror.json` (0600, beside the routes file), which the rollout's bake reads (a gateway restarted
 * mid-mirror goes on counting from that file, under the file's epoch: only the last 200 ms not yet written are
 * lost); in the aks front (front.ts) the candidate's in-cluster Service, over HTTPS pinned to the deployment's
 * own certificate, with the counters in memory (a restarted front counts from zero under a new epoch, and the
 * bake adds up each epoch's last reading: mirror-bake.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import { compareAnswers } from '../../mirror/compare-answers';
import type { Answer } from '../../mirror/compare-answers';
import { MIRROR_ANSWER_EXCERPT, MIRROR_KEPT_DISAGREEMENTS } from '../../shared/mirror-types';
import type { MirrorCompare, MirrorReport } from '../../shared/mirror-types';

/** What every mirror has: its id, the share copied, how pairs are compared. */
export interface MirrorSettings {
  id: string;
  percent: number;
  compare: MirrorCompare;
}

/** The mirror as the local routes file gives it. */
export interface MirrorRoute extends MirrorSettings {
  /** The candidate set's replicas/ directory. */
  dir: string;
  replicas: number;
}

/** Where a gateway's copies go, and where its counters are kept. */
export interface MirrorPlace<R extends MirrorSettings> {
  /** Whether this mirror may be served here at all. */
  allows(route: R): boolean;
  /** The candidate's address for the next copy, or undefined when none is ready. */
  candidateUrl(route: R): URL | undefined;
  /** Where the counters are written (and found again after a restart); in memory only when left out. */
  reportFile?: string;
  /** How an https: candidate is verified (passed to https.request). */
  tls?: Pick<https.RequestOptions, 'ca' | 'checkServerIdentity'> & { allowPartialTrustChain?: boolean };
  /** The connections' agent (its own TLS options); left out, one connection per copy. */
  agent?: http.Agent;
}

/** A request the serving set answered, with its answer. */
export interface MirroredRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  serving: Answer;
}

/** Answers larger than this are not compared (counted as skipped). */
export const MIRROR_MAX_ANSWER_BYTES = 1024 * 1024;
const MAX_QUEUED = 64;
/** Copies sent to the candidate at once. */
export const MIRROR_MAX_IN_FLIGHT = 4;
const MIRROR_TIMEOUT_MS = 30_000;
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer'];

export class GatewayMirror<R extends MirrorSettings = MirrorRoute> {
  private report: MirrorReport | undefined;
  private readonly queue: Array<{ route: R; request: MirroredRequest }> = [];
  private inFlight = 0;
  private credit = 0;
  private writeTimer: NodeJS.Timeout | undefined;
  /** This run of the counting process: new at each start, so the bake tells a restart from a reading. */
  readonly epoch = crypto.randomUUID();

  constructor(private readonly place: MirrorPlace<R>) {}

  /** The counters so far (undefined before the mirror's first request). */
  current(): MirrorReport | undefined {
    return this.report;
  }

  /** The counters of mirror `id` as they stand: zero, in this run's epoch, before its first request. */
  reportOf(id: string): MirrorReport {
    return this.report?.id === id ? this.report : { ...emptyMirrorReport(id), epoch: this.epoch };
  }

  /** Whether this request (a POST, while a mirror is routed) is to be copied: `percent` of them. */
  wants(route: R | undefined, method: string | undefined): route is R {
    if (!route || method !== 'POST' || !this.place.allows(route)) return false;
    this.credit += Math.min(100, Math.max(0, route.percent));
    if (this.credit < 100) return false;
    this.credit -= 100;
    return true;
  }

  /** Queues the copy of an answered request; drops (and counts) it when the queue is full. */
  offer(route: R, request: MirroredRequest): void {
    if (request.serving.status === 401) return; // the key was refused: nothing the candidate should see
    const report = this.reportFor(route);
    if (this.queue.length >= MAX_QUEUED) {
      report.dropped++;
      this.scheduleWrite();
      return;
    }
    this.queue.push({ route, request });
    this.pump();
  }

  /** Writes the counters now (at shutdown). */
  flush(): void {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.write();
  }

  private pump(): void {
    while (this.inFlight < MIRROR_MAX_IN_FLIGHT && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.inFlight++;
      void this.mirror(job.route, job.request).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async mirror(route: R, request: MirroredRequest): Promise<void> {
    const report = this.reportFor(route);
    const requestId = requestIdOf(request.headers, report.pairs + report.failed + report.skipped + 1);
    const url = this.place.candidateUrl(route);
    let candidate: Answer | 'too-large';
    try {
      if (!url) throw new Error('no candidate replica is ready');
      candidate = await send(url, request, this.place);
    } catch (err) {
      report.failed++;
      report.pairs++;
      keep(report, requestId, `the candidate did not answer (${(err as Error).message})`, request.serving, undefined);
      this.scheduleWrite();
      return;
    }
    if (candidate === 'too-large' || request.serving.body.length > MIRROR_MAX_ANSWER_BYTES) {
      report.skipped++;
      this.scheduleWrite();
      return;
    }
    const verdict = compareAnswers(request.serving, candidate, route.compare);
    if (this.report !== report) return; // the mirror changed while this one was in flight
    report.pairs++;
    if (verdict.agree) report.agreed++;
    else keep(report, requestId, verdict.why ?? 'they differ', request.serving, candidate);
    if (verdict.difference !== undefined) {
      report.maxDifference = Math.max(report.maxDifference ?? 0, verdict.difference);
    }
    this.scheduleWrite();
  }

  /** The counters of this mirror: kept across a gateway restart, new for a new mirror id. */
  private reportFor(route: R): MirrorReport {
    if (this.report?.id === route.id) return this.report;
    let saved: MirrorReport | undefined;
    try {
      saved = this.place.reportFile
        ? (JSON.parse(fs.readFileSync(this.place.reportFile, 'utf8')) as MirrorReport)
        : undefined;
    } catch {
      saved = undefined;
    }
    // The saved counters of this mirror go on under their own epoch (a process older than epochs: this one's).
    this.report = saved?.id === route.id ? { ...saved, epoch: saved.epoch ?? this.epoch } : this.reportOf(route.id);
    this.credit = 0;
    return this.report;
  }

  private scheduleWrite(): void {
    this.writeTimer ??= setTimeout(() => {
      this.writeTimer = undefined;
      this.write();
    }, 200);
  }

  private write(): void {
    const file = this.place.reportFile;
    if (!this.report || !file) return;
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(this.report), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch {
      // The deployment's directory is going away (teardown): nothing to report to.
    }
  }
}

/**
 * The local gateway's place: only a ready candidate replica's loopback http: address (round robin), of a
 * candidate directory inside the deployment's own; the counters in `reportFile`.
 */
export function localMirrorPlace(deploymentDir: string, reportFile: string): MirrorPlace<MirrorRoute> {
  let next = 0;
  return {
    reportFile,
    allows: (route) => {
      const relative = path.relative(deploymentDir, path.resolve(route.dir));
      return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
    },
    candidateUrl: (route) => {
      const urls: URL[] = [];
      for (let i = 0; i < route.replicas; i++) {
        try {
          const ready = JSON.parse(fs.readFileSync(path.join(route.dir, String(i), 'ready.json'), 'utf8')) as {
            url?: unknown;
          };
          const url = new URL(String(ready.url));
          if (url.protocol === 'http:' && isLoopback(url.hostname)) urls.push(url);
        } catch {
          // Not ready yet, or gone.
        }
      }
      return urls.length > 0 ? urls[next++ % urls.length] : undefined;
    },
  };
}

/** A mirror's counters before its first pair. */
export function emptyMirrorReport(id: string): MirrorReport {
  return { id, pairs: 0, agreed: 0, dropped: 0, failed: 0, skipped: 0, disagreements: [] };
}

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === '[::1]' || hostname === 'localhost';
}

/** The client's own request id (`x-request-id`, `x-ms-client-request-id`), else the mirror's count. */
function requestIdOf(headers: http.IncomingHttpHeaders, count: number): string {
  const given = headers['x-request-id'] ?? headers['x-ms-client-request-id'];
  const id = Array.isArray(given) ? given[0] : given;
  return id && /^[\w.:-]{1,100}$/.test(id) ? id : `mirror-${count}`;
}

function keep(
  report: MirrorReport,
  requestId: string,
  why: string,
  serving: Answer,
  candidate: Answer | undefined,
): void {
  if (report.disagreements.length >= MIRROR_KEPT_DISAGREEMENTS) return;
  report.disagreements.push({
    requestId,
    why,
    serving: excerpt(serving),
    candidate: candidate ? excerpt(candidate) : '(no answer)',
  });
}

function excerpt(answer: Answer): string {
  const text = answer.body.subarray(0, MIRROR_ANSWER_EXCERPT).toString('utf8');
  return `${answer.status} ${text}${answer.body.length > MIRROR_ANSWER_EXCERPT ? '…' : ''}`;
}

/** The copy sent to one candidate replica; its answer, or 'too-large'. */
function send(
  url: URL,
  request: MirroredRequest,
  place: Pick<MirrorPlace<MirrorSettings>, 'tls' | 'agent'>,
): Promise<Answer | 'too-large'> {
  const headers: http.OutgoingHttpHeaders = { ...request.headers };
  for (const name of HOP_BY_HOP) delete headers[name];
  headers.host = url.host;
  headers['content-length'] = String(request.body.length);
  return new Promise((resolve, reject) => {
    const target = { hostname: url.hostname, port: url.port, path: request.url, method: request.method, headers };
    const answered = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MIRROR_MAX_ANSWER_BYTES) chunks.push(chunk);
      });
      res.on('end', () =>
        resolve(
          size > MIRROR_MAX_ANSWER_BYTES ? 'too-large' : { status: res.statusCode ?? 0, body: Buffer.concat(chunks) },
        ),
      );
      res.on('error', reject);
    };
    const upstream =
      url.protocol === 'https:'
        ? https.request({ ...target, ...place.tls, agent: place.agent ?? false }, answered)
        : http.request({ ...target, agent: place.agent ?? false }, answered);
    upstream.setTimeout(MIRROR_TIMEOUT_MS, () =>
      upstream.destroy(new Error(`no answer in ${MIRROR_TIMEOUT_MS / 1000}s`)),
    );
    upstream.on('error', reject);
    upstream.end(request.body);
  });
}
