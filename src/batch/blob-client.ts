/**
 * One Blob Storage client per account per process, and what a refusal means for the user.
 *
 * Credentials, first match wins (none of them ever travels in a workflow input or history):
 *  1. AZURE_STORAGE_CONNECTION_STRING, when it is for the location's account (an account key or a SAS
 *     connection string; `UseDevelopmentStorage=true` for Azurite);
 *  2. INFERCTL_STORAGE_CONTAINER_SAS, when it has a SAS URL for the location's container (JSON
 *     `{"<account>/<container>": "<container URL>?<SAS>"}`: what a batch job's GPU-worker pods get, one per
 *     container of the job, src/targets/aks/gpu-worker-secrets.ts);
 *     AZURE_STORAGE_SAS_TOKEN: a SAS (account or container) appended to the location's endpoint;
 *  3. DefaultAzureCredential (az login, a service principal's environment, a managed identity, workload
 *     identity on AKS), built once per process; the identity needs "Storage Blob Data Contributor".
 *
 * The endpoint is the location's own (an https/http URL) or https://<account>.blob.core.windows.net.
 */
import { DefaultAzureCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import { RestError } from '@azure/core-rest-pipeline';
import {
  BlobSASPermissions,
  BlobServiceClient,
  ContainerClient,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import type { BlockBlobClient, HttpAuthorization } from '@azure/storage-blob';

import { PermanentError } from '../errors';
import { FailureType } from '../shared/failure-types';
import { formatBlobLocation } from './blob-location';
import type { BlobLocation } from './blob-location';

type Auth = { kind: 'key' } | { kind: 'sas' } | { kind: 'token'; credential: TokenCredential };

interface AccountClient {
  service: BlobServiceClient;
  auth: Auth;
}

const clients = new Map<string, AccountClient>();
let defaultCredential: DefaultAzureCredential | undefined;

/** The client for `loc`'s account (cached per account and endpoint). */
export function accountClient(loc: BlobLocation, env: NodeJS.ProcessEnv = process.env): AccountClient {
  const key = `${loc.account}|${loc.endpoint ?? ''}`;
  let client = clients.get(key);
  if (!client) {
    client = createAccountClient(loc, env);
    clients.set(key, client);
  }
  return client;
}

function createAccountClient(loc: BlobLocation, env: NodeJS.ProcessEnv): AccountClient {
  const connection = env.AZURE_STORAGE_CONNECTION_STRING;
  if (connection) {
    const service = BlobServiceClient.fromConnectionString(connection);
    if (service.accountName === loc.account) {
      return {
        service,
        auth: service.credential instanceof StorageSharedKeyCredential ? { kind: 'key' } : { kind: 'sas' },
      };
    }
  }
  const endpoint = loc.endpoint ?? `https://${loc.account}.blob.core.windows.net`;
  const sas = env.AZURE_STORAGE_SAS_TOKEN?.replace(/^\?/, '');
  if (sas) return { service: new BlobServiceClient(`${endpoint}?${sas}`), auth: { kind: 'sas' } };
  defaultCredential ??= new DefaultAzureCredential();
  return {
    service: new BlobServiceClient(endpoint, defaultCredential),
    auth: { kind: 'token', credential: defaultCredential },
  };
}

const containerClients = new Map<string, ContainerClient>();

/** The container's own SAS URL from INFERCTL_STORAGE_CONTAINER_SAS, if it has one. */
function containerSas(loc: BlobLocation, env: NodeJS.ProcessEnv): string | undefined {
  const map = env.INFERCTL_STORAGE_CONTAINER_SAS;
  if (!map) return undefined;
  try {
    return (JSON.parse(map) as Record<string, string>)[`${loc.account}/${loc.container}`];
  } catch {
    return undefined;
  }
}

export function containerClient(loc: BlobLocation, env: NodeJS.ProcessEnv = process.env): ContainerClient {
  const sasUrl = containerSas(loc, env);
  if (!sasUrl) return accountClient(loc, env).service.getContainerClient(loc.container);
  let client = containerClients.get(sasUrl);
  if (!client) {
    client = new ContainerClient(sasUrl);
    containerClients.set(sasUrl, client);
  }
  return client;
}

export function blockBlob(loc: BlobLocation, name = loc.prefix): BlockBlobClient {
  return containerClient(loc).getBlockBlobClient(name);
}

/**
 * How the service may read `source` for a server-side copy (Put Block From URL): a short read-only SAS
 * signed with the account key, the SAS the client already carries, or the caller's bearer token.
 */
export async function copySource(
  loc: BlobLocation,
  source: BlockBlobClient,
): Promise<{ url: string; sourceAuthorization?: HttpAuthorization }> {
  if (containerSas(loc, process.env)) return { url: source.url }; // the container's SAS is in the URL
  const { auth } = accountClient(loc);
  if (auth.kind === 'key') {
    const url = await source.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      expiresOn: new Date(Date.now() + 60 * 60 * 1000),
    });
    return { url };
  }
  if (auth.kind === 'sas') return { url: source.url };
  const token = await auth.credential.getToken('https://storage.azure.com/.default');
  if (!token) throw new Error('No token for Azure Storage from DefaultAzureCredential');
  return { url: source.url, sourceAuthorization: { scheme: 'Bearer', value: token.token } };
}

