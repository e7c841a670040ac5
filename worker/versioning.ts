/**
 * Worker Versioning (Temporal Worker Deployments) for the control worker: which Worker Deployment version
 * it declares, and how a new version becomes current.
 *
 * A version is `<deployment name>.<build id>`. The build id defaults to the package version and the
 * workflow bundle's hash (workflowBuildId), so any change to the workflow code is a new version; the
 * deployment name defaults to the task queue. Each workflow declares its behaviour (its setWorkflowOptions
 * in workflows/: deploy PINNED, batch and janitor AUTO_UPGRADE): a pinned deployment is only ever replayed
 * by the code it started on, on workers of its own version; so is every run it continues as new into.
 *
 * Promotion: a version that has never been current or ramping makes itself current once its worker polls
 * (SetWorkerDeploymentCurrentVersion), so that a plain `inferctl worker` of a new build takes new
 * workflows at once. A version that was current before and is not any more (a newer build took over) never
 * takes it back by restarting: an old worker restarted to drain its pinned deployments stays non-current.
 * `--no-make-current` leaves promotion to the operator (`temporal worker deployment set-current-version`).
 */
import type { NativeConnection, WorkerDeploymentOptions } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';

import { workflowBuildId } from './workflow-bundle';

const { WorkerDeploymentVersionStatus } = temporal.api.enums.v1;

/** How a control worker takes part in Worker Versioning; `undefined` where it is unversioned. */
export interface WorkerVersion {
  deploymentName: string;
  buildId: string;
  /** Make the version current on its first start (default true). */
  makeCurrent: boolean;
}

/** What a versioned worker found or did at start: shown in its startup line. */
export interface VersionStanding {
  version: { deploymentName: string; buildId: string };
  /** `made current`, `already current`, or why it was left as it is. */
  current: string;
}

export interface VersionFlags {
  taskQueue: string;
  /** Default the task queue (INFERCTL_WORKER_DEPLOYMENT is read with the flags: worker/control-flags.ts). */
  deploymentName?: string;
  /** Default the package version and the workflow bundle's hash (INFERCTL_BUILD_ID: worker/control-flags.ts). */
  buildId?: string;
  /** Default true. */
  makeCurrent?: boolean;
  /** No Worker Versioning at all: the worker polls unversioned, as before Worker Deployments. */
  unversioned?: boolean;
}

/** The version a control worker declares, from its flags; undefined when unversioned. */
export function workerVersion(flags: VersionFlags): WorkerVersion | undefined {
  if (flags.unversioned) return undefined;
  return {
    deploymentName: flags.deploymentName || flags.taskQueue,
    buildId: flags.buildId || workflowBuildId(),
    makeCurrent: flags.makeCurrent ?? true,
  };
}

/** Worker.create's option for it. Workflows without a declared behaviour are pinned. */
export function deploymentOptions(version: WorkerVersion): WorkerDeploymentOptions {
  return {
    useWorkerVersioning: true,
    version: { deploymentName: version.deploymentName, buildId: version.buildId },
    defaultVersioningBehavior: 'PINNED',
  };
}

/** `name.buildId`, the form the Temporal CLI and Web UI show. */
export function versionLabel(v: { deploymentName: string; buildId: string }): string {
  return `${v.deploymentName}.${v.buildId}`;
}

/** Thrown when a new version cannot be made current: says why and how to promote it by hand. */
export class PromotionError extends Error {
  constructor(
    readonly version: string,
    reason: string,
  ) {
    super(
      `could not make worker version ${version} current (${reason}). Start the worker with --no-make-current ` +
        `and promote it with \`temporal worker deployment set-current-version\`, or fix the cause above.`,
    );
    this.name = 'PromotionError';
  }
}

const REGISTRATION_TIMEOUT_MS = 60_000;

/**
 * Once the worker polls (the server registers its version on the first poll), makes the version current
 * if it has never been current or ramping; otherwise leaves the routing as it is and says why.
 */
export async function promoteOnFirstStart(
  connection: NativeConnection,
  namespace: string,
  version: WorkerVersion,
  stopped: Promise<unknown>,
): Promise<VersionStanding> {
  const service = connection.workflowService;
  const deploymentVersion = { deploymentName: version.deploymentName, buildId: version.buildId };
  const label = versionLabel(version);
  const deadline = Date.now() + REGISTRATION_TIMEOUT_MS;
  let lastError: unknown;
  let stop = false;
  void stopped.then(
    () => (stop = true),
    () => (stop = true),
  );
  for (;;) {
    if (stop) throw new PromotionError(label, 'the worker stopped before its version was registered');
    try {
      const { workerDeploymentVersionInfo: info } = await service.describeWorkerDeploymentVersion({
        namespace,
        deploymentVersion,
      });
      const status = info?.status ?? WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_UNSPECIFIED;
      if (status === WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT) {
        return { version: deploymentVersion, current: 'already current' };
      }
      if (status !== WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE) {
        const name = WorkerDeploymentVersionStatus[status]?.replace('WORKER_DEPLOYMENT_VERSION_STATUS_', '');
        return { version: deploymentVersion, current: `not current: ${name?.toLowerCase()}, left as it is` };
      }
      if (!version.makeCurrent) return { version: deploymentVersion, current: 'not current (--no-make-current)' };
      await service.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName: version.deploymentName,
        buildId: version.buildId,
        identity: `inferctl-worker@${process.pid}`,
      });
      return { version: deploymentVersion, current: 'made current' };
    } catch (err) {
      // NOT_FOUND until the server has registered the first poll; a concurrent routing change conflicts.
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new PromotionError(label, lastError instanceof Error ? lastError.message : String(lastError));
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
