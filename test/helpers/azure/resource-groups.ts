/**
 * Microsoft.Resources for the local ARM endpoint: resource groups (list with a tag filter, HEAD, GET, PUT,
 * and DELETE as a long-running operation that takes the group's resources with it), and the resources a
 * group holds (`GET /resourcegroups/{name}/resources`, 404 ResourceGroupNotFound for no such group). As in
 * Azure, deleting a group deletes every resource in it, whoever made it: what the list shows is what goes.
 */
import { armError, notFound } from './arm-protocol';
import type { Operations, Send } from './arm-protocol';

export interface ResourceGroup {
  name: string;
  location: string;
  tags: Record<string, string>;
}

export class ResourceGroups {
  /** By lower-cased name: ARM's names are case-insensitive. */
  readonly groups = new Map<string, ResourceGroup>();

  constructor(
    private readonly opts: { subscriptionId: string; location: string },
    private readonly operations: Operations,
    /** Deletes what the group holds (ARM deletes contained resources with the group). */
    private readonly deleteContents: (groupKey: string) => void,
    /** What the group holds, as generic resources (id, name, type, location, tags). */
    private readonly listContents: (groupKey: string) => Record<string, unknown>[] = () => [],
  ) {}

  has(name: string): boolean {
    return this.groups.has(name.toLowerCase());
  }

  /** Makes the group exist (untagged, in the endpoint's location), as a test's precondition. */
  ensure(name: string): void {
    this.groups.set(name.toLowerCase(), { name, location: this.opts.location, tags: {} });
  }

  /** Serves /resourcegroups and /resourcegroups/{name}; false when `rest` is neither. */
  route(method: string, rest: string, url: URL, json: Record<string, unknown>, send: Send): boolean {
    if (/^\/resourcegroups$/i.test(rest) && method === 'GET') {
      const tag = /tagName eq '([^']+)'/i.exec(url.searchParams.get('$filter') ?? '')?.[1];
      const groups = [...this.groups.values()].filter((g) => !tag || tag in g.tags);
      send(200, { value: groups.map((g) => this.json(g)) });
      return true;
    }
    const contents = /^\/resourcegroups\/([^/]+)\/resources$/i.exec(rest);
    if (contents && method === 'GET') {
      const key = contents[1]!.toLowerCase();
      if (!this.groups.has(key)) {
        send(404, armError('ResourceGroupNotFound', `Resource group '${contents[1]}' could not be found.`));
      } else send(200, { value: this.listContents(key) });
      return true;
    }
    const m = /^\/resourcegroups\/([^/]+)$/i.exec(rest);
    if (!m) return false;
    this.resourceGroup(method, m[1]!, json, send);
    return true;
  }

  private resourceGroup(method: string, name: string, json: Record<string, unknown>, send: Send): void {
    const key = name.toLowerCase();
    const existing = this.groups.get(key);
    if (method === 'HEAD') return send(existing ? 204 : 404);
    if (method === 'GET')
      return existing ? send(200, this.json(existing)) : send(404, notFound('resourceGroups', name));
    if (method === 'PUT') {
      const group = {
        name,
        location: (json.location as string | undefined) ?? this.opts.location,
        tags: (json.tags as Record<string, string>) ?? {},
      };
      this.groups.set(key, group);
      return send(existing ? 200 : 201, this.json(group));
    }
    if (method === 'DELETE') {
      if (!existing) return send(204);
      // ARM deletes contained resources too; the target always deletes its cluster first.
      this.deleteContents(key);
      this.groups.delete(key);
      const op = this.operations.start(() => Promise.resolve());
      return send(202, undefined, this.operations.headers(op));
    }
    send(405, armError('MethodNotAllowed', `${method} is not supported on resource groups`));
  }

  private json(g: ResourceGroup) {
    return {
      id: `/subscriptions/${this.opts.subscriptionId}/resourceGroups/${g.name}`,
      name: g.name,
      type: 'Microsoft.Resources/resourceGroups',
      location: g.location,
      tags: g.tags,
      properties: { provisioningState: 'Succeeded' },
    };
  }
}
