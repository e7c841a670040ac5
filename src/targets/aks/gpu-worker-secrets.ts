/**
 * What a batch job's GPU-worker pods get in their Secret (gpu-worker-pods.ts), possibly in a user's own
 * cluster: only what scoring the job's shards needs, never the control worker's own credentials.
 *
 * - Temporal: the address, namespace and TLS settings, and an API key: INFERCTL_GPU_WORKER_TEMPORAL_API_KEY
 *   when the operator gives the pods a key of their own (a narrower one), else the control worker's.
 * - Payload encryption: the current key only (from INFERCTL_CODEC_KEYS or INFERCTL_CODEC_KEYS_FILE), as
 *   INFERCTL_CODEC_KEYS: the job's tasks are sealed with it; older keys stay with the control worker.
 * - Blob Storage: never the connection string. With an account key, a SAS per container the job uses,
 *   signed with it and expiring with the job (INFERCTL_GPU_WORKER_SAS_HOURS, default 24): read and list on
 *   the input's container, read, add, create, write, delete and list on the output's. They travel as
 *   INFERCTL_STORAGE_CONTAINER_SAS (JSON: {"<account>/<container>": "<container URL>?<SAS>"}, the URL on
 *   the connection string's endpoint), which the blob client uses for exactly those containers. A SAS the operator set (AZURE_STORAGE_SAS_TOKEN) is passed on as it is.
 */
import {
  BlobServiceClient,
  ContainerSASPermissions,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';

import { isBlobLocation, parseBlobLocation } from '../../storage/blob-location';
import { connectionSettings } from '../../temporal/connection';
import { codecFromEnv } from '../../temporal/payload-codec';

/** The Secret's variables, by name. */
export type WorkerSecrets = Record<string, string>;

export const CONTAINER_SAS_VARIABLE = 'INFERCTL_STORAGE_CONTAINER_SAS';
const TEMPORAL_VARIABLES = ['TEMPORAL_TLS', 'TEMPORAL_TLS_SERVER_NAME'] as const;
const INPUT_PERMISSIONS = 'rl';
const OUTPUT_PERMISSIONS = 'racwdl';

export interface JobStorage {
  /** Where the job reads (its --input), a blob location or a path. */
  inputs: string[];
  /** Where the job writes (its --output). */
  outputs: string[];
}

/** The pods' variables for a job whose storage is `storage`, from the control worker's environment. */
export function gpuWorkerSecrets(
  storage: JobStorage,
  env: NodeJS.ProcessEnv = process.env,
  now = new Date(),
): WorkerSecrets {
  const temporal = connectionSettings();
  const secrets: WorkerSecrets = { TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace };
  for (const name of TEMPORAL_VARIABLES) if (env[name]) secrets[name] = env[name];
  const apiKey = env.INFERCTL_GPU_WORKER_TEMPORAL_API_KEY ?? env.TEMPORAL_API_KEY;
  if (apiKey) secrets.TEMPORAL_API_KEY = apiKey;
  const codec = codecFromEnv(env);
  if (codec) secrets.INFERCTL_CODEC_KEYS = codec.currentKeySetting();
  const sas = containerSas(storage, env, now);
  if (Object.keys(sas).length > 0) secrets[CONTAINER_SAS_VARIABLE] = JSON.stringify(sas);
  if (env.AZURE_STORAGE_SAS_TOKEN) secrets.AZURE_STORAGE_SAS_TOKEN = env.AZURE_STORAGE_SAS_TOKEN;
  return secrets;
}

/** The names `gpuWorkerSecrets` would set with this environment (for printing, without making any SAS). */
export function gpuWorkerSecretNames(env: NodeJS.ProcessEnv = process.env): string[] {
  const names = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', ...TEMPORAL_VARIABLES.filter((n) => env[n])];
  if (env.INFERCTL_GPU_WORKER_TEMPORAL_API_KEY ?? env.TEMPORAL_API_KEY) names.push('TEMPORAL_API_KEY');
  if (env.INFERCTL_CODEC_KEYS ?? env.INFERCTL_CODEC_KEYS_FILE) names.push('INFERCTL_CODEC_KEYS');
  if (env.AZURE_STORAGE_CONNECTION_STRING) names.push(CONTAINER_SAS_VARIABLE);
  if (env.AZURE_STORAGE_SAS_TOKEN) names.push('AZURE_STORAGE_SAS_TOKEN');
  return names.sort();
}

/** A SAS URL per container of the job in the connection string's account, signed with its account key. */
function containerSas(storage: JobStorage, env: NodeJS.ProcessEnv, now: Date): Record<string, string> {
  if (!env.AZURE_STORAGE_CONNECTION_STRING) return {};
  const service = BlobServiceClient.fromConnectionString(env.AZURE_STORAGE_CONNECTION_STRING);
  if (!(service.credential instanceof StorageSharedKeyCredential)) return {};
  const hours = Number(env.INFERCTL_GPU_WORKER_SAS_HOURS ?? 24);
  const expiresOn = new Date(now.getTime() + (Number.isFinite(hours) && hours > 0 ? hours : 24) * 3_600_000);
  const wanted = new Map<string, string>();
  const add = (where: string, permissions: string) => {
    if (!isBlobLocation(where)) return;
    const loc = parseBlobLocation(where);
    if (loc.account !== service.accountName) return;
    const key = `${loc.account}/${loc.container}`;
    wanted.set(key, mergePermissions(wanted.get(key) ?? '', permissions));
  };
  for (const where of storage.inputs) add(where, INPUT_PERMISSIONS);
  for (const where of storage.outputs) add(where, OUTPUT_PERMISSIONS);
  const http = new URL(service.url).protocol === 'http:'; // Azurite; Azure's endpoints are https only
  const sas: Record<string, string> = {};
  for (const [key, permissions] of wanted) {
    const containerName = key.slice(key.indexOf('/') + 1);
    const query = generateBlobSASQueryParameters(
      {
        containerName,
        permissions: ContainerSASPermissions.parse(permissions),
        startsOn: new Date(now.getTime() - 5 * 60_000), // clock skew
        expiresOn,
        protocol: http ? SASProtocol.HttpsAndHttp : SASProtocol.Https,
      },
      service.credential,
    ).toString();
    sas[key] = `${service.getContainerClient(containerName).url}?${query}`;
  }
  return sas;
}

/** The union of two permission strings, in the order the service expects. */
function mergePermissions(a: string, b: string): string {
  return 'racwdl'
    .split('')
    .filter((p) => a.includes(p) || b.includes(p))
    .join('');
}
