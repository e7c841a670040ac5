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
 * A credential is only ever sent to a trusted endpoint (assertTrustedEndpoint): Azure's own blob
 * endpoints over https (https://<account>.blob.core.windows.net and the sovereign clouds' suffixes), the
 * connection string's own BlobEndpoint, and the endpoints the operator names in INFERCTL_BLOB_ENDPOINTS
 * (Azurite, a private endpoint's custom domain). A location naming any other host is refused before a
 * client exists for it, so a manifest line or an --input cannot harvest the workers' SAS or token.
 */
import type { TokenCredential } from '@azure/identity';
import { RestError } from '@azure/core-rest-pipeline';
import {
  BlobSASPermissions,
  BlobServiceClient,
  ContainerClient,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import type { BlockBlobClient, HttpAuthorization } from '@azure/storage-blob';

import { azureCredential } from '../azure/credential';
import { InvalidInputError, PermanentError } from '../errors';
import { FailureType } from '../shared/failure-types';
import { formatBlobLocation } from './blob-location';
import type { BlobLocation } from './blob-location';

type Auth = { kind: 'key' } | { kind: 'sas' } | { kind: 'token'; credential: TokenCredential };

interface AccountClient {
  service: BlobServiceClient;
  auth: Auth;
}

const clients = new Map<string, AccountClient>();

/** Azure's blob endpoints: the public cloud's and the sovereign clouds' (China, US Government, Germany). */
const AZURE_BLOB_HOST =
  /^[a-z0-9]{3,24}\.blob\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net|cloudapi\.de)$/i;

/** Thrown when a blob location names an endpoint that may not receive the workers' credentials. */
export class BlobEndpointNotAllowedError extends InvalidInputError {
  readonly endpoint: string;
  constructor(endpoint: string, location: string) {
    const origin = safeOrigin(endpoint);
    super(
      `The blob location ${location} names the endpoint ${endpoint}, which is not an Azure Blob Storage endpoint ` +
        '(https://<account>.blob.core.windows.net or a sovereign cloud’s) nor one the operator named, so no ' +
        `storage credential is sent there. If it is yours (Azurite, a private endpoint), set INFERCTL_BLOB_ENDPOINTS=${origin} ` +
        'on the workers (comma-separated), or give them a connection string whose BlobEndpoint it is.',
      FailureType.BlobEndpointNotAllowed,
    );
    this.name = 'BlobEndpointNotAllowedError';
    this.endpoint = endpoint;
  }
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** The endpoints named by the operator: INFERCTL_BLOB_ENDPOINTS and the connection string's BlobEndpoint. */
export function namedBlobEndpoints(env: NodeJS.ProcessEnv = process.env): URL[] {
  const named: URL[] = [];
  for (const entry of (env.INFERCTL_BLOB_ENDPOINTS ?? '').split(/[\s,]+/).filter(Boolean)) {
    try {
      named.push(new URL(entry));
    } catch {
      // Not a URL: it names nothing (the setting is documented as a list of URLs).
    }
  }
  const own = env.AZURE_STORAGE_CONNECTION_STRING
    ? connectionStringEndpoint(env.AZURE_STORAGE_CONNECTION_STRING)
    : undefined;
  if (own) named.push(own);
  return named;
}

const connectionEndpoints = new Map<string, URL | undefined>();

/** The blob endpoint a connection string names (its BlobEndpoint, or the one its account implies). */
function connectionStringEndpoint(connection: string): URL | undefined {
  if (!connectionEndpoints.has(connection)) {
    let url: URL | undefined;
    try {
      url = new URL(BlobServiceClient.fromConnectionString(connection).url);
    } catch {
      url = undefined; // a connection string the SDK cannot read names no endpoint
    }
    connectionEndpoints.set(connection, url);
  }
  return connectionEndpoints.get(connection);
}

/** True when credentials may be sent to `endpoint` (see the file's comment). */
export function isTrustedEndpoint(endpoint: string, env: NodeJS.ProcessEnv = process.env): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  if (url.protocol === 'https:' && url.port === '' && AZURE_BLOB_HOST.test(url.hostname)) return true;
  const dir = (p: string) => (p.endsWith('/') ? p : `${p}/`);
  return namedBlobEndpoints(env).some(
    (named) => named.origin === url.origin && dir(url.pathname).startsWith(dir(named.pathname)),
  );
}

/** Throws BlobEndpointNotAllowedError when `loc` names an endpoint that may not receive credentials. */
export function assertTrustedEndpoint(loc: BlobLocation, env: NodeJS.ProcessEnv = process.env): void {
  if (loc.endpoint !== undefined && !isTrustedEndpoint(loc.endpoint, env)) {
    throw new BlobEndpointNotAllowedError(loc.endpoint, formatBlobLocation(loc));
  }
}

/** The client for `loc`'s account (cached per account and endpoint); refuses an untrusted endpoint first. */
export function accountClient(loc: BlobLocation, env: NodeJS.ProcessEnv = process.env): AccountClient {
  assertTrustedEndpoint(loc, env);
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
  const defaultCredential = azureCredential();
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
