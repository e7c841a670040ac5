/**
 * A rollout's candidate on aks: a second Deployment, `<name>-candidate`, beside the serving one in the
 * deployment's namespace, running the new image with the same key Secret (and TLS Secret). Its pods carry
 * the endpoint label (kubernetes-manifests.ts) that the one LoadBalancer Service selects, so the canary's
 * share of traffic is a replica ratio: Azure's load balancer and kube-proxy spread connections evenly over
 * ready pods, and a Service has no weights (a weighted route needs a service mesh or Gateway API
 * implementation the cluster may not run). Which pods the endpoint reaches is its Service's selector:
 *   - while the candidate is unproven (started, smoke query), the Service selects `app=<name>`: the serving
 *     pods only. The smoke query reaches the candidate alone through its own LoadBalancer Service
 *     `<name>-candidate` (same exposure, no DNS label: connected to by IP, verified by the endpoint's name);
 *   - at a share p > 0 the candidate runs c = round(N·p / (100 − p)) replicas (1 to N) beside the N serving
 *     ones, and the Service selects the endpoint label: c / (N + c) of the connections go to it;
 *   - at 100 it runs N; the serving Deployment then rolls onto the new image behind it (Target.deploy), and
 *     removal puts the Service back on the serving pods before the candidate goes.
 * Its request counters are read per pod through the API server (pod-metrics.ts). A mirror rollout (no share
 * of traffic; copies of the served requests) places the front before the serving pods for the bake
 * (mirror-front.ts); removal deletes it. Teardown deletes the namespace, so whatever a rollout left goes with it.
 */
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, V1Deployment, V1Service } from '@kubernetes/client-node';

