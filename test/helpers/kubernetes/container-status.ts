/**
 * What the kubelet stand-in reports about one pod's container, the way the kubelet does: the container's
 * status in the pod's status (state, lastState, restartCount, ready, and the pod's Ready and
 * ContainersReady conditions, which the Deployment's availability follows), and events on the pod (source
 * kubelet). Writes are serialised and retried on a conflict.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1ContainerState, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';

/** The last lines FallbackToLogsOnError keeps: 80 lines, at most 2048 bytes (as the kubelet does). */
function logTail(log: string): string {
  const tail = log.trimEnd().split('\n').slice(-80).join('\n');
  return Buffer.from(tail).subarray(-2048).toString('utf8');
}

export class ContainerStatusWriter {
  restartCount = 0;
  private state: V1ContainerState = { waiting: { reason: 'ContainerCreating' } };
  private lastState: V1ContainerState = {};
  private isReady = false;
  private started = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly kc: KubeConfig,
    private readonly pod: V1Pod,
  ) {}

  waiting(reason: string, message: string): Promise<void> {
    this.state = { waiting: { reason, ...(message ? { message } : {}) } };
    this.isReady = false;
    return this.write();
  }

  running(startedAt: Date): Promise<void> {
    this.state = { running: { startedAt } };
    this.started = true;
    return this.write();
  }

  ready(ready: boolean): Promise<void> {
    this.isReady = ready;
    return this.write();
  }

  /** The container exited: keep its end in lastState, count the restart, and wait out the back-off. */
  async crashLoop(delayMs: number, exit: { exitCode: number; log: string; startedAt: Date }): Promise<void> {
    const container = this.pod.spec!.containers[0]!;
    const fallback = container.terminationMessagePolicy === 'FallbackToLogsOnError' && exit.exitCode !== 0;
    this.lastState = {
      terminated: {
        exitCode: exit.exitCode,
        reason: exit.exitCode === 0 ? 'Completed' : 'Error',
        startedAt: exit.startedAt,
        finishedAt: new Date(),
        ...(fallback ? { message: logTail(exit.log) } : {}),
      },
    };
    this.restartCount++;
    this.started = false;
    const pod = `${this.pod.metadata!.name}_${this.pod.metadata!.namespace}(${this.pod.metadata!.uid})`;
    await this.event('Warning', 'BackOff', `Back-off restarting failed container ${container.name} in pod ${pod}`);
    await this.waiting(
      'CrashLoopBackOff',
      `back-off ${Math.round(delayMs / 1000)}s restarting failed container=${container.name} pod=${pod}`,
    );
  }

  event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const meta = this.pod.metadata!;
    const now = new Date();
    return this.kc
      .makeApiClient(CoreV1Api)
      .createNamespacedEvent({
        namespace: meta.namespace!,
        body: {
          metadata: { generateName: `${meta.name}.`, namespace: meta.namespace },
          involvedObject: { kind: 'Pod', name: meta.name, namespace: meta.namespace, uid: meta.uid, apiVersion: 'v1' },
          reason,
          message,
          type,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: 'kubelet', host: this.pod.spec?.nodeName },
        },
      })
      .then(
        () => undefined,
        () => undefined, // the namespace is going away
      );
  }

  private write(): Promise<void> {
    this.chain = this.chain.then(() => this.replace()).catch(() => undefined);
    return this.chain;
  }

  private async replace(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const container = this.pod.spec!.containers[0]!;
    for (let attempt = 0; attempt < 5; attempt++) {
      let pod: V1Pod;
      try {
        pod = await core.readNamespacedPod({
          name: this.pod.metadata!.name!,
          namespace: this.pod.metadata!.namespace!,
        });
      } catch {
        return; // gone
      }
      if (pod.metadata?.uid !== this.pod.metadata?.uid || pod.metadata?.deletionTimestamp) return;
      const status: V1ContainerStatus = {
        name: container.name,
        image: container.image!,
        imageID: '',
        ready: this.isReady,
        started: this.started,
        restartCount: this.restartCount,
        state: this.state,
        lastState: this.lastState,
      };
      const now = new Date();
      const ready = this.isReady ? 'True' : 'False';
      const conditions = (pod.status?.conditions ?? []).map((c) =>
        c.type === 'Ready' || c.type === 'ContainersReady'
          ? { ...c, status: ready, ...(c.status !== ready ? { lastTransitionTime: now } : {}) }
          : c,
      );
      try {
        await core.replaceNamespacedPodStatus({
          name: pod.metadata!.name!,
          namespace: pod.metadata!.namespace!,
          body: { ...pod, status: { ...pod.status, phase: 'Running', conditions, containerStatuses: [status] } },
        });
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 409) return;
      }
    }
  }
}