/** Thrown when Blob Storage refuses in a way retrying cannot fix; the message says what the user must do. */
export class StorageError extends PermanentError {
  readonly location: string;
  constructor(message: string, type: FailureType, location: string, options?: { cause?: unknown }) {
    super(message, type, options);
    this.name = 'StorageError';
    this.location = location;
  }
}

/** The storage error code of a failed call (RestError.code, or the x-ms-error-code header). */
export function storageErrorCode(err: unknown): string | undefined {
  if (!(err instanceof RestError) && !(err instanceof Error && 'statusCode' in err)) return undefined;
  const rest = err as RestError & { details?: { errorCode?: string } };
  return rest.details?.errorCode ?? rest.response?.headers.get('x-ms-error-code') ?? rest.code;
}

export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/**
 * Runs one storage call for `what` at `loc`, turning the refusals that retrying cannot fix into a
 * StorageError that says what to do; anything else (timeouts, 5xx, throttling) is rethrown and retried.
 */
export async function storageCall<T>(what: string, loc: BlobLocation, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw explainStorageError(err, what, loc);
  }
}

export function explainStorageError(err: unknown, what: string, loc: BlobLocation): unknown {
  const where = formatBlobLocation(loc);
  const name = (err as Error | undefined)?.name;
  if (
    name === 'CredentialUnavailableError' ||
    name === 'AuthenticationError' ||
    name === 'AggregateAuthenticationError'
  ) {
    return new StorageError(
      `Cannot ${what} ${where}: no Azure sign-in for Blob Storage on this worker (${(err as Error).message.split('\n')[0]}). ` +
        'Sign in (az login, a managed or workload identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET), ' +
        'or set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_SAS_TOKEN for the workers.',
      FailureType.StorageNotConfigured,
      where,
      { cause: err },
    );
  }
  const code = storageErrorCode(err);
  const status = statusOf(err);
  if (code === 'ContainerNotFound') {
    return new StorageError(
      `Cannot ${what} ${where}: container "${loc.container}" does not exist in storage account "${loc.account}". ` +
        `Create it (az storage container create --account-name ${loc.account} --name ${loc.container}) or fix the URL.`,
      FailureType.StorageContainerNotFound,
      where,
      { cause: err },
    );
  }
  if (status === 403 || status === 401) {
    return new StorageError(
      `Cannot ${what} ${where}: Blob Storage refused access (${code ?? status}). Give the workers' identity the ` +
        `"Storage Blob Data Contributor" role on account "${loc.account}" (reading inputs needs "Storage Blob Data Reader"), ` +
        'or check AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_SAS_TOKEN (a SAS needs read, list, write, create ' +
        'and delete permissions, and must not have expired).',
      FailureType.StorageAccessDenied,
      where,
      { cause: err },
    );
  }
  const sysCode = (err as NodeJS.ErrnoException).code;
  if (sysCode === 'ENOTFOUND' || code === 'ENOTFOUND') {
    return new StorageError(
      `Cannot ${what} ${where}: storage account "${loc.account}" was not found (its endpoint does not resolve). ` +
        'Check the account name in the URL.',
      FailureType.StorageAccountNotFound,
      where,
      { cause: err },
    );
  }
  return err;
}
