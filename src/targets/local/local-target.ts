/**
 * The `local` target: the embedded default. The "cluster" is a directory, the "image" a content-addressed
 * bundle, the replicas real scoring-server processes on loopback behind a round-robin gateway.
 * Every method is idempotent and finds its state on disk, so a worker that died mid-step can be replaced.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { InvalidInputError } from '../../errors';
import { readModelFile, readModelInfo, readOverrides } from '../../model/model-info';
import { configOf } from '../../preprocess/preprocess-spec';
import { generateApiKey, ensureSecretFile } from '../api-key';
import type { EndpointAccess, GatewayCounts, RequestCounts, StepProgress, Target } from '../target';
import type {
  DeployResult,
  DeploymentSpec,
  ImageResult,
  ProvisionResult,
  ReadinessReport,
  TeardownReport,
} from '../../shared/target-types';
import type { GatewayRevival } from '../../shared/gateway-watch-types';
import { LocalCandidateSets } from './candidate-sets';
import { readGatewayCounts } from './gateway-counts';
import { gatewayReadyFile, restartGatewayIfGone, startGateway } from './gateway-process';
import type { GatewayRecord } from './gateway-process';
import { logTail } from './detached-process';
import { LocalLayout } from './layout';
import { findOwnProcesses, findProcessesByMarker, isAlive, stopProcess } from './processes';
import { MAX_BODY_BYTES, answers, isRunning, setCounts, setReadiness, spawnReplica, updateRoutes } from './replica-set';
import type { ReadyFile, ReplicaRecord } from './replica-set';
import { buildScriptImage, pythonEnvCache, sweepScriptChildren } from './script-replica';
import { clearTearingDown, markTearingDown, startingUnlessTornDown } from './teardown-fence';
import { readJsonFile, writeJsonFileAtomic } from '../../json-file';
import { FailureType } from '../../shared/failure-types';
import { fileExists } from '../../file-exists';

export { MAX_HELD_REQUESTS, RETRY_AFTER_SECONDS } from './gateway-process';

function holdMs(spec: DeploymentSpec): number {
  return spec.hold ? Math.round(spec.hold.wakeTimeoutSeconds * 1000) : 0;
}

interface ClusterRecord {
  ownerId: string;
  createdAt: string;
}

interface ReplicasRecord {
  replicas: ReplicaRecord[];
  gateway?: GatewayRecord;
}

export interface LocalTargetOptions {
  /** Parent of the per-deployment directories; default `<INFERCTL_HOME>/local`. */
  root?: string;
  /** Where script deployments' Python environments are kept; default INFERCTL_PYTHON_ENVS, else `<root>/.python-envs`. */
  pythonEnvs?: string;
}

export class LocalTarget implements Target {
  readonly kind = 'local' as const;

  readonly candidates: LocalCandidateSets;

  constructor(private readonly opts: LocalTargetOptions = {}) {
    this.candidates = new LocalCandidateSets((name) => this.layout(name));
  }

  layout(name: string): LocalLayout {
    return new LocalLayout(name, this.opts.root);
  }

  async provision(spec: DeploymentSpec): Promise<ProvisionResult> {
    const layout = this.layout(spec.name);
    const existing = await readJsonFile<ClusterRecord>(layout.clusterFile);
    if (existing && existing.ownerId !== spec.ownerId) {
      const live = await findProcessesByMarker(layout.processMarker); // any owner's: the name is taken while they run
      if (live.length > 0) {
        throw new InvalidInputError(
          `Local deployment "${spec.name}" is still running for workflow ${existing.ownerId} ` +
            `(pids ${live.join(', ')}). Tear it down first: inferctl teardown ${spec.name}`,
          FailureType.DeploymentNameInUse,
        );
      }
    }
    await fs.mkdir(layout.dir, { recursive: true, mode: 0o700 });
    if (!existing || existing.ownerId !== spec.ownerId) {
      await writeJsonFileAtomic(layout.clusterFile, { ownerId: spec.ownerId, createdAt: new Date().toISOString() });
    }
    await ensureSecretFile(layout.apiKeyFile, generateApiKey);
    await clearTearingDown(layout); // left by an earlier run's teardown that did not finish
    return {
      clusterId: layout.dir,
      created: !existing || existing.ownerId !== spec.ownerId,
      secretRef: layout.apiKeyFile,
    };
  }

