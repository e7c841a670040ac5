/**
 * The kubelet of the aks tests' GPU nodes, for the containers kwok cannot run: kwok schedules a pod onto a
 * fake node and marks it Running; this stand-in then runs the pod's container for real and owns its status
 * from there. What the real kubelet enforces that this one enforces too:
 *   - pull: the image must be allowed (`canPull`, the registry's AcrPull check) and exist in the registry,
 *     else the container waits in ErrImagePull / ImagePullBackOff (with the reason, as the kubelet's
 *     Failed and BackOff events say) and never starts; pulls are retried with back-off;
 *   - the image's filesystem is what its Dockerfile builds (image-filesystem.ts), nothing of the host's:
 *     no host node_modules, no NODE_PATH, no host environment (only the image's ENV, the container's
 *     `env` values and those from `valueFrom.secretKeyRef`, read at start: a missing Secret or key is
 *     CreateContainerConfigError; HOSTNAME and HOME);
 *   - command and args: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD; the executable
 *     is looked up on the image's PATH inside the image;
 *   - the user: runAsUser/runAsGroup (container over pod) else the image's USER; runAsNonRoot refuses
 *     uid 0 and a non-numeric USER (CreateContainerConfigError); the process runs as that uid and gid with
 *     the fsGroup and supplementalGroups as its groups, so the kernel checks file access as in the pod;
 *   - readOnlyRootFilesystem: the container runs in a mount namespace of its own where the image's root is
 *     read-only (container-process.ts), so a write anywhere in its image fails with EROFS and only its
 *     volumes (emptyDir) take writes; without it the image's own owners and modes decide;
 *   - volumes: Secret volumes as the kubelet mounts them (secret-volume.ts: defaultMode, 0644 when unset,
 *     root-owned, fsGroup); a missing Secret or key is a FailedMount event and the container waits in
 *     ContainerCreating; emptyDir is an empty world-writable directory; any other volume is refused;
 *   - restarts: a container that exits is restarted with back-off (doubling up to 5 min) in
 *     CrashLoopBackOff, its restartCount and lastState.terminated kept (with FallbackToLogsOnError, the
 *     log's last lines as the message), a BackOff event written;
 *   - termination: a deleted pod's container turns not-ready at once (its endpoint gets no new connections),
 *     runs its preStop hook (the `sleep` action; other handlers are not played), then gets SIGTERM, and
 *     SIGKILL once the grace period (at most 5 s here) is over;
 *   - probes (httpGet, probes.ts): the startupProbe gates the others and restarts the container once it has failed
 *     for failureThreshold × periodSeconds; readiness sets the container's and pod's Ready; liveness
 *     restarts a container failing for failureThreshold × periodSeconds.
 * What it does not do: there is no chroot, and no namespace but the read-only root's mount namespace (a
 * process that writes to an absolute path of its own making reaches the host's). Absolute paths in the args resolve inside the
 * image (or the mount that holds them) by rewriting, the container's port is rewritten to a free host
 * port and 0.0.0.0 to 127.0.0.1, a Service's cluster DNS URL to a loopback address standing for the Service
 * (service-proxy.ts); probes are tried every 0.25 s (the limits above are in real time); the
 * first back-off is `backoffMs` (the real kubelet's is 10 s); only images `manages` accepts are run
 * (others are left as kwok reports them); and kwok serves one log file for every container, so the most
 * recent container exit's output is written there (`kubectl logs` is right while one pod crashes at once).
 * Tests run as root, which lets it mount root-owned files and run the container as its user.
 */
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Container, V1Pod } from '@kubernetes/client-node';

import { freePort } from '../../../src/temporal/dev-server';
import { assembleImage, inRoot, resolveUser } from './image-filesystem';
import type { ContextFiles, ImageFilesystem } from './image-filesystem';
import { spawnContainer } from './container-process';
import { ContainerStatusWriter } from './container-status';
import { probeContainer } from './probes';
import { MountError, mountSecretVolume } from './secret-volume';
import { ServiceProxy } from './service-proxy';

