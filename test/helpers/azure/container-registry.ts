/**
 * Microsoft.ContainerRegistry for the local ARM endpoint: ACR Tasks as the aks target uses them (the
 * build source upload URL, scheduleRun, runs with ACR's filter, run log SAS URLs) and a builder that reads
 * the uploaded context as a Docker builder would: the Dockerfile must be there, and so must every file it
 * COPYs; a Python image's RUN steps run (kubernetes/image-filesystem.ts), and one that fails fails the run
 * with its output in the run's log; the image gets the context's digest.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import * as tar from 'tar-stream';

import { assembleImage } from '../kubernetes/image-filesystem';
import { armError, notFound } from './arm-protocol';
import type { ArmFaults, Send } from './arm-protocol';
import type { BlobStorage } from './blob-storage';

export interface ImageRecord {
  repository: string;
  tag: string;
  digest: string;
  /** The build context (a gzipped tar) the image was built from. */
  context: Buffer;
  /** When it was pushed (ms since the epoch). */
  pushedAt: number;
}

export class ContainerRegistries {
  /** Pushed images by `${registry}/${repository}:${tag}` (registry lower-cased). */
  readonly images = new Map<string, ImageRecord>();
  private readonly runs = new Map<string, Record<string, unknown>>();
  private runCounter = 0;

  constructor(
    private readonly opts: { subscriptionId: string; registries?: string[] },
    private readonly faults: ArmFaults,
    private readonly blobs: BlobStorage,
  ) {}

  /** Serves the routes under a resource group; false when `tail` is not a registry's. */
  route(method: string, group: string, tail: string, url: URL, json: Record<string, unknown>, send: Send): boolean {
    const m = /^\/providers\/Microsoft\.ContainerRegistry\/registries\/([^/]+)(\/.*)?$/i.exec(tail);
    if (!m) return false;
    const registry = m[1]!;
    if (!(this.opts.registries ?? []).some((r) => r.toLowerCase() === `${group}/${registry}`.toLowerCase())) {
      send(404, notFound('registries', registry));
      return true;
    }
    this.registry(method, group, registry, m[2] ?? '', url, json, send);
    return true;
  }

  private registry(
    method: string,
    group: string,
    registry: string,
    tail: string,
    url: URL,
    json: Record<string, unknown>,
    send: Send,
  ): void {
    const base = `/subscriptions/${this.opts.subscriptionId}/resourceGroups/${group}/providers/Microsoft.ContainerRegistry/registries/${registry}`;
    if (method === 'POST' && tail === '/listBuildSourceUploadUrl') {
      const relativePath = `source/${new Date().toISOString().slice(0, 10)}/${crypto.randomUUID()}.tar.gz`;
      // ACR's upload URL: a SAS for that one blob, to create or write it, valid for an hour.
      const expired = this.faults.expiredUploadSas;
      let ttlMs = 3_600_000;
      if (expired && expired.count > 0) {
        expired.count--;
        ttlMs = -60_000;
      }
      return send(200, { uploadUrl: this.blobs.sasUrl(relativePath, 'cw', ttlMs), relativePath });
    }
    if (method === 'POST' && tail === '/scheduleRun') {
      const runId = `ca${++this.runCounter}`;
      const run: Record<string, unknown> = {
        id: `${base}/runs/${runId}`,
        name: runId,
        type: 'Microsoft.ContainerRegistry/registries/runs',
        properties: { runId, status: 'Queued', runType: 'QuickRun', createTime: new Date().toISOString() },
      };
      this.runs.set(runId, run);
      // The build itself: the uploaded context must hold the Dockerfile; the image gets the context's digest.
      setTimeout(() => void this.build(registry, runId, json), 300);
      return send(200, run);
    }
    let m: RegExpExecArray | null;
    if (method === 'GET' && tail === '/runs') {
      const filter = url.searchParams.get('$filter') ?? '';
      const values = [...this.runs.values()].filter((r) => runMatches(r, filter));
      return send(200, { value: values });
    }
    if ((m = /^\/runs\/([^/]+)$/.exec(tail)) && method === 'GET') {
      const run = this.runs.get(m[1]!);
      return run ? send(200, run) : send(404, notFound('runs', m[1]!));
    }
    if ((m = /^\/runs\/([^/]+)\/listLogSasUrl$/.exec(tail)) && method === 'POST') {
      if (!this.runs.has(m[1]!)) return send(404, notFound('runs', m[1]!));
      return send(200, { logLink: this.blobs.sasUrl(`logs/${m[1]}.log`, 'r') });
    }
    send(404, armError('NotFound', `No route for ${method} ${tail} on registry ${registry}`));
  }

