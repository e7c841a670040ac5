/**
 * The kubelet stand-in's httpGet probes of one running container, with the kubelet's rules: the
 * startupProbe gates the others and kills the container once it has failed for initialDelaySeconds +
 * failureThreshold × periodSeconds; readiness sets the container's (and so the pod's) Ready at its first
 * success and clears it once it has failed for failureThreshold × periodSeconds; liveness kills
 * a container failing for failureThreshold × periodSeconds. Probes are tried every 0.25 s (the real
 * kubelet: every periodSeconds); the limits are real time.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';

import type { V1Container, V1Probe } from '@kubernetes/client-node';

import type { ContainerStatusWriter } from './container-status';

const PROBE_TICK_MS = 250;

/** What the probes read and set of a pod's run. */
export interface ProbedRun {
  hostPort?: number;
  ready: boolean;
  stopped: boolean;
  status: ContainerStatusWriter;
}

export async function probeContainer(
  run: ProbedRun,
  container: V1Container,
  child: ChildProcess,
  startedAt: Date,
): Promise<void> {
  const alive = () => !run.stopped && child.exitCode === null && child.signalCode === null;
  const answers = async (probe: V1Probe) => {
    const get = probe.httpGet;
    if (!get) return true;
    // scheme HTTPS: the kubelet does not verify the certificate (Kubernetes' documented probe behaviour).
    const status = await httpStatus(
      `${get.scheme === 'HTTPS' ? 'https' : 'http'}://127.0.0.1:${run.hostPort}${get.path ?? '/'}`,
      (probe.timeoutSeconds ?? 1) * 1000,
    );
    return status !== undefined && status >= 200 && status < 400;
  };
  const limitMs = (p: V1Probe) =>
    ((p.initialDelaySeconds ?? 0) + (p.failureThreshold ?? 3) * (p.periodSeconds ?? 10)) * 1000;
  const kill = async (which: string, p: V1Probe) => {
    await run.status.event('Warning', 'Unhealthy', `${which} probe failed for ${limitMs(p) / 1000} s: restarting`);
    child.kill('SIGKILL');
  };
  if (container.startupProbe) {
    while (alive() && !(await answers(container.startupProbe))) {
      if (Date.now() - startedAt.getTime() > limitMs(container.startupProbe))
        return kill('Startup', container.startupProbe);
      await new Promise((r) => setTimeout(r, PROBE_TICK_MS));
    }
  }
  let failingSince: number | undefined;
  let unreadySince: number | undefined;
  while (alive()) {
    const answered = container.readinessProbe ? await answers(container.readinessProbe) : true;
    const live = container.livenessProbe ? await answers(container.livenessProbe) : true;
    if (!alive()) return;
    // Ready at the first success; a ready container turns not ready only once its probe has failed for
    // failureThreshold × periodSeconds (the real kubelet's consecutive failures), not at one slow answer.
    unreadySince = answered ? undefined : (unreadySince ?? Date.now());
    const ready =
      answered ||
      (run.ready && Date.now() - unreadySince! <= limitMs({ ...container.readinessProbe, initialDelaySeconds: 0 }));
    if (ready !== run.ready) {
      run.ready = ready;
      await run.status.ready(ready);
    }
    failingSince = live ? undefined : (failingSince ?? Date.now());
    if (
      failingSince !== undefined &&
      Date.now() - failingSince > limitMs({ ...container.livenessProbe, initialDelaySeconds: 0 })
    ) {
      return kill('Liveness', container.livenessProbe!);
    }
    await new Promise((r) => setTimeout(r, PROBE_TICK_MS));
  }
}

/** The status of a GET, or undefined when it did not answer in time; HTTPS without certificate checks. */
function httpStatus(url: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}
