/**
 * The parts of Azure Resource Manager's wire protocol every resource provider of the local ARM endpoint
 * shares: the JSON error shape, injectable faults, and long-running operations (an operation progresses on
 * Azure's clock whether or not anyone polls it; PUT answers with Azure-AsyncOperation, DELETE with Location
 * and Azure-AsyncOperation, as AKS does).
 */
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Answers an ARM call: status, JSON body, extra headers. */
export type Send = (status: number, json?: unknown, headers?: Record<string, string>) => void;

export interface ArmFaults {
  /** The next `count` ARM calls whose path contains `pathIncludes` answer 429 with Retry-After. */
  throttle?: { count: number; retryAfterSeconds: number; pathIncludes?: string };
  /** The next `count` ARM calls whose path contains `pathIncludes` answer 500. */
  serverErrors?: { count: number; pathIncludes?: string };
  /** Clusters created from now on never leave provisioningState "Updating". */
  stuckUpdating?: boolean;
  /** The next cluster delete operation ends Failed; the one after succeeds. */
  failNextDelete?: boolean;
  /**
   * listClusterUserCredential of these clusters answers 403 AuthorizationFailed, as Azure does when the
   * caller lacks "Azure Kubernetes Service Cluster User Role" on the cluster.
   */
  credentialsDenied?: string[];
  /** Image builds fail with this line in their log. */
  failBuildsWith?: string;
  /** The next `count` build source upload URLs carry a SAS that has already expired. */
  expiredUploadSas?: { count: number };
}

export function armError(code: string, message: string) {
  return { error: { code, message } };
}

export function notFound(type: string, name: string) {
  return armError('ResourceNotFound', `The Resource '${type}/${name}' was not found.`);
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface Operation {
  id: string;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  doneAt: number;
  error?: { code: string; message: string };
  complete?: () => Promise<void>;
  completing?: Promise<void>;
}

/**
 * ARM's long-running operations, served (as AKS serves them) under
 * /subscriptions/{id}/providers/Microsoft.ContainerService/locations/{location}/operations|operationresults.
 */
export class Operations {
  private readonly operations = new Map<string, Operation>();

  constructor(
    private readonly opts: { subscriptionId: string; location: string; operationMs?: number },
    private readonly baseUrl: () => string,
  ) {}

  /** An operation that runs `complete` once `after` ms (default: operationMs) have passed. */
  start(complete: () => Promise<void>, after?: number): Operation {
    const op: Operation = {
      id: crypto.randomUUID(),
      status: 'InProgress',
      doneAt: Date.now() + (after ?? this.opts.operationMs ?? 1000),
      complete,
    };
    this.operations.set(op.id, op);
    return op;
  }

  headers(op: Operation, withLocation = true): Record<string, string> {
    const base = `${this.baseUrl()}/subscriptions/${this.opts.subscriptionId}/providers/Microsoft.ContainerService/locations/${this.opts.location}`;
    return {
      'azure-asyncoperation': `${base}/operations/${op.id}?api-version=2017-08-31`,
      ...(withLocation ? { location: `${base}/operationresults/${op.id}?api-version=2017-08-31` } : {}),
    };
  }

  /** Completes every operation whose time has come. */
  async settleAll(): Promise<void> {
    await Promise.all([...this.operations.values()].map((op) => this.settle(op)));
  }

  /** Serves the operation routes under /subscriptions/{id}; false when `rest` is not one of them. */
  async route(rest: string, send: Send): Promise<boolean> {
    let m: RegExpExecArray | null;
    if ((m = /^\/providers\/Microsoft\.ContainerService\/locations\/[^/]+\/operations\/([^/]+)$/i.exec(rest))) {
      await this.status(m[1]!, send);
      return true;
    }
    if ((m = /^\/providers\/Microsoft\.ContainerService\/locations\/[^/]+\/operationresults\/([^/]+)$/i.exec(rest))) {
      await this.result(m[1]!, send);
      return true;
    }
    return false;
  }

  private async settle(op: Operation): Promise<void> {
    if (op.status !== 'InProgress' || Date.now() < op.doneAt) return;
    op.completing ??= (async () => {
      try {
        await op.complete?.();
        op.status = 'Succeeded';
      } catch (err) {
        op.status = 'Failed';
        op.error = {
          code: (err as { code?: string }).code ?? 'InternalOperationError',
          message: err instanceof Error ? err.message : String(err),
        };
      }
    })();
    await op.completing;
  }

  private async status(id: string, send: Send): Promise<void> {
    const op = this.operations.get(id);
    if (!op) return send(404, armError('OperationNotFound', `Operation ${id} not found.`));
    await this.settle(op);
    send(200, { id, name: id, status: op.status, ...(op.error ? { error: op.error } : {}) });
  }

  private async result(id: string, send: Send): Promise<void> {
    const op = this.operations.get(id);
    if (!op) return send(404, armError('OperationNotFound', `Operation ${id} not found.`));
    await this.settle(op);
    if (op.status === 'InProgress') return send(202, undefined, { location: this.headers(op).location! });
    if (op.status === 'Failed') return send(500, { error: op.error });
    send(204);
  }
}
