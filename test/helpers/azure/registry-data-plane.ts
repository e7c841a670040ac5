/**
 * The data plane of the test registries (what `https://<registry>.azurecr.io` serves), for the calls the
 * janitor makes, served here under `/_acr/<registry>`. As ACR enforces it:
 *
 * - every call carries a registry access token (401 with ACR's `WWW-Authenticate: Bearer realm=…,service=…,
 *   scope=…` challenge otherwise), got in two steps: `POST /oauth2/exchange` trades an Azure AD access
 *   token this endpoint issued (grant_type=access_token, service=<registry>.azurecr.io) for a refresh
 *   token; `POST /oauth2/token` trades that for an access token for the scopes asked
 *   (`repository:<name>:metadata_read`, `…:delete`); a token covers only its scopes;
 * - `GET /acr/v1/<repository>/_tags` lists the tags (name, digest, createdTime, lastUpdateTime), newest
 *   first with `orderby=timedesc`, `n` per page and a `Link: <…>; rel="next"` header for the next page;
 *   404 NAME_UNKNOWN for a repository with no tags;
 * - `GET /acr/v1/<repository>/_tags/<tag>`: the tag's attributes, 404 TAG_UNKNOWN when there is none;
 * - `DELETE /v2/<repository>/manifests/<digest>` deletes the image and every tag naming it: 202; 404
 *   MANIFEST_UNKNOWN when there is none; a tag instead of a digest is 400 UNSUPPORTED.
 */
import crypto from 'node:crypto';
import type { ServerResponse } from 'node:http';

import type { ImageRecord } from './container-registry';

export class RegistryDataPlane {
  private readonly refreshTokens = new Map<string, string>(); // token → registry
  private readonly accessTokens = new Map<string, { registry: string; scopes: Set<string> }>();

  constructor(
    private readonly images: Map<string, ImageRecord>,
    private readonly aadTokenIsValid: (token: string) => boolean,
  ) {}

  /** Serves `/_acr/<registry>/…`. */
  handle(method: string, url: URL, body: Buffer, authorization: string | undefined, res: ServerResponse): void {
    const m = /^\/_acr\/([a-z0-9]+)(\/.*)$/.exec(url.pathname);
    const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
      res.end(json === undefined ? '' : JSON.stringify(json));
    };
    if (!m) return send(404, errors('NAME_INVALID', 'no such registry'));
    const [, registry, path] = m as unknown as [string, string, string];
    const service = `${registry}.azurecr.io`;
    if (method === 'POST' && path === '/oauth2/exchange') {
      const form = new URLSearchParams(body.toString('utf8'));
      if (form.get('grant_type') !== 'access_token' || form.get('service') !== service) {
        return send(400, { errors: [{ code: 'UNSUPPORTED', message: 'grant_type and service are required' }] });
      }
      if (!this.aadTokenIsValid(form.get('access_token') ?? ''))
        return send(401, errors('UNAUTHORIZED', 'invalid AAD token'));
      const refresh = crypto.randomBytes(24).toString('base64url');
      this.refreshTokens.set(refresh, registry);
      return send(200, { refresh_token: refresh });
    }
    if (method === 'POST' && path === '/oauth2/token') {
      const form = new URLSearchParams(body.toString('utf8'));
      if (this.refreshTokens.get(form.get('refresh_token') ?? '') !== registry || form.get('service') !== service) {
        return send(401, errors('UNAUTHORIZED', 'invalid refresh token'));
      }
      const scopes = new Set((form.get('scope') ?? '').split(' ').filter(Boolean));
      const access = crypto.randomBytes(24).toString('base64url');
      this.accessTokens.set(access, { registry, scopes });
      return send(200, { access_token: access });
    }

    const authorized = (scope: string) => {
      const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1] ?? '';
      const grant = this.accessTokens.get(token);
      if (grant?.registry === registry && grant.scopes.has(scope)) return true;
      send(401, errors('UNAUTHORIZED', 'authentication required'), {
        'www-authenticate': `Bearer realm="https://${service}/oauth2/token",service="${service}",scope="${scope}"`,
      });
      return false;
    };
    let r: RegExpExecArray | null;
    if (method === 'GET' && (r = /^\/acr\/v1\/(.+)\/_tags$/.exec(path))) {
      const repository = r[1]!;
      if (!authorized(`repository:${repository}:metadata_read`)) return;
      this.listTags(registry, repository, url, send);
      return;
    }
    if (method === 'GET' && (r = /^\/acr\/v1\/(.+)\/_tags\/([^/]+)$/.exec(path))) {
      const [repository, tag] = [r[1]!, r[2]!];
      if (!authorized(`repository:${repository}:metadata_read`)) return;
      const image = this.images.get(`${registry}/${repository}:${tag}`);
      if (!image) return send(404, errors('TAG_UNKNOWN', `the tag ${tag} does not exist`));
      return send(200, { registry: service, imageName: repository, tag: { name: tag, digest: image.digest } });
    }
    if (method === 'DELETE' && (r = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) {
      const [repository, reference] = [r[1]!, decodeURIComponent(r[2]!)];
      if (!authorized(`repository:${repository}:delete`)) return;
      if (!reference.startsWith('sha256:')) return send(400, errors('UNSUPPORTED', 'delete by digest only'));
      const keys = [...this.images].filter(
        ([k, i]) => k.startsWith(`${registry}/`) && i.repository === repository && i.digest === reference,
      );
      if (keys.length === 0) return send(404, errors('MANIFEST_UNKNOWN', `manifest ${reference} is not found`));
      for (const [k] of keys) this.images.delete(k);
      return send(202);
    }
    send(404, errors('NAME_UNKNOWN', `no route for ${method} ${path}`));
  }

  private listTags(
    registry: string,
    repository: string,
    url: URL,
    send: (s: number, j?: unknown, h?: Record<string, string>) => void,
  ) {
    const all = [...this.images]
      .filter(([k, i]) => k.startsWith(`${registry}/`) && i.repository === repository)
      .map(([, i]) => i)
      .sort((a, b) =>
        url.searchParams.get('orderby') === 'timedesc' ? b.pushedAt - a.pushedAt : a.tag.localeCompare(b.tag),
      );
    if (all.length === 0) return send(404, errors('NAME_UNKNOWN', `repository ${repository} is not found`));
    const n = Number(url.searchParams.get('n') ?? 100);
    const last = url.searchParams.get('last');
    const start = last ? all.findIndex((i) => i.tag === last) + 1 : 0;
    const page = all.slice(start, start + n);
    const next =
      start + n < all.length
        ? `</acr/v1/${repository}/_tags?last=${page.at(-1)!.tag}&n=${n}&orderby=${url.searchParams.get('orderby') ?? ''}>; rel="next"`
        : undefined;
    send(
      200,
      {
        registry: `${registry}.azurecr.io`,
        imageName: repository,
        tags: page.map((i) => ({
          name: i.tag,
          digest: i.digest,
          createdTime: new Date(i.pushedAt).toISOString(),
          lastUpdateTime: new Date(i.pushedAt).toISOString(),
          signed: false,
          changeableAttributes: { deleteEnabled: true, writeEnabled: true, readEnabled: true, listEnabled: true },
        })),
      },
      next ? { link: next } : {},
    );
  }
}

function errors(code: string, message: string) {
  return { errors: [{ code, message, detail: null }] };
}