export type PullVerdict = { ok: true } | { ok: false; reason: string };

export interface KubeletOptions {
  kc: KubeConfig;
  /** Where images are assembled and pods get their volumes and logs (made traversable for the container user). */
  dir: string;
  /** Whether this stand-in runs containers of this image (the registry's images). */
  manages: (image: string) => boolean;
  /** The build context (its files) the registry holds for `image`, or undefined when it has no such image. */
  imageContext: (image: string) => Promise<ContextFiles | undefined>;
  /** May the kubelet of `nodeName` (its cluster's identity) pull `image`? Asked before every pull; allowed when left out. */
  canPull?: (image: string, nodeName?: string) => Promise<PullVerdict>;
  /** The first restart (or pull retry) back-off; it doubles up to 5 min. The real kubelet's is 10 s. */
  backoffMs?: number;
  /** The file kwok serves as every container's log. */
  logFile?: string;
}

interface Mount {
  containerPath: string;
  hostPath: string;
}

/** One pod's container, as long as the pod exists. */
interface PodRun {
  pod: V1Pod;
  dir: string;
  hostPort?: number;
  child?: ChildProcess;
  ready: boolean;
  stopped: boolean;
  status: ContainerStatusWriter;
}

const MAX_BACKOFF_MS = 300_000;

export class Kubelet {
  private readonly pods = new Map<string, PodRun>();
  private readonly images = new Map<string, Promise<ImageFilesystem>>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private stopped = false;
  readonly events: string[] = [];
  /** Cluster DNS and kube-proxy for the containers' own connections to Services (service-proxy.ts). */
  readonly services: ServiceProxy;

  constructor(private readonly opts: KubeletOptions) {
    this.services = new ServiceProxy(opts.kc, (namespace, selector) => this.readyEndpoints(namespace, selector));
    fs.mkdirSync(opts.dir, { recursive: true });
    fs.chmodSync(opts.dir, 0o755);
    // The container's user must reach the image and its volumes, as on a node it reaches its own root.
    for (let d = path.dirname(opts.dir); d !== path.dirname(d); d = path.dirname(d)) {
      if ((fs.statSync(d).mode & 0o001) === 0) {
        throw new Error(`the kubelet stand-in's directory must be reachable by any user: chmod o+x ${d}`);
      }
    }
  }

