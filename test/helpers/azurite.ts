/**
 * Azurite (Microsoft's Azure Storage emulator, the `azurite` devDependency) for the blob-storage tests,
 * started like the dev server: a free port on loopback, a fresh temp workspace, killed (and its
 * workspace removed) after the file's tests. Strict mode (no --loose): Azurite refuses headers and
 * parameters it does not support, checks the API version, SharedKey signatures and SAS permissions and
 * expiry, conditional headers (If-None-Match: * on an existing blob is 409), block ids (same length per
 * blob), Put Block From URL sources (read through a SAS), and a missing container (404
 * ContainerNotFound).
 *
 *   const azurite = useAzurite();          // inside a describe
 *   azurite.env                            // AZURE_STORAGE_CONNECTION_STRING for workers
 *   azurite.url('inputs', 'day1')          // az://devstoreaccount1/inputs/day1
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before } from 'node:test';

import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';

import { freePort } from '../../src/temporal/dev-server';

/** Azurite's well-known development account (public, documented; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const AZURITE_BIN = path.resolve(__dirname, '..', '..', '..', 'node_modules', '.bin', 'azurite-blob');

export class Azurite {
  port = 0;
  private child?: ChildProcess;
  private workspace = '';
  private log = '';

  /** The path-style blob endpoint, http://127.0.0.1:<port>/devstoreaccount1. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}/${AZURITE_ACCOUNT}`;
  }

  get connectionString(): string {
    return (
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
      `BlobEndpoint=${this.endpoint};`
    );
  }

  /** What a worker needs to reach Azurite with the account key. */
  get env(): NodeJS.ProcessEnv {
    return { AZURE_STORAGE_CONNECTION_STRING: this.connectionString };
  }

  /** A client with the account key, for the test itself. */
  service(): BlobServiceClient {
    return BlobServiceClient.fromConnectionString(this.connectionString);
  }

  /** An account SAS (blob service; read, write, delete, list, add, create) valid for an hour. */
  sas(permissions = 'rwdlac'): string {
    return generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 60 * 60 * 1000),
        permissions: AccountSASPermissions.parse(permissions),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('b').toString(),
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
  }

  /**
   * A container SAS (service SAS: read, add, create, write, delete, list) valid for an hour. Azurite
   * reads a Put Block From URL source through a service SAS only (an account SAS there answers 500;
   * Azure itself takes either).
   */
  containerSas(container: string, permissions = 'racwdl'): string {
    return generateBlobSASQueryParameters(
      {
        containerName: container,
        expiresOn: new Date(Date.now() + 60 * 60 * 1000),
        permissions: ContainerSASPermissions.parse(permissions),
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
  }

  /** `az://devstoreaccount1/<container>/<prefix>` (the connection string maps the account to Azurite). */
  url(container: string, ...prefix: string[]): string {
    return [`az://${AZURITE_ACCOUNT}`, container, ...prefix].join('/');
  }

  /** The same location as an http URL on Azurite's own endpoint (for SAS-only workers). */
  httpUrl(container: string, ...prefix: string[]): string {
    return [this.endpoint, container, ...prefix].join('/');
  }

  async start(): Promise<void> {
    this.workspace = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-azurite-'));
    this.port = await freePort();
    const child = spawn(
      AZURITE_BIN,
      [
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(this.port),
        '--location',
        this.workspace,
        '--disableTelemetry',
        '--debug',
        path.join(this.workspace, 'debug.log'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!this.log.includes('successfully listens')) {
      if (child.exitCode !== null) throw new Error(`Azurite exited early:\n${this.log}`);
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`Azurite did not start in 60 s (killed):\n${this.log}`);
      }
      await delay(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    if (this.workspace) await fs.rm(this.workspace, { recursive: true, force: true });
  }

  /** Creates a container (idempotent). */
  async container(name: string): Promise<void> {
    await this.service().getContainerClient(name).createIfNotExists();
  }

  /** Uploads `body` as `<container>/<name>`. */
  async put(container: string, name: string, body: Buffer | string): Promise<void> {
    await this.service().getContainerClient(container).getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
  }

  /** The text of a blob, or undefined when it does not exist. */
  async text(container: string, name: string): Promise<string | undefined> {
    const blob = this.service().getContainerClient(container).getBlockBlobClient(name);
    if (!(await blob.exists())) return undefined;
    return (await blob.downloadToBuffer()).toString('utf8');
  }

  /** Every committed blob name under a prefix. */
  async names(container: string, prefix = ''): Promise<string[]> {
    const names: string[] = [];
    for await (const b of this.service().getContainerClient(container).listBlobsFlat({ prefix })) names.push(b.name);
    return names;
  }
}

/** An Azurite for the enclosing describe: started before its tests, killed after them. */
export function useAzurite(): Azurite {
  const azurite = new Azurite();
  before(() => azurite.start());
  after(() => azurite.stop());
  return azurite;
}
