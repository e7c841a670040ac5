/**
 * The local target's rollout candidates: a second replica set under `<deployment>/candidate/`, beside the
 * serving one, behind the same gateway, which sends it the share of traffic written in its routes file.
 * Idempotent like the rest of the target: a retried start keeps the candidate replicas that run the wanted
 * bundle, and removal finds every candidate process by the marker it was started with (processes.ts).
 * A start holds the deployment's lock and starts nothing once teardown has begun (teardown-fence.ts), as
 * deploy and a gateway restart do: a rollout's activity still running during teardown leaves no candidate.
 */
import fs from 'node:fs/promises';

import { readJsonFile, writeJsonFileAtomic } from '../../json-file';
import type { DeployResult, DeploymentSpec, ImageResult, ReadinessReport } from '../../shared/target-types';
import type { MirrorReport } from '../../shared/mirror-types';
import type { CandidateMirror, CandidateSets, RequestCounts } from '../target';
import { mirrorReportFile } from './gateway';
import { emptyMirrorReport } from './gateway-mirror';
import { restartGatewayIfGone } from './gateway-process';
import type { LocalLayout } from './layout';
import { findOwnProcesses, stopProcess } from './processes';
import { isRunning, setCounts, setReadiness, spawnReplica, updateRoutes } from './replica-set';
import { sweepScriptChildren } from './script-replica';
import { startingUnlessTornDown } from './teardown-fence';
import type { ReplicaRecord } from './replica-set';

interface CandidateRecord {
  replicas: ReplicaRecord[];
}

export class LocalCandidateSets implements CandidateSets {
  constructor(private readonly layoutOf: (name: string) => LocalLayout) {}

  async start(spec: DeploymentSpec, image: ImageResult): Promise<DeployResult> {
    const layout = this.layoutOf(spec.name);
    return startingUnlessTornDown(
      layout,
      spec.name,
      { starts: 'candidate replica', missing: 'nothing to roll out to' },
      () => this.startLocked(spec, image, layout),
    );
  }

  private async startLocked(spec: DeploymentSpec, image: ImageResult, layout: LocalLayout): Promise<DeployResult> {
    const state = (await readJsonFile<CandidateRecord>(layout.candidateReplicasFile)) ?? { replicas: [] };
    const live = await findOwnProcesses(layout.candidateMarker, { ownerId: spec.ownerId });
    state.replicas = state.replicas.filter(
      (r) => r.index < spec.replicas && r.digest === image.digest && isRunning(r, live),
    );
    const keep = new Set(state.replicas.map((r) => r.pid));
    await Promise.all(live.filter((p) => !keep.has(p.pid)).map((p) => stopProcess(p.pid, undefined, p.startTime)));
    await fs.mkdir(layout.candidateDir, { recursive: true });
    let started = 0;
    for (let index = 0; index < spec.replicas; index++) {
      if (state.replicas.some((r) => r.index === index)) continue;
      const { pid, startTime } = await spawnReplica(
        layout,
        spec,
        image,
        layout.candidateReplicaDir(index),
        layout.candidateDir,
      );
      state.replicas.push({ index, pid, digest: image.digest, ...(startTime !== undefined ? { startTime } : {}) });
      started++;
      await writeJsonFileAtomic(layout.candidateReplicasFile, state);
    }
    await writeJsonFileAtomic(layout.candidateReplicasFile, state);
    return { started, replicas: spec.replicas };
  }

  async readiness(spec: DeploymentSpec): Promise<ReadinessReport> {
    const layout = this.layoutOf(spec.name);
    const state = await readJsonFile<CandidateRecord>(layout.candidateReplicasFile);
    const report: ReadinessReport = { ready: false, readyReplicas: 0, desiredReplicas: spec.replicas, replicaUrls: [] };
    if (!state) return { ...report, reason: 'no candidate replica has been started yet' };
    const set = await setReadiness(state.replicas, (index) => layout.candidateReplicaDir(index));
    if (set.fatal) return { ...report, fatal: true, reason: `candidate ${set.fatal}` };
    report.readyReplicas = set.readyReplicas;
    report.replicaUrls = set.replicaUrls;
    report.ready = set.waiting.length === 0 && set.readyReplicas === spec.replicas;
    if (!report.ready) report.reason = set.waiting.join('; ') || 'candidate replicas not started';
    return report;
  }

  async requestCount(spec: DeploymentSpec, signal?: AbortSignal): Promise<RequestCounts> {
    const layout = this.layoutOf(spec.name);
    const state = await readJsonFile<CandidateRecord>(layout.candidateReplicasFile);
    return setCounts(state?.replicas ?? [], (index) => layout.candidateReplicaDir(index), signal);
  }

  async route(spec: DeploymentSpec, candidatePercent: number): Promise<void> {
    const layout = this.layoutOf(spec.name);
    await updateRoutes(
      layout,
      candidatePercent > 0
        ? { candidate: { dir: layout.candidateReplicasDir, replicas: spec.replicas, weight: candidatePercent } }
        : { candidate: null, mirror: null },
    );
  }

  async mirror(spec: DeploymentSpec, mirror: CandidateMirror): Promise<void> {
    const layout = this.layoutOf(spec.name);
    await updateRoutes(layout, {
      mirror: { ...mirror, dir: layout.candidateReplicasDir, replicas: spec.replicas },
    });
  }

  /**
   * The gateway's counters from its report file. A gateway found gone (crashed, killed) is started again on
   * its port first, as Kubernetes starts the aks front again: the endpoint serves on, and the new gateway
   * resumes the counters from the file (what it had not written yet, at most 200 ms of pairs, is lost).
   */
  async mirrorReport(spec: DeploymentSpec, id: string, signal?: AbortSignal): Promise<MirrorReport> {
    const layout = this.layoutOf(spec.name);
    await restartGatewayIfGone(layout, spec.ownerId, signal);
    const report = await readJsonFile<MirrorReport>(mirrorReportFile(layout.routesFile));
    return report?.id === id ? report : emptyMirrorReport(id);
  }

  async remove(spec: DeploymentSpec): Promise<void> {
    const layout = this.layoutOf(spec.name);
    await updateRoutes(layout, { candidate: null, mirror: null });
    // Stopped after the gateway stops routing to them; a request in flight finishes (SIGTERM drains).
    const found = await findOwnProcesses(layout.candidateMarker, { ownerId: spec.ownerId });
    await Promise.all(found.map((p) => stopProcess(p.pid, undefined, p.startTime)));
    await sweepScriptChildren(layout, false);
    await fs.rm(layout.candidateDir, { recursive: true, force: true });
  }
}