  start(): this {
    this.timer = setInterval(() => void this.reconcile(), 300);
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 20));
    await Promise.all([...this.pods.values()].map((run) => this.stopPod(run, 0)));
    this.pods.clear();
    await this.services.stop();
  }

  /** `127.0.0.1:<port>` of every ready container whose pod is in `namespace` and has all of `selector`'s labels. */
  readyEndpoints(namespace: string, selector: Record<string, string>): string[] {
    return [...this.pods.values()]
      .filter((r) => r.ready && r.hostPort && r.pod.metadata?.namespace === namespace)
      .filter((r) => Object.entries(selector).every(([k, v]) => r.pod.metadata?.labels?.[k] === v))
      .map((r) => `127.0.0.1:${r.hostPort}`);
  }

  /**
   * Where the pod network delivers a connection to `podIp:port` (pod-network.ts): `127.0.0.1:<host port>` of
   * the running container of the pod with that IP whose container port it is; undefined when there is none
   * (no such pod, not started, another port), as a real pod IP refuses a port nothing listens on.
   */
  podAddress(podIp: string, port: number): string | undefined {
    const run = [...this.pods.values()].find(
      (r) => !r.stopped && r.child && r.hostPort && r.pod.status?.podIP === podIp,
    );
    if (run?.pod.spec?.containers[0]?.ports?.[0]?.containerPort !== port) return undefined;
    return `127.0.0.1:${run.hostPort}`;
  }

  private async reconcile(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const core = this.opts.kc.makeApiClient(CoreV1Api);
      const pods = (await core.listPodForAllNamespaces({})).items;
      const live = new Set<string>();
      for (const pod of pods) {
        const uid = pod.metadata?.uid ?? '';
        const image = pod.spec?.containers[0]?.image ?? '';
        if (!pod.spec?.nodeName || pod.metadata?.deletionTimestamp || !this.opts.manages(image)) continue;
        live.add(uid);
        if (this.pods.has(uid) || pod.status?.phase !== 'Running' || this.stopped) continue;
        const run: PodRun = {
          pod,
          dir: path.join(this.opts.dir, 'pods', uid),
          ready: false,
          stopped: false,
          status: new ContainerStatusWriter(this.opts.kc, pod),
        };
        this.pods.set(uid, run);
        void this.runPod(run).catch((err: unknown) => this.events.push(`pod ${podName(pod)}: ${String(err)}`));
      }
      for (const [uid, run] of this.pods) {
        if (live.has(uid)) continue;
        this.pods.delete(uid);
        void this.stopPod(run, (run.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
      }
    } catch (err) {
      this.events.push(`reconcile failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.busy = false;
    }
  }

  private async stopPod(run: PodRun, graceMs: number): Promise<void> {
    run.stopped = true;
    run.ready = false; // a terminating pod's endpoint is not ready: no new connections
    const child = run.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // The preStop hook runs before SIGTERM, within the grace period (only the `sleep` action is played here).
    const preStopMs = (run.pod.spec?.containers[0]?.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
    if (graceMs > 0 && preStopMs > 0) await new Promise((r) => setTimeout(r, Math.min(preStopMs, graceMs)));
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.min(graceMs - Math.min(preStopMs, graceMs), 5000));
    await exited;
    clearTimeout(timer);
    this.events.push(`stopped ${podName(run.pod)}`);
  }

  private backoff(attempt: number): number {
    return Math.min((this.opts.backoffMs ?? 10_000) * 2 ** attempt, MAX_BACKOFF_MS);
  }

  private async sleep(run: PodRun, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!run.stopped && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, ms)));
  }

  private async runPod(run: PodRun): Promise<void> {
    const container = run.pod.spec!.containers[0]!;
    const image = await this.pull(run, container);
    if (!image) return;
    let mounts: Mount[] | undefined;
    for (let attempt = 0; !mounts && !run.stopped; attempt++) {
      try {
        mounts = await this.mountVolumes(run, container);
      } catch (err) {
        if (!(err instanceof MountError)) throw err;
        await run.status.event('Warning', 'FailedMount', err.message);
        await run.status.waiting('ContainerCreating', '');
        await this.sleep(run, this.backoff(attempt));
      }
    }
    for (let restarts = 0; !run.stopped; restarts++) {
      const result = await this.runContainer(run, container, image, mounts!);
      if (run.stopped || result === 'config-error') {
        if (result === 'config-error') await this.sleep(run, this.backoff(restarts));
        if (run.stopped) return;
        continue;
      }
      const delay = this.backoff(restarts);
      await run.status.crashLoop(delay, result);
      await this.sleep(run, delay);
    }
  }

  /** The image's filesystem, once the pull is allowed and the registry has the image; undefined if the pod went. */
  private async pull(run: PodRun, container: V1Container): Promise<ImageFilesystem | undefined> {
    const ref = container.image!;
    for (let attempt = 0; !run.stopped; attempt++) {
      const verdict = (await this.opts.canPull?.(ref, run.pod.spec?.nodeName)) ?? { ok: true };
      const context = verdict.ok ? await this.opts.imageContext(ref) : undefined;
      if (context) {
        const digest = crypto
          .createHash('sha256')
          .update(context.get('Dockerfile') ?? '')
          .update(ref)
          .digest('hex');
        if (!this.images.has(digest)) {
          this.images.set(digest, assembleImage(context, path.join(this.opts.dir, 'images', digest.slice(0, 16))));
        }
        try {
          const fsys = await this.images.get(digest)!;
          await run.status.event('Normal', 'Pulled', `Successfully pulled image "${ref}"`);
          return fsys;
        } catch (err) {
          this.images.delete(digest);
          await run.status.event('Warning', 'Failed', `Error: ${(err as Error).message}`);
          await run.status.waiting('CreateContainerError', (err as Error).message);
          await this.sleep(run, this.backoff(attempt));
          continue;
        }
      }
      const reason = verdict.ok ? `${ref}: not found: manifest unknown` : verdict.reason;
      const message = `Failed to pull image "${ref}": ${reason}`;
      const event = `ImagePullBackOff ${podName(run.pod)}: ${reason}`;
      if (!this.events.includes(event)) this.events.push(event);
      await run.status.event('Warning', 'Failed', message);
      await run.status.waiting('ErrImagePull', message);
      await run.status.event('Warning', 'BackOff', `Back-off pulling image "${ref}"`);
      await run.status.waiting('ImagePullBackOff', `Back-off pulling image "${ref}": ${reason}`);
      await this.sleep(run, this.backoff(attempt));
    }
    return undefined;
  }

  private async mountVolumes(run: PodRun, container: V1Container): Promise<Mount[]> {
    const mounts: Mount[] = [];
    for (const m of container.volumeMounts ?? []) {
      const volume = run.pod.spec?.volumes?.find((v) => v.name === m.name);
      const hostPath = path.join(run.dir, 'volumes', m.name);
      if (volume?.secret) {
        const fsGroup = run.pod.spec?.securityContext?.fsGroup;
        await mountSecretVolume(this.opts.kc, run.pod.metadata!.namespace!, m.name, volume.secret, hostPath, fsGroup);
      } else if (volume?.emptyDir) {
        fs.mkdirSync(hostPath, { recursive: true });
        fs.chmodSync(hostPath, 0o1777);
      } else {
        throw new MountError(`volume "${m.name}": only secret and emptyDir volumes are supported here`);
      }
      fs.chmodSync(path.dirname(hostPath), 0o755);
      fs.chmodSync(run.dir, 0o755);
      mounts.push({ containerPath: m.mountPath, hostPath });
    }
    return mounts;
  }

  /** Runs the container once; its exit code and log tail, or 'config-error' when it could not be created. */
  private async runContainer(
    run: PodRun,
    container: V1Container,
    image: ImageFilesystem,
    mounts: Mount[],
  ): Promise<{ exitCode: number; log: string; startedAt: Date } | 'config-error'> {
    const pod = run.pod;
    const sc = { ...pod.spec?.securityContext, ...container.securityContext };
    const fromImage = resolveUser(image.config.user ?? '0', image.config.users);
    const uid = sc.runAsUser ?? fromImage.uid;
    const gid =
      sc.runAsGroup ?? (sc.runAsUser !== undefined ? resolveUser(String(uid), image.config.users).gid : fromImage.gid);
    if (sc.runAsNonRoot && sc.runAsUser === undefined && image.config.user && !/^\d+(:|$)/.test(image.config.user)) {
      await run.status.waiting(
        'CreateContainerConfigError',
        `image has non-numeric user (${image.config.user}), cannot verify user is non-root`,
      );
      return 'config-error';
    }
    if (sc.runAsNonRoot && uid === 0) {
      await run.status.waiting('CreateContainerConfigError', 'container has runAsNonRoot and image will run as root');
      return 'config-error';
    }
    const groups = [
      ...new Set([
        gid,
        ...(pod.spec?.securityContext?.fsGroup !== undefined ? [pod.spec.securityContext.fsGroup] : []),
        ...(pod.spec?.securityContext?.supplementalGroups ?? []),
      ]),
    ];

    const hostPath = (p: string) => {
      const mount = mounts.find((m) => p === m.containerPath || p.startsWith(`${m.containerPath}/`));
      return mount ? path.join(mount.hostPath, path.posix.relative(mount.containerPath, p)) : inRoot(image.root, p);
    };
    const command = container.command ?? image.config.entrypoint;
    const args = container.args ?? (container.command ? [] : image.config.cmd);
    const [exe, ...rest] = [...command, ...args];
    const executable = exe?.includes('/')
      ? hostPath(exe)
      : (image.config.env.PATH ?? '')
          .split(':')
          .map((d) => inRoot(image.root, path.posix.join(d, exe ?? '')))
          .find((f) => fs.existsSync(f));
    if (!exe || !executable || !fs.existsSync(executable)) {
      await run.status.waiting('CreateContainerError', `exec: "${exe ?? ''}": executable file not found in $PATH`);
      return 'config-error';
    }
    const containerPort = container.ports?.[0]?.containerPort;
    run.hostPort ??= await freePort();
    const resolved = await Promise.all(rest.map((a) => this.services.rewrite(a)));
    const argv = resolved.map((a) =>
      a.startsWith('/')
        ? hostPath(a)
        : a === String(containerPort)
          ? String(run.hostPort)
          : a === '0.0.0.0'
            ? '127.0.0.1'
            : a,
    );
    const user = image.config.users.find((u) => u.uid === uid);
    const env: Record<string, string> = {
      ...image.config.env,
      HOSTNAME: pod.metadata!.name!,
      HOME: hostPath(user?.home ?? '/'),
    };
    for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    const fromSecrets = await this.secretEnv(pod, container);
    if (typeof fromSecrets === 'string') {
      await run.status.waiting('CreateContainerConfigError', fromSecrets);
      return 'config-error';
    }
    Object.assign(env, fromSecrets);

    fs.mkdirSync(path.join(run.dir, 'logs'), { recursive: true });
    const logPath = path.join(run.dir, 'logs', `${run.status.restartCount}.log`);
    const log = fs.openSync(logPath, 'w');
    const child = spawnContainer({
      executable,
      argv,
      uid,
      gid,
      groups,
      cwd: hostPath(image.config.workdir),
      env,
      log,
      readOnlyRoot: container.securityContext?.readOnlyRootFilesystem ? image.root : undefined,
    });
    fs.closeSync(log);
    run.child = child;
    const startedAt = new Date();
    const exit = new Promise<number>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 143)));
      child.once('error', (err) => {
        fs.appendFileSync(logPath, `failed to start the container: ${err.message}\n`);
        resolve(128);
      });
    });
    await run.status.running(startedAt);
    this.events.push(`started ${podName(pod)} from ${container.image} as ${uid}:${gid} (groups ${groups.join(',')})`);
    void probeContainer(run, container, child, startedAt);
    const exitCode = await exit;
    run.ready = false;
    const text = fs.readFileSync(logPath, 'utf8');
    if (this.opts.logFile) {
      const at = new Date().toISOString();
      fs.writeFileSync(
        this.opts.logFile,
        text
          .split('\n')
          .filter(Boolean)
          .map((l) => `${at} stdout F ${l}\n`)
          .join(''),
      );
    }
    return { exitCode, log: text, startedAt };
  }

  /**
   * The container's `env[].valueFrom.secretKeyRef` values, read from the Secret when the container starts
   * (as the kubelet does); a missing Secret or key (not optional) is the kubelet's CreateContainerConfigError.
   */
  private async secretEnv(pod: V1Pod, container: V1Container): Promise<Record<string, string> | string> {
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const secret = await this.opts.kc
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: ref.name!, namespace: pod.metadata!.namespace! })
        .catch(() => undefined);
      const value = secret?.data?.[ref.key];
      if (value !== undefined) env[e.name] = Buffer.from(value, 'base64').toString('utf8');
      else if (!ref.optional) {
        return secret
          ? `couldn't find key ${ref.key} in Secret ${pod.metadata!.namespace}/${ref.name}`
          : `secret "${ref.name}" not found`;
      }
    }
    return env;
  }
}

function podName(pod: V1Pod): string {
  return `${pod.metadata?.namespace}/${pod.metadata?.name}`;
}
