/**
 * The serving loop's gateway watch (workflows/deploy/gateway-watch.ts, activities/gateway-watch.ts): what a look
 * at the endpoint's gateway found, and what the deployment's status keeps of it. Workflow-safe: plain data.
 */
/**
 * What a look at a serving endpoint's gateway found (`Target.reviveGateway`; the serving loop's gateway watch):
 * running; restarted (it was gone and runs again on its address, under a new pid); failed (gone, and the one
 * started in its place exited: `reason`, such as another process on the port); tearing-down (teardown has begun:
 * nothing is started); none (no gateway recorded); unsupported (the target has none to watch). Public facts only.
 */
export interface GatewayRevival {
  outcome: 'running' | 'restarted' | 'failed' | 'tearing-down' | 'none' | 'unsupported';
  /** The gateway found gone. */
  gonePid?: number;
  /** The one started in its place. */
  pid?: number;
  port?: number;
  reason?: string;
}

/** The gateway watch in a deployment's status: the gateway's restarts while serving, and a restart that fails. */
export interface GatewayWatchStatus {
  restarts: number;
  /** The last restart (workflow time, ISO 8601): the pid found gone and the one that serves since. */
  lastRestartAt?: string;
  gonePid?: number;
  pid?: number;
  /** Gone, and the gateway started in its place could not listen (its log's last lines); retried, backing off. */
  failing?: string;
}
