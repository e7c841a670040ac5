/**
 * Plays Azure's cloud side of a LoadBalancer Service for the aks tests, the part kwok cannot: once the
 * Service's Deployment is available, it runs the container the Deployment describes — the scoring server
 * from the image the local registry built (the uploaded build context, unpacked) with the container's own
 * arguments, its mounted Secrets as files — on the Service's frontend address at the Service port, and
 * publishes that address in the Service's status once a TCP probe connects. The smoke query then reaches a
 * real scoring server through the address Kubernetes reports. When the Service goes away, so does the
 * process. The frontend (public or internal, DNS label, L4) follows Azure's rules: see lb-frontend.ts.
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
import { LbFrontends, tcpProbe } from './lb-frontend';

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
  readonly frontends: LbFrontends;

  constructor(
    private readonly kc: KubeConfig,
    private readonly arm: ArmEndpoint,
    private readonly dir: string,
    location = 'eastus',
  ) {
    this.frontends = new LbFrontends(location);
  }

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
          this.frontends.release(key);
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
    const frontend = this.frontends.allocate(svc);
    if ('error' in frontend) {
      this.events.push(`no frontend for ${namespace}/${name}: ${frontend.error}`);
      return;
    }
    const container = deployment.spec!.template.spec!.containers[0]!;
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
    const mounts: [string, string][] = [];
    for (const volume of deployment.spec!.template.spec!.volumes?.filter((v) => v.secret) ?? []) {
      const mount = container.volumeMounts?.find((m) => m.name === volume.name);
      const secret = await core.readNamespacedSecret({ name: volume.secret!.secretName!, namespace });
      const dir = path.join(root, `secret-${volume.name}`);
      fs.mkdirSync(dir, { recursive: true });
      for (const [k, v] of Object.entries(secret.data ?? {})) {
        fs.writeFileSync(path.join(dir, k), Buffer.from(v, 'base64'), { mode: 0o600 });
      }
      if (mount) mounts.push([mount.mountPath, dir]);
    }
    const port = svc.spec!.ports![0]!.port;
    const args = (container.args ?? []).map((a) =>
      mounts
        .reduce(
          (arg, [mountPath, dir]) => (arg.startsWith(`${mountPath}/`) ? dir + arg.slice(mountPath.length) : arg),
          a,
        )
        .replace(/^\/app\//, `${path.join(root, 'app')}/`)
        .replace(/^0\.0\.0\.0$/, frontend.ip)
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
    const address = frontend.ip;
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      if (await tcpProbe(address, port)) {
        entry.address = address;
        await this.publish(core, svc, address);
        return;
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
