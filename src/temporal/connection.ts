/**
 * Connections to Temporal for the CLI (client) and the workers, both from the SDK's environment
 * configuration: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, and profiles
 * in temporal.toml (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE). Defaults: localhost:7233, "default".
 */
import { Client, Connection } from '@temporalio/client';
import type { ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import type { PayloadCodec } from '@temporalio/common';

import { codecFromEnv } from './payload-codec';
import type { CodecRole } from './payload-codec';
import type { NativeConnectionOptions } from '@temporalio/worker';

import { InvalidInputError } from '../errors';
import { FailureType } from '../shared/failure-types';

/** The dev server's defaults: gRPC on 7233, Web UI on 8233 (gRPC + 1000). */
export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';
const UI_PORT_OFFSET = 1000;
const CLOUD_UI_URL = 'https://cloud.temporal.io';

/** Thrown when no Temporal server answers at the configured address. */
export class TemporalUnavailableError extends Error {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    super(
      `Cannot reach Temporal at ${address} (${reason(cause)}). Start a local server with \`inferctl dev\`, ` +
        'or point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_API_KEY) at yours.',
    );
    this.name = 'TemporalUnavailableError';
    this.address = address;
  }
}

/** Thrown when the Temporal client configuration (a temporal.toml profile, TEMPORAL_TLS_* files) is unusable. */
export class TemporalConfigError extends InvalidInputError {
  constructor(cause: unknown) {
    const file = process.env.TEMPORAL_CONFIG_FILE ?? '~/.config/temporalio/temporal.toml';
    super(
      `Cannot load the Temporal connection settings (${reason(cause)}). Fix ${file}` +
        `${process.env.TEMPORAL_PROFILE ? ` (profile ${process.env.TEMPORAL_PROFILE})` : ''} or the TEMPORAL_* ` +
        'variables, or point TEMPORAL_CONFIG_FILE at another file.',
      FailureType.InvalidTemporalConfig,
    );
    this.name = 'TemporalConfigError';
  }
}

/** The first line of an error, with the Rust core's transport errors cut down to their message. */
function reason(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  const core = /message: "([^"]+)"/.exec(text) ?? /error: "([^"]+)"/.exec(text);
  return core?.[1] ?? text.split('\n')[0] ?? text;
}

export interface ConnectionSettings {
  address: string;
  namespace: string;
  /** For the worker's NativeConnection; the client's Connection takes the same fields. */
  options: NativeConnectionOptions & { address: string };
}

/** The connection settings from the environment and the config file, with the SDK's precedence. */
export function connectionSettings(): ConnectionSettings {
  let config: ReturnType<typeof loadClientConnectConfig>;
  try {
    config = loadClientConnectConfig();
  } catch (err) {
    throw new TemporalConfigError(err);
  }
  const address = config.connectionOptions.address ?? DEFAULT_ADDRESS;
  return {
    address,
    namespace: config.namespace ?? DEFAULT_NAMESPACE,
    options: { ...config.connectionOptions, address },
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
    connection = await Connection.connect({ ...(options as ConnectionOptions), connectTimeout: '5s' });
  } catch (err) {
    throw new TemporalUnavailableError(address, err);
  }
  return {
    client: new Client({ connection, namespace, dataConverter: dataConverter() }),
    connection,
    namespace,
    address,
  };
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string; address: string }> {
  const { address, namespace, options } = connectionSettings();
  try {
    return { connection: await NativeConnection.connect(options), namespace, address };
  } catch (err) {
    throw new TemporalUnavailableError(address, err);
  }
}

/**
 * The Web UI's base URL: `INFERCTL_UI_URL`, else Temporal Cloud's UI for a cloud address, else the
 * address's host with the dev server's port layout (localhost:7233 → http://localhost:8233).
 */
export function webUiBase(): string {
  const configured = process.env.INFERCTL_UI_URL?.trim().replace(/\/+$/, '');
  if (configured) return configured;
  let address: string;
  try {
    address = connectionSettings().address;
  } catch {
    address = process.env.TEMPORAL_ADDRESS ?? DEFAULT_ADDRESS; // a link is no place to fail over config
  }
  const match = /^(.*):(\d+)$/.exec(address);
  const host = match?.[1] || 'localhost';
  if (/\.(tmprl\.cloud|api\.temporal\.io)$/.test(host)) return CLOUD_UI_URL;
  const port = match ? Number(match[2]) + UI_PORT_OFFSET : 8233;
  return `http://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${port}`;
}

/**
 * A link to the Web UI: the namespace's workflow list, a workflow, or one run's history:
 * `${base}/namespaces/${ns}/workflows/${encodeURIComponent(id)}[/${runId}/history]`.
 */
export function webUiUrl(opts: { namespace: string; workflowId?: string; runId?: string }): string {
  const namespaceUrl = `${webUiBase()}/namespaces/${encodeURIComponent(opts.namespace)}/workflows`;
  if (!opts.workflowId) return namespaceUrl;
  const workflowUrl = `${namespaceUrl}/${encodeURIComponent(opts.workflowId)}`;
  return opts.runId ? `${workflowUrl}/${encodeURIComponent(opts.runId)}/history` : workflowUrl;
}

/** The module that exports the shared failure converter (failure-converter.ts), for workers and the bundle. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The module that exports the shared payload converter (payload-converter.ts), for workers and the bundle. */
export const PAYLOAD_CONVERTER_PATH = require.resolve('./payload-converter');

/**
 * The data converter client and workers share: failures with their message and stack trace as encoded
 * payloads (failure-converter.ts), and payload encryption when INFERCTL_CODEC_KEYS(_FILE) is set
 * (payload-codec.ts). A worker's codec marks unencrypted payloads refused (payload-converter.ts) and the
 * workflow refuses them (workflows/refuse-unencrypted.ts): nobody without the key can start a workflow or
 * send a signal or Update that a worker acts on. A client's reads them (histories from before
 * encryption was turned on).
 */
export function dataConverter(role: CodecRole = 'client'): {
  payloadCodecs?: PayloadCodec[];
  failureConverterPath: string;
  payloadConverterPath: string;
} {
  const codec = codecFromEnv(process.env, role);
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
    ...(codec ? { payloadCodecs: [codec] } : {}),
  };
}
