/**
 * The scoring images in the registry, through ACR's data plane (`https://<registry>.azurecr.io`): ARM has
 * no call that lists or deletes tags. Sign-in is ACR's token exchange: the process's Azure AD token (the
 * same DefaultAzureCredential) → `POST /oauth2/exchange` → a registry refresh token → `POST /oauth2/token`
 * → an access token for `repository:<name>:metadata_read` and `…:delete`. Then `GET /acr/v1/<name>/_tags`
 * (paged by its Link header), `GET /acr/v1/<name>/_tags/<tag>` and `DELETE /v2/<name>/manifests/<digest>`, which removes the image with
 * every tag naming it. The identity needs AcrDelete (or Contributor) on the registry to delete.
 */
import type { AksSettings } from './aks-config';
import { azureCredential } from '../../azure/credential';
import { AzureRefusedError } from './azure-errors';
import { FailureType } from '../../shared/failure-types';

export interface RegistryTag {
  repository: string;
  tag: string;
  digest: string;
  /** When it was pushed (ms since the epoch). */
  createdAt: number;
}

type RegistrySettings = Pick<AksSettings, 'registryName' | 'registryEndpoint'>;

function loginServer(settings: RegistrySettings): { base: string; service: string } {
  const service = `${settings.registryName.toLowerCase()}.azurecr.io`;
  return { base: settings.registryEndpoint ?? `https://${service}`, service };
}

async function form(
  url: string,
  fields: Record<string, string>,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
    signal,
  });
  const text = await res.text();
  if (!res.ok) throw refusal(res.status, `signing in to the registry (${new URL(url).pathname})`, text);
  return JSON.parse(text) as Record<string, string>;
}

/** A registry access token for `scopes`, by ACR's exchange of the Azure AD token. */
async function registryToken(settings: RegistrySettings, scopes: string[], signal?: AbortSignal): Promise<string> {
  const { base, service } = loginServer(settings);
  const aad = await azureCredential().getToken('https://management.azure.com/.default', { abortSignal: signal });
  if (!aad) throw new Error('no Azure AD token for the registry exchange');
  const { refresh_token } = await form(
    `${base}/oauth2/exchange`,
    { grant_type: 'access_token', service, access_token: aad.token },
    signal,
  );
  const { access_token } = await form(
    `${base}/oauth2/token`,
    { grant_type: 'refresh_token', service, scope: scopes.join(' '), refresh_token: refresh_token ?? '' },
    signal,
  );
  return access_token ?? '';
}

function refusal(status: number, doing: string, body: string): Error {
  const said = body.slice(0, 200);
  if (status === 401 || status === 403) {
    return new AzureRefusedError(
      `The registry refused while ${doing}: ${status} ${said}. The worker's identity needs AcrDelete (or ` +
        'Contributor) on the registry for the janitor to remove images.',
      FailureType.AzurePermissionDenied,
    );
  }
  return new Error(`The registry answered ${status} while ${doing}: ${said}`);
}

/** Every tag of `repository`, newest first; none when the repository does not exist. */
export async function listRegistryTags(
  settings: RegistrySettings,
  repository: string,
  signal?: AbortSignal,
): Promise<RegistryTag[]> {
  const { base } = loginServer(settings);
  const token = await registryToken(settings, [`repository:${repository}:metadata_read`], signal);
  const tags: RegistryTag[] = [];
  let next: string | undefined = `/acr/v1/${repository}/_tags?n=100&orderby=timedesc`;
  while (next) {
    const res = await fetch(`${base}${next}`, { headers: { authorization: `Bearer ${token}` }, signal });
    const text = await res.text();
    if (res.status === 404) return tags;
    if (!res.ok) throw refusal(res.status, `listing the tags of ${repository}`, text);
    const page = JSON.parse(text) as { tags?: { name: string; digest: string; createdTime: string }[] };
    for (const t of page.tags ?? []) {
      tags.push({ repository, tag: t.name, digest: t.digest, createdAt: Date.parse(t.createdTime) });
    }
    next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
  }
  return tags;
}

/** Whether `repository:tag` is in the registry (a run history saying it was pushed does not prove it still is). */
export async function registryTagExists(
  settings: RegistrySettings,
  repository: string,
  tag: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const { base } = loginServer(settings);
  const token = await registryToken(settings, [`repository:${repository}:metadata_read`], signal);
  const res = await fetch(`${base}/acr/v1/${repository}/_tags/${tag}`, {
    headers: { authorization: `Bearer ${token}` },
    signal,
  });
  const text = await res.text();
  if (res.status === 404) return false;
  if (!res.ok) throw refusal(res.status, `looking up ${repository}:${tag}`, text);
  return true;
}

/** Deletes the image `digest` of `repository` (and every tag naming it); false when it is already gone. */
export async function deleteRegistryImage(
  settings: RegistrySettings,
  repository: string,
  digest: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const { base } = loginServer(settings);
  const token = await registryToken(settings, [`repository:${repository}:delete`], signal);
  const res = await fetch(`${base}/v2/${repository}/manifests/${digest}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
    signal,
  });
  const text = await res.text();
  if (res.status === 404) return false;
  if (!res.ok) throw refusal(res.status, `deleting ${repository}@${digest}`, text);
  return true;
}