  async buildImage(spec: DeploymentSpec, signal?: AbortSignal, progress?: StepProgress): Promise<ImageResult> {
    const layout = this.layout(spec.name);
    if (spec.script) {
      const envs = this.opts.pythonEnvs ?? pythonEnvCache(path.dirname(layout.dir));
      return buildScriptImage(layout, { ...spec, script: spec.script }, envs, signal, progress);
    }
    const files: Record<string, Buffer> = { 'model.onnx': await readModelFile(spec.modelPath) };
    if (spec.protocol === 'v2') {
      // Any model, on the Open Inference Protocol only: no labels, no preprocessing.
      files['server.json'] = Buffer.from(JSON.stringify({ protocol: 'v2', maxBodyBytes: MAX_BODY_BYTES }, null, 2));
    } else {
      const info = await readModelInfo(spec.modelPath, await readOverrides(spec));
      // The bundle keeps the spec and labels the deployment was validated with, resolved: the replicas read
      // them with --preprocess and --labels, whatever the model's sidecars or metadata say.
      files['model.labels.txt'] = Buffer.from(info.labels.join('\n') + '\n');
      files['preprocess.json'] = Buffer.from(JSON.stringify(configOf(info), null, 2) + '\n');
      files['server.json'] = Buffer.from(JSON.stringify({ topK: spec.topK, maxBodyBytes: MAX_BODY_BYTES }, null, 2));
    }
    const hash = crypto.createHash('sha256');
    for (const [name, content] of Object.entries(files)) {
      hash.update(`${name}\0${content.length}\0`).update(content);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    const dir = layout.bundleDir(digest);
    if (await fileExists(path.join(dir, '.complete'))) return { imageRef: dir, digest, reused: true };

    const tmp = `${dir}.${process.pid}.tmp`;
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp, { recursive: true });
    for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(tmp, name), content);
    await fs.writeFile(path.join(tmp, '.complete'), digest);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(tmp, dir);
    return { imageRef: dir, digest, reused: false };
  }

  /**
   * Under the deployment's lock (teardown-fence.ts): a gateway watch or mirror bake that would start the
   * gateway again waits, then finds what this recorded; once teardown has begun, nothing is started.
   */
  async deploy(spec: DeploymentSpec, image: ImageResult): Promise<DeployResult> {
    const layout = this.layout(spec.name);
    return startingUnlessTornDown(
      layout,
      spec.name,
      { starts: 'replica or gateway', missing: 'provision it first' },
      () => this.deployLocked(spec, image, layout),
    );
  }

  private async deployLocked(spec: DeploymentSpec, image: ImageResult, layout: LocalLayout): Promise<DeployResult> {
    const state = (await readJsonFile<ReplicasRecord>(layout.replicasFile)) ?? { replicas: [] };
    const candidates = new Set(await findProcessesByMarker(layout.candidateMarker, { ownerId: spec.ownerId }));
    // The serving set's own processes (replicas and the gateway; a rollout's candidate set is not this
    // set's to stop), by the marker they were started with.
    const live = await findOwnProcesses(layout.dir, { ownerId: spec.ownerId });
    const serving = live.filter((p) => !candidates.has(p.pid));
    let started = 0;

    // Keep replicas that run this image at a wanted index; stop the rest, including processes a crashed
    // earlier attempt started but did not get to record (they carry this deployment's marker too).
    state.replicas = state.replicas.filter(
      (r) => r.index < spec.replicas && r.digest === image.digest && isRunning(r, serving),
    );
    const gatewayRunning = state.gateway !== undefined && isRunning(state.gateway, serving);
    const keep = new Set([...state.replicas.map((r) => r.pid), ...(gatewayRunning ? [state.gateway!.pid] : [])]);
    // A replica not kept leaves no ready file behind, or the gateway would send requests to its old address
    // (a wake from zero answered 503, or another process now on that port) until its successor writes one.
    const kept = new Set(state.replicas.map((r) => String(r.index)));
    for (const entry of await listDir(path.join(layout.dir, 'replicas'))) {
      if (!kept.has(entry)) await fs.rm(path.join(layout.dir, 'replicas', entry, 'ready.json'), { force: true });
    }
    // The gateway stops routing to a leaving replica before it is stopped (a scale down keeps serving).
    await updateRoutes(layout, { replicas: spec.replicas });
    await Promise.all(serving.filter((p) => !keep.has(p.pid)).map((p) => stopProcess(p.pid, undefined, p.startTime)));
    // The Python servers of script replicas whose front is gone (a front killed outright leaves its group).
    await sweepScriptChildren(layout, false);

    for (let index = 0; index < spec.replicas; index++) {
      if (state.replicas.some((r) => r.index === index)) continue;
      const { pid, startTime } = await spawnReplica(layout, spec, image, layout.replicaDir(index));
      state.replicas.push({ index, pid, digest: image.digest, ...(startTime !== undefined ? { startTime } : {}) });
      started++;
      // Record each pid as soon as it exists: teardown must find it even if this worker dies next.
      await writeJsonFileAtomic(layout.replicasFile, state);
    }

    const gateway = state.gateway;
    const gatewayUp =
      gateway &&
      (gateway.routes === true || gateway.replicas === spec.replicas) &&
      (gateway.holdMs ?? 0) === holdMs(spec) &&
      gatewayRunning;
    if (!gatewayUp) {
      if (gateway && gatewayRunning) await stopProcess(gateway.pid, undefined, gateway.startTime);
      await fs.rm(gatewayReadyFile(layout), { force: true });
      state.gateway = await startGateway(layout, {
        replicas: spec.replicas,
        ...(spec.hold ? { holdMs: holdMs(spec) } : {}),
        ownerId: spec.ownerId,
      });
    } else if (gateway.replicas !== spec.replicas) {
      state.gateway = { ...gateway, replicas: spec.replicas };
      started++;
    }
    await writeJsonFileAtomic(layout.replicasFile, state);
    return { started, replicas: spec.replicas };
  }

  async checkReadiness(spec: DeploymentSpec): Promise<ReadinessReport> {
    const layout = this.layout(spec.name);
    const state = await readJsonFile<ReplicasRecord>(layout.replicasFile);
    const report: ReadinessReport = { ready: false, readyReplicas: 0, desiredReplicas: spec.replicas, replicaUrls: [] };
    if (!state) return { ...report, reason: 'no replica has been started yet' };

    const set = await setReadiness(state.replicas, (index) => layout.replicaDir(index));
    if (set.fatal) return { ...report, fatal: true, reason: set.fatal };
    const waiting = set.waiting;
    report.readyReplicas = set.readyReplicas;
    report.replicaUrls = set.replicaUrls;

    const gatewayReady = await readJsonFile<ReadyFile>(path.join(layout.gatewayDir, 'ready.json'));
    if (state.gateway && !isAlive(state.gateway.pid)) {
      const tail = await logTail(path.join(layout.gatewayDir, 'gateway.log'));
      return {
        ...report,
        fatal: true,
        reason: `the gateway (pid ${state.gateway.pid}) exited: ${tail || 'no output'}`,
      };
    }
    if (gatewayReady && (await answers(`${gatewayReady.url}/healthz`))) report.endpoint = gatewayReady.url;
    else waiting.push('the gateway is starting');

    if (report.readyReplicas < spec.replicas && waiting.length === 0) {
      waiting.push(`${spec.replicas - state.replicas.length} replica(s) not started`);
    }
    report.ready = waiting.length === 0 && report.readyReplicas === spec.replicas && report.endpoint !== undefined;
    if (!report.ready) report.reason = waiting.join('; ');
    return report;
  }

  async endpointAccess(spec: DeploymentSpec): Promise<EndpointAccess> {
    const layout = this.layout(spec.name);
    const gateway = await readJsonFile<ReadyFile>(path.join(layout.gatewayDir, 'ready.json'));
    if (!gateway) throw new Error(`Deployment "${spec.name}" has no endpoint yet (no gateway ready file).`);
    const apiKey = (await fs.readFile(layout.apiKeyFile, 'utf8')).trim();
    return { endpoint: gateway.url, apiKey };
  }

  /** Sums the scoring-request counters of every recorded replica that answers its /metrics. */
  async requestCount(spec: DeploymentSpec, signal?: AbortSignal): Promise<RequestCounts> {
    const layout = this.layout(spec.name);
    const state = await readJsonFile<ReplicasRecord>(layout.replicasFile);
    return setCounts(state?.replicas ?? [], (index) => layout.replicaDir(index), signal);
  }

  /** The gateway's own counters (GET /gateway/metrics, no key): what a deployment at zero replicas wakes on. */
  async gatewayCounts(spec: DeploymentSpec, signal?: AbortSignal): Promise<GatewayCounts> {
    const gateway = await readJsonFile<ReadyFile>(path.join(this.layout(spec.name).gatewayDir, 'ready.json'));
    if (!gateway) throw new Error(`Deployment "${spec.name}" has no endpoint (no gateway ready file).`);
    return readGatewayCounts(gateway.url, signal);
  }

  /** The serving loop's gateway watch: the gateway found gone is started again on its address (gateway-process.ts). */
  reviveGateway(spec: DeploymentSpec, signal?: AbortSignal): Promise<GatewayRevival> {
    return restartGatewayIfGone(this.layout(spec.name), spec.ownerId, signal);
  }

  async teardown(spec: DeploymentSpec): Promise<TeardownReport> {
    const layout = this.layout(spec.name);
    const removed: string[] = [];
    const cluster = await readJsonFile<ClusterRecord>(layout.clusterFile);
    if (cluster && cluster.ownerId !== spec.ownerId) {
      // Another workflow owns this name now: never touch what is not ours.
      return { removed };
    }
    // From here on nothing starts the gateway again (a watch or a mirror bake's reading: teardown-fence.ts);
    // one started before this runs already, with the marker, and is found below.
    await markTearingDown(layout, spec.ownerId);
    // Every process started for this deployment (its marker and entry script), recorded or not; nothing
    // that merely names the directory on its command line.
    const found = await findOwnProcesses(layout.processMarker, { ownerId: spec.ownerId });
    await Promise.all(found.map((p) => stopProcess(p.pid, undefined, p.startTime)));
    removed.push(...found.map((p) => `process ${p.pid}`));
    // Script replicas' Python servers, by the process group each front recorded (not by command line).
    removed.push(...(await sweepScriptChildren(layout, true)));
    for (const entry of await listDir(layout.bundlesDir)) removed.push(`bundle sha256:${entry}`);
    // Moved aside in one step, then removed: a restart that takes the lock meanwhile finds the deployment gone,
    // never a directory half removed (its tearing-down mark deleted, its .lock made again inside it).
    const removing = `${layout.dir}.removing.tmp`;
    await fs.rm(removing, { recursive: true, force: true });
    if (await fileExists(layout.dir)) {
      await fs.rename(layout.dir, removing);
      await fs.rm(removing, { recursive: true, force: true });
      removed.push(`directory ${layout.dir}`);
    }
    return { removed };
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((e) => !e.endsWith('.tmp'));
  } catch {
    return [];
  }
}
