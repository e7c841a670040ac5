/**
 * Where a batch job's inputs, outputs or model live when they are in Azure Blob Storage:
 *
 *   az://<account>/<container>/<prefix>
 *   https://<account>.blob.core.windows.net/<container>/<prefix>
 *   http(s)://<host:port>/<account>/<container>/<prefix>      (path-style: Azurite, private endpoints)
 *
 * Anything else is a file path. The location never carries a secret: a SAS in the URL would travel
 * through the workflow's history, so it is refused with the way to pass it instead
 * (AZURE_STORAGE_SAS_TOKEN on the workers). Workflow-safe: pure string work.
 */

export interface BlobLocation {
  account: string;
  container: string;
  /** The blob name or name prefix inside the container, without a leading '/'; may be ''. */
  prefix: string;
  /** The blob service endpoint when the location named one (an https/http URL), without a trailing '/'. */
  endpoint?: string;
}

const ACCOUNT = /^[a-z0-9]{3,24}$/;
const CONTAINER = /^(\$root|[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9])$/;

/** Thrown when a string looks like a blob location but cannot be one; the message says how to write it. */
export class BlobLocationError extends Error {
  readonly location: string;
  constructor(location: string, problem: string) {
    super(
      `Invalid blob location ${location}: ${problem}. Write it as az://<account>/<container>/<prefix> ` +
        'or https://<account>.blob.core.windows.net/<container>/<prefix>.',
    );
    this.name = 'BlobLocationError';
    this.location = location;
  }
}

/** True for az:// and http(s):// locations (which must then parse as blob locations). */
export function isBlobLocation(s: string): boolean {
  return /^(az|https?):\/\//i.test(s);
}

/** Parses a blob location; throws BlobLocationError saying what is wrong. */
export function parseBlobLocation(s: string): BlobLocation {
  const scheme = /^(az|https?):\/\//i.exec(s)?.[1]?.toLowerCase();
  if (!scheme) throw new BlobLocationError(s, 'it is not an az:// or https:// URL');
  let url: URL;
  try {
    // az://<account>/…: the account is read as written (a URL's host would be lowercased).
    url = new URL(scheme === 'az' ? `https://az.invalid/${s.slice('az://'.length)}` : s);
  } catch {
    throw new BlobLocationError(s, 'it is not a URL');
  }
  if (url.search) {
    const secret = url.searchParams.has('sig');
    throw new BlobLocationError(
      s,
      secret
        ? 'it carries a SAS token, which would be stored in the workflow history; set AZURE_STORAGE_SAS_TOKEN on the workers instead and leave it out of the URL'
        : 'it has a query string',
    );
  }
  const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
  let account: string;
  let endpoint: string | undefined;
  if (scheme === 'az') {
    account = segments.shift() ?? '';
  } else {
    const virtualHost = /^([a-z0-9]+)\.blob\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$/i.exec(
      url.hostname,
    );
    if (virtualHost) {
      account = virtualHost[1]!.toLowerCase();
      endpoint = `${url.protocol}//${url.host}`;
    } else {
      account = segments.shift() ?? '';
      endpoint = `${url.protocol}//${url.host}/${account}`;
    }
  }
  const container = segments.shift() ?? '';
  if (!ACCOUNT.test(account)) throw new BlobLocationError(s, `"${account}" is not a storage account name`);
  if (!CONTAINER.test(container)) {
    throw new BlobLocationError(
      s,
      container ? `"${container}" is not a container name (3-63 lowercase letters, digits, '-')` : 'no container',
    );
  }
  return { account, container, prefix: segments.join('/'), ...(endpoint ? { endpoint } : {}) };
}

/** The location written back, in the form it was given (az:// unless it named an endpoint). */
export function formatBlobLocation(loc: BlobLocation): string {
  // Only what would change the URL's meaning is escaped, so template fields ({date}) stay readable.
  const name = loc.prefix ? `/${loc.prefix.replace(/[%?#]/g, encodeURIComponent)}` : '';
  return loc.endpoint ? `${loc.endpoint}/${loc.container}${name}` : `az://${loc.account}/${loc.container}${name}`;
}

/** The location of `name` under `loc`'s prefix, as a directory (`<prefix>/<name>`). */
export function blobChild(loc: BlobLocation, ...names: string[]): BlobLocation {
  const base = loc.prefix.replace(/\/+$/, '');
  return { ...loc, prefix: [base, ...names].filter(Boolean).join('/') };
}

/** `loc`'s prefix as a directory: with one trailing '/' (or '' for a whole container). */
export function directoryPrefix(loc: BlobLocation): string {
  const base = loc.prefix.replace(/\/+$/, '');
  return base ? `${base}/` : '';
}

/** The canonical string of a location given by the user: a file path is left to the caller. */
export function normaliseBlobLocation(s: string): string {
  return formatBlobLocation(parseBlobLocation(s));
}
