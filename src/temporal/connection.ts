/**
 * Connections to Temporal for the CLI (client) and the workers, both from the SDK's environment
 * configuration: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, and profiles
 * in temporal.toml (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE). Defaults: localhost:7233, "default".
 */
import { Client, Connection } from '@temporalio/client';
import type { ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';

const DEFAULT_ADDRESS = 'localhost:7233';
const DEFAULT_NAMESPACE = 'default';

/** Thrown when no Temporal server answers at the configured address. */
export class TemporalUnavailableError extends Error {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    super(
      `Cannot reach Temporal at ${address} (${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}). ` +
        'Start a local server with `inferctl dev`, or point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_API_KEY) at yours.',
    );
    this.name = 'TemporalUnavailableError';
    this.address = address;
  }
}

export interface ConnectionSettings {
  address: string;
  namespace: string;
  options: ConnectionOptions;
}

/** The connection settings from the environment and the config file, with the SDK's precedence. */
export function connectionSettings(): ConnectionSettings {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const address = connectionOptions.address ?? DEFAULT_ADDRESS;
  return {
    address,
    namespace: namespace ?? DEFAULT_NAMESPACE,
    options: { ...(connectionOptions as ConnectionOptions), address, connectTimeout: '5s' },
  };
}

export async function connectClient(): Promise<{
  client: Client;
  connection: Connection;
  namespace: string;
  address: string;
}> {
  const { address, namespace, options } = connectionSettings();
  let connection: Connection;
  try {
    connection = await Connection.connect(options);
  } catch (err) {
    throw new TemporalUnavailableError(address, err);
  }
  return { client: new Client({ connection, namespace }), connection, namespace, address };
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string; address: string }> {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const address = connectionOptions.address ?? DEFAULT_ADDRESS;
  try {
    const connection = await NativeConnection.connect({ ...connectionOptions, address });
    return { connection, namespace: namespace ?? DEFAULT_NAMESPACE, address };
  } catch (err) {
    throw new TemporalUnavailableError(address, err);
  }
}

/**
 * A link to the Temporal Web UI: `INFERCTL_UI_URL` as the base, else derived from the address the way
 * the dev server lays out its ports (gRPC 7233 → UI 8233).
 */
export function webUiUrl(opts: { namespace: string; workflowId?: string; runId?: string }): string {
  let base = process.env.INFERCTL_UI_URL?.replace(/\/+$/, '');
  if (!base) {
    const address = connectionSettings().address;
    const match = /^(.*):(\d+)$/.exec(address);
    const host = match?.[1] ?? 'localhost';
    const port = match ? Number(match[2]) + 1000 : 8233;
    base = `http://${host}:${port}`;
  }
  const ns = encodeURIComponent(opts.namespace);
  if (!opts.workflowId) return `${base}/namespaces/${ns}/workflows`;
  const wf = `${base}/namespaces/${ns}/workflows/${encodeURIComponent(opts.workflowId)}`;
  return opts.runId ? `${wf}/${encodeURIComponent(opts.runId)}/history` : wf;
}
