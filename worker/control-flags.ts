/**
 * The control worker's flags, one table for `inferctl worker` and `node dist/worker/control.js` alike;
 * each falls back to its INFERCTL_* variable, then to its default (worker/worker-flags.ts).
 */
import { CONTROL_TASK_QUEUE } from '../src/shared/deploy-types';
import type { VersionFlags } from './versioning';
import { WorkerFlagReader } from './worker-flags';
import type { GivenFlags, WorkerFlagTable } from './worker-flags';

export const CONTROL_WORKER_FLAGS: WorkerFlagTable = [
  {
    name: 'task-queue',
    value: '<queue>',
    description: 'task queue to poll',
    default: CONTROL_TASK_QUEUE,
    env: 'INFERCTL_CONTROL_TASK_QUEUE',
  },
  {
    name: 'deployment-name',
    value: '<name>',
    description: 'Worker Deployment name',
    defaultText: 'the task queue',
    env: 'INFERCTL_WORKER_DEPLOYMENT',
  },
  {
    name: 'build-id',
    value: '<id>',
    description: 'build id of this version',
    defaultText: "the package version and the workflow bundle's hash",
    env: 'INFERCTL_BUILD_ID',
  },
  {
    name: 'make-current',
    description:
      'do not make a new version current on its first start (promote it with `temporal worker deployment set-current-version`)',
    default: true,
    env: 'INFERCTL_MAKE_CURRENT',
  },
  {
    name: 'unversioned',
    description: 'poll without Worker Versioning, as before Worker Deployments (no pinning)',
    env: 'INFERCTL_UNVERSIONED_WORKER',
  },
  {
    name: 'metrics-port',
    value: '<port>',
    description: 'serve Prometheus metrics on 127.0.0.1:<port>/metrics',
    defaultText: 'none',
    env: 'INFERCTL_METRICS_PORT',
  },
];

/** What the control worker runs with, from its flags. */
export interface ControlWorkerSettings {
  taskQueue: string;
  metricsPort?: number;
  versioning: Omit<VersionFlags, 'taskQueue'>;
}

/** Checks the flags (given, else INFERCTL_*, else default) and turns them into settings; every problem at once. */
export function controlWorkerSettings(given: GivenFlags, env: NodeJS.ProcessEnv = process.env): ControlWorkerSettings {
  const f = new WorkerFlagReader(CONTROL_WORKER_FLAGS, given, env);
  const settings: ControlWorkerSettings = {
    taskQueue: f.string('task-queue') ?? CONTROL_TASK_QUEUE,
    metricsPort: f.whole('metrics-port', 1),
    versioning: {
      deploymentName: f.string('deployment-name'),
      buildId: f.string('build-id'),
      makeCurrent: f.boolean('make-current'),
      unversioned: f.boolean('unversioned'),
    },
  };
  f.done();
  return settings;
}
