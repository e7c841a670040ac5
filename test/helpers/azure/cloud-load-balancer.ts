/**
 * Plays Azure's cloud side of a LoadBalancer Service for the aks tests, the part kwok cannot: once the
 * Service's Deployment is available, it runs the container the Deployment describes — the scoring server
 * from the image the local registry built (the uploaded build context, unpacked) with the container's own
 * arguments, its mounted Secret as the key file — on 127.0.0.1 at the Service port, and publishes that
 * address in the Service's status. The smoke query then reaches a real scoring server through the
 * address Kubernetes reports. When the Service goes away, so does the process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Service } from '@kubernetes/client-node';

import { packageRoot } from '../../../src/paths';
import { readTar } from './arm-endpoint';
import type { ArmEndpoint } from './arm-endpoint';

interface Running {
  child: ChildProcess;
  address?: string;
}

export class CloudLoadBalancer {
  private readonly running = new Map<string, Running>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private stopped = false;
  readonly events: string[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly arm: ArmEndpoint,
    private readonly dir: string,
    /** Whether the node's kubelet may pull the image (AcrPull); when refused, the container does not start. */
    private readonly canPull?: (
      image: string,
      nodeName?: string,
    ) => Promise<{ ok: true } | { ok: false; reason: string }>,
  ) {}

  start(): this {
    this.timer = setInterval(() => void this.reconcile(), 300);
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // A reconcile in flight may be starting a container: let it finish, so none outlives the stop (a live
    // child would keep the test file's process from ever exiting).
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const r of this.running.values()) r.child.kill('SIGKILL');
    this.running.clear();
  }

  private async reconcile(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const core = this.kc.makeApiClient(CoreV1Api);
      const services = (await core.listServiceForAllNamespaces({})).items.filter(
        (s) => s.spec?.type === 'LoadBalancer',
      );
      const seen = new Set<string>();
      for (const svc of services) {
        const key = `${svc.metadata!.namespace}/${svc.metadata!.name}`;
        seen.add(key);
        if (svc.metadata?.deletionTimestamp) continue;
        const r = this.running.get(key);
        if (r?.child.exitCode === null && r.address && !svc.status?.loadBalancer?.ingress?.length) {
          await this.publish(core, svc, r.address);
        }
        if (this.stopped) return;
        if (!r || r.child.exitCode !== null) await this.startContainer(svc);
      }
      for (const [key, r] of this.running) {
        if (!seen.has(key)) {
          r.child.kill('SIGTERM');
          this.running.delete(key);
          this.events.push(`stopped ${key}`);
        }
      }
    } catch (err) {
      this.events.push(`reconcile failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.busy = false;
    }
  }

  private async startContainer(svc: V1Service): Promise<void> {
    const namespace = svc.metadata!.namespace!;
    const name = svc.metadata!.name!;
    const apps = this.kc.makeApiClient(AppsV1Api);
    const core = this.kc.makeApiClient(CoreV1Api);
    const deployment = await apps.readNamespacedDeployment({ name, namespace }).catch(() => undefined);
    if (!deployment || (deployment.status?.availableReplicas ?? 0) < 1) return;
    const container = deployment.spec!.template.spec!.containers[0]!;
    if (this.canPull) {
      const selector = Object.entries(deployment.spec!.selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
      const pods = await core.listNamespacedPod({ namespace, labelSelector: selector.join(',') });
      const pull = await this.canPull(container.image ?? '', pods.items.find((p) => p.spec?.nodeName)?.spec?.nodeName);
      if (!pull.ok) {
        const event = `ImagePullBackOff ${namespace}/${name}: ${pull.reason}`;
        if (!this.events.includes(event)) this.events.push(event);
        return;
      }
    }
    const image = /^([^.]+)\.azurecr\.io\/(.+)$/.exec(container.image ?? '');
    const record = image ? this.arm.images.get(`${image[1]}/${image[2]}`) : undefined;
    if (!record) {
      this.events.push(`image ${container.image} is not in the registry; nothing to run`);
      return;
    }
    const root = path.join(this.dir, `${namespace}-${name}`);
    fs.rmSync(root, { recursive: true, force: true });
    for (const [file, data] of await readTar(zlib.gunzipSync(record.context))) {
      fs.mkdirSync(path.dirname(path.join(root, 'app', file)), { recursive: true });
      fs.writeFileSync(path.join(root, 'app', file), data);
    }
    const volume = deployment.spec!.template.spec!.volumes?.find((v) => v.secret);
    const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
    const secret = await core.readNamespacedSecret({ name: volume!.secret!.secretName!, namespace });
    fs.mkdirSync(path.join(root, 'secret'), { recursive: true });
    for (const [k, v] of Object.entries(secret.data ?? {})) {
      fs.writeFileSync(path.join(root, 'secret', k), Buffer.from(v, 'base64'), { mode: 0o600 });
    }
    const port = svc.spec!.ports![0]!.port;
    const args = (container.args ?? []).map((a) =>
      a
        .replace(/^\/app\//, `${path.join(root, 'app')}/`)
        .replace(mount!.mountPath, path.join(root, 'secret'))
        .replace(/^0\.0\.0\.0$/, '127.0.0.1')
        .replace(/^5001$/, String(port)),
    );
    const log = fs.openSync(path.join(root, 'container.log'), 'a');
    const child = spawn(process.execPath, args, {
      cwd: path.join(root, 'app'),
      env: { ...process.env, NODE_PATH: path.join(packageRoot(), 'node_modules') },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const entry: Running = { child };
    this.running.set(`${namespace}/${name}`, entry);
    this.events.push(`started ${namespace}/${name} from ${container.image}`);
    const address = `127.0.0.1`;
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      try {
        const res = await fetch(`http://${address}:${port}/healthz`);
        await res.arrayBuffer();
        if (res.ok) {
          entry.address = address;
          await this.publish(core, svc, address);
          return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    this.events.push(
      `container for ${namespace}/${name} did not answer: ${fs.readFileSync(path.join(root, 'container.log'), 'utf8')}`,
    );
  }

  private async publish(core: CoreV1Api, svc: V1Service, ip: string): Promise<void> {
    await core.replaceNamespacedServiceStatus({
      name: svc.metadata!.name!,
      namespace: svc.metadata!.namespace!,
      body: { ...svc, status: { loadBalancer: { ingress: [{ ip }] } } },
    });
    this.events.push(`published ${svc.metadata!.namespace}/${svc.metadata!.name} at ${ip}`);
  }
}