import { InvalidInputError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import type { DeployResult, DeploymentSpec, ImageResult, ReadinessReport } from '../../shared/target-types';
import type { MirrorReport } from '../../shared/mirror-types';
import type { CandidateMirror, CandidateSets, EndpointAccess, PinnedTls, RequestCounts } from '../target';
import type { AksPlan } from './aks-config';
import { applyObjects, isKubeNotFound, readApiKey, rolloutStatus } from './kubernetes-deployment';
import { ENDPOINT_LABEL } from './kubernetes-manifests';
import type { ScoringManifestInput } from './kubernetes-manifests';
import type { Owner } from './ownership';
import { placeMirrorFront, readMirrorReport, removeMirrorFront } from './mirror-front';
import { podRequestCounts } from './pod-metrics';
import { DNS_LABEL_ANNOTATION, endpointUrl } from './tls-exposure';
import type { EndpointExposure } from './tls-exposure';

/** What the candidate needs of the aks target (aks-target.ts). */
export interface AksClusterAccess {
  plan(spec: DeploymentSpec): AksPlan;
  /** The deployment's whole owner: its workflow id and this installation (ownership.ts). */
  owner(spec: DeploymentSpec): Owner;
  exposure(spec: DeploymentSpec, plan?: AksPlan): EndpointExposure;
  onCluster<T>(
    plan: AksPlan,
    doing: string,
    signal: AbortSignal | undefined,
    fn: (kc: KubeConfig) => Promise<T>,
  ): Promise<T>;
  poolGpus(plan: AksPlan, signal?: AbortSignal): Promise<number>;
  /** The serving objects: namespace, key Secret, Deployment, LoadBalancer Service. */
  scoringObjects(
    spec: DeploymentSpec,
    image: ImageResult,
    plan: AksPlan,
    exposure: EndpointExposure,
  ): KubernetesObject[];
  endpointTls(kc: KubeConfig, plan: AksPlan, exposure: EndpointExposure): Promise<PinnedTls | undefined>;
  readonly podFailureGraceMs: number;
}

export function candidateName(name: string): string {
  return `${name}-candidate`;
}

/** The candidate starts with one replica: enough for the smoke query, and the canary's share sets the rest. */
const START_REPLICAS = 1;

/** Candidate replicas beside `serving` ones for `percent` of the connections (rounded; at least one). */
export function canaryReplicas(serving: number, percent: number): number {
  if (percent >= 100) return serving;
  return Math.min(serving, Math.max(1, Math.round((serving * percent) / (100 - percent))));
}

export class AksCandidates implements CandidateSets {
  constructor(private readonly aks: AksClusterAccess) {}

  async start(spec: DeploymentSpec, image: ImageResult, signal?: AbortSignal): Promise<DeployResult> {
    const plan = this.aks.plan(spec);
    const gpus = await this.aks.poolGpus(plan, signal);
    if (2 * spec.replicas > gpus) {
      throw new InvalidInputError(
        `A rollout runs the new version beside the ${spec.replicas} serving replica(s) and takes over with as many: ` +
          `${2 * spec.replicas} GPUs at the switch, but the GPU pool of ${plan.clusterName} has ${gpus}. ` +
          `Scale down first (inferctl scale ${spec.name} --replicas ${Math.max(1, Math.floor(gpus / 2))}), or deploy with more --gpu-nodes.`,
        FailureType.NotEnoughGpus,
      );
    }
    const { deployment, service, endpoint } = this.objects(spec, image, plan);
    await this.aks.onCluster(plan, `starting the candidate of ${spec.name}`, signal, async (kc) => {
      // The endpoint keeps to the serving pods until the candidate has answered its smoke query.
      await applyObjects(kc, [selecting(endpoint, { app: spec.name })]);
      await applyObjects(kc, [deployment, service]);
    });
    return { started: START_REPLICAS, replicas: START_REPLICAS };
  }

  async readiness(spec: DeploymentSpec, signal?: AbortSignal): Promise<ReadinessReport> {
    const plan = this.aks.plan(spec);
    const exposure = this.aks.exposure(spec, plan);
    const name = candidateName(spec.name);
    const report = await this.aks.onCluster(plan, `reading the candidate of ${spec.name}`, signal, (kc) =>
      rolloutStatus(kc, plan.namespace, name, START_REPLICAS, this.aks.podFailureGraceMs),
    );
    return {
      ready: report.ready,
      readyReplicas: report.readyReplicas,
      desiredReplicas: report.desiredReplicas,
      reason: report.reason,
      fatal: report.fatal,
      endpoint: report.loadBalancer && endpointUrl(exposure, report.loadBalancer.address),
      replicaUrls: [],
    };
  }

  /** The candidate's own load balancer, verified as the endpoint is (its certificate, its name). */
  async access(spec: DeploymentSpec, signal?: AbortSignal): Promise<EndpointAccess> {
    const plan = this.aks.plan(spec);
    const exposure = this.aks.exposure(spec, plan);
    const { report, apiKey, tls } = await this.aks.onCluster(
      plan,
      `reading the candidate of ${spec.name}`,
      signal,
      async (kc) => ({
        report: await rolloutStatus(
          kc,
          plan.namespace,
          candidateName(spec.name),
          START_REPLICAS,
          Number.POSITIVE_INFINITY,
        ),
        apiKey: await readApiKey(kc, plan.namespace, spec.name),
        tls: await this.aks.endpointTls(kc, plan, exposure),
      }),
    );
    const lb = report.loadBalancer;
    if (!lb || !apiKey)
      throw new Error(`The candidate of "${spec.name}" has no ${lb ? 'key' : 'LoadBalancer address'} yet.`);
    return {
      endpoint: endpointUrl(exposure, lb.address, tls?.servername),
      apiKey,
      ...(tls ? { connectTo: lb.address, tls } : {}),
    };
  }

  async requestCount(spec: DeploymentSpec, signal?: AbortSignal): Promise<RequestCounts> {
    const plan = this.aks.plan(spec);
    const https = Boolean(this.aks.exposure(spec, plan).tls);
    return this.aks.onCluster(plan, `reading the candidate's counters of ${spec.name}`, signal, (kc) =>
      podRequestCounts(kc, plan.namespace, `app=${candidateName(spec.name)}`, https),
    );
  }

  async route(spec: DeploymentSpec, candidatePercent: number): Promise<void> {
    const plan = this.aks.plan(spec);
    const { endpoint } = this.objects(spec, undefined, plan);
    await this.aks.onCluster(
      plan,
      `routing ${candidatePercent}% of ${spec.name} to its candidate`,
      undefined,
      async (kc) => {
        if (candidatePercent <= 0) {
          await applyObjects(kc, [selecting(endpoint, { app: spec.name })]);
          return;
        }
        // A mirror's front has done its work once the candidate takes traffic (its final reading is taken):
        // it goes before the serving pods roll onto the new image.
        if (!spec.hold) await removeMirrorFront(kc, plan.namespace, spec.name, this.aks.owner(spec));
        const apps = kc.makeApiClient(AppsV1Api);
        const name = candidateName(spec.name);
        const scale = await apps.readNamespacedDeploymentScale({ name, namespace: plan.namespace });
        const replicas = canaryReplicas(spec.replicas, candidatePercent);
        await apps.replaceNamespacedDeploymentScale({
          name,
          namespace: plan.namespace,
          body: { ...scale, spec: { replicas } },
        });
        await applyObjects(kc, [endpoint]); // the endpoint label: serving and candidate pods alike
      },
    );
  }

  /** A mirror bake: the front before the serving pods, copying `mirror.percent` of requests (mirror-front.ts). */
  async mirror(spec: DeploymentSpec, mirror: CandidateMirror, signal?: AbortSignal): Promise<void> {
    const plan = this.aks.plan(spec);
    const { endpoint } = this.objects(spec, undefined, plan);
    await this.aks.onCluster(
      plan,
      `mirroring ${mirror.percent}% of ${spec.name} to its candidate`,
      signal,
      async (kc) => {
        // The front runs in the candidate's image: built by this inferctl, so its front knows the mirror flags.
        const candidate = await kc
          .makeApiClient(AppsV1Api)
          .readNamespacedDeployment({ name: candidateName(spec.name), namespace: plan.namespace });
        const image = candidate.spec?.template.spec?.containers[0]?.image;
        if (!image) throw new Error(`The candidate of "${spec.name}" has no image.`);
        const owner = this.aks.owner(spec);
        const input: ScoringManifestInput = {
          namespace: plan.namespace,
          name: spec.name,
          ownerId: spec.ownerId,
          environment: owner.environment,
          image,
          replicas: spec.replicas,
          topK: spec.topK,
          servicePort: this.aks.exposure(spec, plan).port,
          exposure: this.aks.exposure(spec, plan),
        };
        const scope = { input, owner, endpoint, candidateService: candidateName(spec.name) };
        await placeMirrorFront(kc, scope, mirror, signal);
      },
    );
  }

  async mirrorReport(spec: DeploymentSpec, id: string, signal?: AbortSignal): Promise<MirrorReport> {
    const plan = this.aks.plan(spec);
    const https = Boolean(this.aks.exposure(spec, plan).tls);
    return this.aks.onCluster(plan, `reading the comparison of ${spec.name}`, signal, async (kc) => {
      const apiKey = await readApiKey(kc, plan.namespace, spec.name);
      if (!apiKey) throw new Error(`Deployment "${spec.name}" has no key Secret.`);
      return readMirrorReport(kc, plan.namespace, spec.name, https, id, apiKey);
    });
  }

  async remove(spec: DeploymentSpec, signal?: AbortSignal): Promise<void> {
    await this.route(spec, 0);
    const plan = this.aks.plan(spec);
    const name = candidateName(spec.name);
    await this.aks.onCluster(plan, `removing the candidate of ${spec.name}`, signal, async (kc) => {
      // A mirror's front (never scale to zero's, which is the endpoint itself: its rollouts are refused).
      if (!spec.hold) await removeMirrorFront(kc, plan.namespace, spec.name, this.aks.owner(spec));
      const apps = kc.makeApiClient(AppsV1Api);
      const core = kc.makeApiClient(CoreV1Api);
      const gone = (err: unknown) => {
        if (!isKubeNotFound(err)) throw err;
      };
      await apps
        .deleteNamespacedDeployment({ name, namespace: plan.namespace, propagationPolicy: 'Foreground' })
        .catch(gone);
      await core.deleteNamespacedService({ name, namespace: plan.namespace }).catch(gone);
      // Done once its pods are gone (their GPUs free for a scale or the next rollout) and so is the Deployment
      // itself: with foreground deletion it stays until the garbage collector has removed its pods, and a
      // next rollout's candidate of the same name could not be created while it is there.
      for (;;) {
        const pods = await core.listNamespacedPod({ namespace: plan.namespace, labelSelector: `app=${name}` });
        const deployment = await apps.readNamespacedDeployment({ name, namespace: plan.namespace }).catch((err) => {
          if (isKubeNotFound(err)) return undefined;
          throw err;
        });
        if (pods.items.length === 0 && !deployment) return;
        if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    });
  }

  /** The candidate's Deployment and Service, and the endpoint's Service, from the serving objects. */
  private objects(spec: DeploymentSpec, image: ImageResult | undefined, plan: AksPlan) {
    const exposure = this.aks.exposure(spec, plan);
    const [, , servingDeployment, endpoint] = this.aks.scoringObjects(
      spec,
      image ?? { imageRef: 'unused', digest: '', reused: true },
      plan,
      exposure,
    ) as [KubernetesObject, KubernetesObject, V1Deployment, V1Service];
    const name = candidateName(spec.name);
    const template = servingDeployment.spec!.template;
    const deployment: V1Deployment = {
      ...servingDeployment,
      metadata: { ...servingDeployment.metadata, name, labels: { ...servingDeployment.metadata!.labels, app: name } },
      spec: {
        ...servingDeployment.spec!,
        replicas: START_REPLICAS,
        selector: { matchLabels: { app: name } },
        // The endpoint label stays: once the Service selects it, the candidate takes its share.
        template: { ...template, metadata: { labels: { ...template.metadata!.labels, app: name } } },
      },
    };
    const annotations = { ...endpoint.metadata!.annotations };
    delete annotations[DNS_LABEL_ANNOTATION]; // a DNS label is unique in the region: the endpoint's stays its own
    const service: V1Service = {
      ...endpoint,
      metadata: { ...endpoint.metadata, name, labels: { ...endpoint.metadata!.labels, app: name }, annotations },
      spec: { ...endpoint.spec!, selector: { app: name } },
    };
    if (!template.metadata?.labels?.[ENDPOINT_LABEL]) throw new Error('the serving pods carry no endpoint label');
    return {
      deployment: deployment as KubernetesObject,
      service: service as KubernetesObject,
      endpoint: endpoint as KubernetesObject,
    };
  }
}

/** The endpoint's Service selecting `selector` (a Service's selector is replaced whole on apply). */
function selecting(service: KubernetesObject, selector: Record<string, string>): KubernetesObject {
  const s = service as V1Service;
  return { ...s, spec: { ...s.spec!, selector } } as KubernetesObject;
}