  private async build(registry: string, runId: string, request: Record<string, unknown>): Promise<void> {
    const run = this.runs.get(runId)!;
    const props = run.properties as Record<string, unknown>;
    const log: string[] = [`2026/01/01 00:00:00 Downloading source code...`];
    const finish = (status: string, outputImages: unknown[] = []) => {
      props.status = status;
      props.finishTime = new Date().toISOString();
      props.outputImages = outputImages;
      this.blobs.set(`logs/${runId}.log`, Buffer.from(log.join('\n') + '\n'), 'text/plain; charset=utf-8');
    };
    const source = this.blobs.get(String(request.sourceLocation));
    if (!source) {
      log.push(`failed to download context: ${String(request.sourceLocation)} not found`);
      return finish('Failed');
    }
    let files: Map<string, Buffer>;
    try {
      files = await readTar(zlib.gunzipSync(source));
    } catch (err) {
      log.push(`failed to read the build context: ${err instanceof Error ? err.message : String(err)}`);
      return finish('Failed');
    }
    const dockerfile = (request.dockerFilePath as string | undefined) ?? 'Dockerfile';
    log.push(`Sending build context (${source.length} bytes) to the builder`);
    if (!files.has(dockerfile)) {
      log.push(`unable to prepare context: ${dockerfile} not found in the build context`);
      return finish('Failed');
    }
    for (const line of files.get(dockerfile)!.toString('utf8').split('\n')) {
      const copy = /^COPY\s+(?!--from)(\S+)\s+/.exec(line);
      if (copy && copy[1] !== '.' && ![...files.keys()].some((f) => f === copy[1] || f.startsWith(`${copy[1]}/`))) {
        log.push(`COPY failed: file not found in build context: ${copy[1]}`);
        return finish('Failed');
      }
      if (line.trim()) log.push(`Step: ${line.trim()}`);
    }
    if (this.faults.failBuildsWith) {
      log.push(this.faults.failBuildsWith);
      return finish('Failed');
    }
    if (/^FROM\s+python:/m.test(files.get(dockerfile)!.toString('utf8'))) {
      // A Python image's RUN steps (the venv, pip install) run as ACR runs them, so a step that fails (an
      // environment pip cannot resolve) fails the run with its output in the log. The kubelet stand-in
      // builds the same image from the same cached layers when a pod pulls it.
      props.status = 'Running';
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-acr-build-'));
      try {
        await assembleImage(files, path.join(dir, 'image'));
      } catch (err) {
        log.push(...(err instanceof Error ? err.message : String(err)).split('\n'));
        return finish('Failed');
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    }
    const digest = `sha256:${crypto.createHash('sha256').update(source).digest('hex')}`;
    const images = ((request.imageNames as string[]) ?? []).map((ref) => {
      const [repository, tag] = ref.split(':') as [string, string];
      this.images.set(`${registry.toLowerCase()}/${ref}`, {
        repository,
        tag,
        digest,
        context: source,
        pushedAt: Date.now(),
      });
      return { registry: `${registry.toLowerCase()}.azurecr.io`, repository, tag, digest };
    });
    log.push(`Successfully pushed ${images.length} image(s)`);
    finish('Succeeded', images);
  }
}

/** The two clauses of ACR's run filter that the target uses: Status and OutputImageManifests. */
function runMatches(run: Record<string, unknown>, filter: string): boolean {
  const props = run.properties as Record<string, unknown>;
  const status = /status eq '([^']+)'/i.exec(filter)?.[1];
  const image = /OutputImageManifests eq '([^']+)'/i.exec(filter)?.[1];
  const images = ((props.outputImages as { repository: string; tag: string }[]) ?? []).map(
    (i) => `${i.repository}:${i.tag}`,
  );
  return (!status || status === props.status) && (!image || images.includes(image));
}

/** One entry of a tar archive, as tar-stream's extract reads it. */
export interface TarEntry {
  header: tar.Header;
  data: Buffer;
}

/** Every entry of a tar archive, in order. */
export async function tarEntries(archive: Buffer): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  extract.end(archive);
  await reading;
  return entries;
}

/**
 * The regular files of a tar archive (what the registry's builder sees), with each file's mode from its
 * header (COPY keeps it in the image); refuses an empty or unreadable one.
 */
export async function readTar(archive: Buffer): Promise<Map<string, Buffer> & { modes: Map<string, number> }> {
  const files = Object.assign(new Map<string, Buffer>(), { modes: new Map<string, number>() });
  for (const { header, data } of await tarEntries(archive)) {
    if (header.type !== 'file') continue;
    const name = header.name.replace(/^\.\//, '');
    files.set(name, data);
    files.modes.set(name, (header.mode ?? 0o644) & 0o7777);
  }
  if (files.size === 0) throw new Error('empty or unreadable tar archive');
  return files;
}
