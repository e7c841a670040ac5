/**
 * A real Kubernetes control plane for the aks target's tests: etcd, kube-apiserver, kube-controller-manager
 * and kube-scheduler built from the Go module proxy (tools/kubernetes, scripts/ensure-kubernetes-tools.ts),
 * plus kwok, which plays the kubelets: it keeps fake nodes Ready and moves scheduled pods to Running and
 * Ready, so a Deployment really rolls out and becomes Available. Nothing runs in the pods. kwok also serves
 * the kubelet's log endpoint, so `kubectl logs` (readNamespacedPodLog) goes apiserver → kubelet as on a real
 * cluster; every container's log is the file `containerLogFile`, which a test writes.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { packageRoot } from '../../../src/paths';
import { kubernetesToolPath } from './kubernetes-tools';
import { egressSelectorConfig } from './pod-network';

export interface ControlPlane {
  kubeconfig: string;
  kubeconfigFile: string;
  /** A kubeconfig whose user authenticates but holds no RBAC role: every call is 403, as on a real cluster. */
  unprivilegedKubeconfig: string;
  server: string;
  /** The log every container on a kwok node shows, in the CRI format (`<RFC 3339 time> stdout F <line>`). */
  containerLogFile: string;
  stop: () => Promise<void>;
}

export interface ControlPlaneOptions {
  dir: string;
  /** A certificate (SAN 127.0.0.1) and key the apiserver serves with. */
  tls: { certFile: string; keyFile: string };
  log?: (line: string) => void;
  /** The unix socket of an HTTP CONNECT proxy the API server reaches pods and kubelets through (pod-network.ts). */
  egressProxySocket?: string;
  /**
   * A kubelet stand-in owns the pods' readiness (kubelet.ts): kwok then starts pods Running but not Ready, as a
   * kubelet reports a container whose readiness probe has not passed yet. Left out, kwok marks them Ready.
   */
  readinessByKubelet?: boolean;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  fs.mkdirSync(opts.dir, { recursive: true });
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of [...children].reverse()) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), delay(5000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    }
  };
  const run = (name: string, args: string[]) => {
    const out = fs.openSync(path.join(opts.dir, `${name}.log`), 'a');
    const child = spawn(kubernetesToolPath(name === 'etcd' ? 'etcd' : name), args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.once('exit', (code, signal) => log(`${name} exited (${signal ?? code})`));
    children.push(child);
    return child;
  };

  try {
    const [etcdClient, etcdPeer, apiPort, kubeletPort] = await freePorts(4);
    run('etcd', [
      '--name=default',
      `--data-dir=${path.join(opts.dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);

    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = path.join(opts.dir, 'sa.key');
    const saPub = path.join(opts.dir, 'sa.pub');
    fs.writeFileSync(saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }));
    fs.writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    const token = crypto.randomBytes(24).toString('hex');
    const tokens = path.join(opts.dir, 'tokens.csv');
    const nobodyToken = crypto.randomBytes(24).toString('hex');
    fs.writeFileSync(tokens, `${token},admin,admin,system:masters\n${nobodyToken},nobody,nobody\n`, { mode: 0o600 });

    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = kubeconfigYaml(server, fs.readFileSync(opts.tls.certFile), token);
    const kubeconfigFile = path.join(opts.dir, 'kubeconfig.yaml');
    fs.writeFileSync(kubeconfigFile, kubeconfig, { mode: 0o600 });

    const egressConfig = opts.egressProxySocket ? path.join(opts.dir, 'egress-selector.yaml') : undefined;
    if (egressConfig) fs.writeFileSync(egressConfig, egressSelectorConfig(opts.egressProxySocket!));
    run('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${opts.tls.certFile}`,
      `--tls-private-key-file=${opts.tls.keyFile}`,
      `--token-auth-file=${tokens}`,
      '--authorization-mode=RBAC',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      // Logs are fetched from the node's kubelet, which kwok serves on 127.0.0.1 with the test certificate.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-certificate-authority=${opts.tls.certFile}`,
      ...(egressConfig ? [`--egress-selector-config-file=${egressConfig}`] : []),
      '--v=0',
    ]);
    await waitForApi(server, token, 90_000);

    // Both talk to the API server with the admin kubeconfig and serve nothing of their own.
    const controlLoopFlags = [
      `--kubeconfig=${kubeconfigFile}`,
      `--authentication-kubeconfig=${kubeconfigFile}`,
      `--authorization-kubeconfig=${kubeconfigFile}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
    ];
    run('kube-controller-manager', [
      ...controlLoopFlags,
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${opts.tls.certFile}`,
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route',
      '--node-monitor-grace-period=60s',
    ]);
    run('kube-scheduler', controlLoopFlags);
    const containerLogFile = path.join(opts.dir, 'container.log');
    fs.writeFileSync(containerLogFile, '');
    const logsConfig = path.join(opts.dir, 'kwok-logs.yaml');
    fs.writeFileSync(
      logsConfig,
      [
        'apiVersion: kwok.x-k8s.io/v1alpha1',
        'kind: ClusterLogs',
        'metadata: {name: every-container}',
        'spec:',
        '  logs:',
        `  - logsFile: ${JSON.stringify(containerLogFile)}`,
        '',
      ].join('\n'),
    );
    run('kwok', [
      `--kubeconfig=${kubeconfigFile}`,
      `--config=${kwokStages(opts.dir, opts.readinessByKubelet ?? false)}`,
      `--config=${logsConfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--cidr=10.244.0.0/16',
      '--node-ip=127.0.0.1',
      `--node-port=${kubeletPort}`,
      '--node-lease-duration-seconds=40',
      `--server-address=127.0.0.1:${kubeletPort}`,
      `--tls-cert-file=${opts.tls.certFile}`,
      `--tls-private-key-file=${opts.tls.keyFile}`,
    ]);
    log(`Kubernetes control plane at ${server}`);
    const unprivilegedKubeconfig = kubeconfigYaml(server, fs.readFileSync(opts.tls.certFile), nobodyToken);
    return { kubeconfig, kubeconfigFile, unprivilegedKubeconfig, server, containerLogFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** kwok's stages; with `readinessByKubelet`, a started pod is Running with its container not ready. */
function kwokStages(dir: string, readinessByKubelet: boolean): string {
  const stages = path.join(packageRoot(), 'tools', 'kubernetes', 'kwok-stages.yaml');
  if (!readinessByKubelet) return stages;
  const text = fs.readFileSync(stages, 'utf8');
  const notReady = text
    .replace('status: "True"\n        type: Ready\n', 'status: "False"\n        type: Ready\n')
    .replace('status: "True"\n        type: ContainersReady\n', 'status: "False"\n        type: ContainersReady\n')
    .replace('        ready: true\n', '        ready: false\n');
  if (notReady.split('"False"').length !== 3 || !notReady.includes('ready: false')) {
    throw new Error(`${stages} changed: its pod-ready stage no longer has the conditions this rewrites`);
  }
  const file = path.join(dir, 'kwok-stages-not-ready.yaml');
  fs.writeFileSync(file, notReady);
  return file;
}

function kubeconfigYaml(server: string, caPem: Buffer, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${caPem.toString('base64')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: local',
    '  context: {cluster: local, user: admin}',
    'current-context: local',
    '',
  ].join('\n');
}

async function waitForApi(server: string, token: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      // The apiserver's certificate is the run's test certificate, trusted through NODE_EXTRA_CA_CERTS.
      const res = await fetch(`${server}/readyz`, { headers: { authorization: `Bearer ${token}` } });
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(500);
  }
  throw new Error(`kube-apiserver did not become ready within ${timeoutMs / 1000}s: ${last}`);
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
