/**
 * A scoring script's model given as a blob prefix (`--model az://<account>/<container>/<prefix>`): every
 * blob under the prefix (listed as a directory) is the model folder, or the one blob the prefix names when
 * nothing is under it. The same trust rules as a batch job's blob model (./blob-client.ts): a credential
 * only for the account the operator configured and an endpoint that may receive it; on top, because a
 * folder's names become paths on the worker:
 *  - every name is checked before a byte is downloaded: no empty, '.' or '..' segment, no backslash, no
 *    control character, a segment at most 255 bytes, no name both a file and a folder;
 *  - at most MODEL_MAX_BLOBS blobs and INFERCTL_MAX_MODEL_BYTES bytes in all (default 32 GiB), from the
 *    listing, before a byte is downloaded; each download must match its listed ETag and size.
 * The copy lands in `<blob cache>/<sha256 of the location>/<sha256 of the listing>/<name>`, made under a
 * temporary name and renamed into place (./blob-cache.ts), so a changed blob means a new copy and a half-made one
 * is never used.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { InvalidInputError } from '../errors';
import { fileExists } from '../file-exists';
import { FailureType } from '../shared/failure-types';
import { blockBlob, containerClient, statusOf, storageCall } from './blob-client';
import { cachePath, placeOnce } from './blob-cache';
import { directoryPrefix, formatBlobLocation, parseBlobLocation } from './blob-location';
import type { BlobLocation } from './blob-location';

export const MODEL_MAX_BLOBS = 10_000;
const DEFAULT_MAX_MODEL_BYTES = 32 * 1024 ** 3;
const MAX_SEGMENT_BYTES = 255;

/** One blob of a model, as listed: its name relative to the prefix ('' for a model that is one blob). */
export interface ModelBlob {
  name: string;
  relative: string;
  size: number;
  etag: string;
}

export interface ModelBlobListing {
  location: string;
  blobs: ModelBlob[];
  bytes: number;
  /** sha256 over every relative name, size and ETag: what the copy is keyed by. */
  digest: string;
}

/** The largest model, in bytes, this worker downloads: INFERCTL_MAX_MODEL_BYTES, else 32 GiB. */
export function maxModelBytes(env: NodeJS.ProcessEnv = process.env): number {
  const given = Number(env.INFERCTL_MAX_MODEL_BYTES);
  return Number.isFinite(given) && given > 0 ? given : DEFAULT_MAX_MODEL_BYTES;
}

/** Why `relative` (a blob name under the model's prefix) cannot be a path in the model folder, or undefined. */
export function modelBlobNameProblem(relative: string): string | undefined {
  const segments = relative.split('/');
  for (const segment of segments) {
    if (segment === '') return 'an empty path segment (a leading, trailing or doubled /)';
    if (segment === '.' || segment === '..') return `a "${segment}" segment`;
    if (segment.includes('\\')) return 'a backslash';
    if (/[\u0000-\u001f\u007f]/.test(segment)) return 'a control character';
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `a segment over ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/** Lists the model's blobs and checks their names, count and size; throws InvalidInputError naming every problem. */
export async function listModelBlobs(
  location: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ModelBlobListing> {
  const loc = parseBlobLocation(location);
  const prefix = directoryPrefix(loc);
  const blobs: ModelBlob[] = [];
  const pages = containerClient(loc, env).listBlobsFlat({ prefix }).byPage({ maxPageSize: 5000 });
  for (;;) {
    const page = await storageCall('list the model in', loc, () => pages.next());
    if (page.done) break;
    for (const blob of page.value.segment.blobItems) {
      blobs.push({
        name: blob.name,
        relative: blob.name.slice(prefix.length),
        size: blob.properties.contentLength ?? 0,
        etag: blob.properties.etag ?? '',
      });
      if (blobs.length > MODEL_MAX_BLOBS) {
        throw new InvalidInputError(
          `The model ${location} holds more than ${MODEL_MAX_BLOBS} blobs; a model folder must be smaller. Point --model at the model's own folder.`,
          FailureType.InvalidModel,
        );
      }
    }
  }
  if (blobs.length === 0) blobs.push(await singleBlob(loc, location));
  const problems = namingProblems(blobs);
  const bytes = blobs.reduce((sum, b) => sum + b.size, 0);
  const limit = maxModelBytes(env);
  if (bytes > limit) {
    problems.push(
      `it is ${bytes} bytes in ${blobs.length} blob(s), over this worker's limit of ${limit} (INFERCTL_MAX_MODEL_BYTES)`,
    );
  }
  if (problems.length > 0) {
    throw new InvalidInputError(
      `The model ${location} cannot be copied to the worker: ${problems.join('; ')}. Rename or remove those blobs, or point --model at another prefix.`,
      FailureType.InvalidModel,
    );
  }
  const hash = crypto.createHash('sha256');
  for (const b of blobs) hash.update(`${b.relative}\0${b.size}\0${b.etag}\n`);
  return { location, blobs, bytes, digest: `sha256:${hash.digest('hex')}` };
}

/** The one blob the prefix names when nothing is under it as a folder. */
async function singleBlob(loc: BlobLocation, location: string): Promise<ModelBlob> {
  const missing = () =>
    new InvalidInputError(
      `No model at ${location}: no blob of that name and none under it (listed as a folder: ${directoryPrefix(loc) || '(whole container)'}). Check the prefix.`,
      FailureType.ModelNotFound,
    );
  if (!loc.prefix || loc.prefix.endsWith('/')) throw missing();
  try {
    const props = await storageCall('read the model', loc, () => blockBlob(loc).getProperties());
    return { name: loc.prefix, relative: '', size: props.contentLength ?? 0, etag: props.etag ?? '' };
  } catch (err) {
    if (statusOf(err) === 404) throw missing();
    throw err;
  }
}

function namingProblems(blobs: ModelBlob[]): string[] {
  const problems: string[] = [];
  const files = new Set(blobs.map((b) => b.relative));
  for (const b of blobs) {
    if (b.relative === '') continue;
    const problem = modelBlobNameProblem(b.relative);
    if (problem) problems.push(`blob "${b.name}" has ${problem}`);
    const segments = b.relative.split('/');
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/');
      if (files.has(folder)) problems.push(`"${folder}" is both a blob and a folder of blobs`);
    }
  }
  return [...new Set(problems)].slice(0, 10);
}

/**
 * The model's local copy (a folder, or a file for a one-blob model), downloaded once per listing; its
 * entry is named as the location's last segment, so the model's name under azureml-models/ is the same.
 */
export async function downloadModelBlobs(
  location: string,
  opts: { signal?: AbortSignal; progress?: (line: string) => void; listing?: ModelBlobListing } = {},
): Promise<string> {
  const listing = opts.listing ?? (await listModelBlobs(location));
  const loc = parseBlobLocation(location);
  const entry = path.posix.basename(location);
  if (!entry || entry === '.' || entry === '..') {
    throw new InvalidInputError(
      `The model ${location} has no name to lay it out under; name a prefix.`,
      FailureType.InvalidModel,
    );
  }
  const dir = cachePath(formatBlobLocation(loc), listing.digest);
  const copy = path.join(dir, entry);
  const complete = () => fileExists(path.join(dir, '.complete'));
  if (await complete()) return copy;
  opts.progress?.(`downloading the model: ${listing.blobs.length} blob(s), ${listing.bytes} bytes`);
  // Another worker or activity that made it first had the same listing: its copy is kept.
  await placeOnce(dir, (tmp) => downloadListing(listing, loc, entry, tmp, opts.signal), complete);
  return copy;
}

/** Every blob of `listing` under `<tmp>/<entry>`, each checked against its listed ETag and size; then `.complete`. */
async function downloadListing(
  listing: ModelBlobListing,
  loc: BlobLocation,
  entry: string,
  tmp: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (const blob of listing.blobs) {
    const target = blob.relative ? path.join(tmp, entry, ...blob.relative.split('/')) : path.join(tmp, entry);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const where = { ...loc, prefix: blob.name };
    await storageCall('download the model blob', where, () =>
      blockBlob(loc, blob.name).downloadToFile(target, 0, undefined, {
        abortSignal: signal,
        conditions: blob.etag ? { ifMatch: blob.etag } : {},
      }),
    );
    const size = (await fs.stat(target)).size;
    // A blob changed since it was listed is caught by its ETag (412, retried with a new listing); this is the rest.
    if (size !== blob.size)
      throw new Error(`${formatBlobLocation(where)} downloaded ${size} bytes, listed ${blob.size}`);
  }
  await fs.writeFile(path.join(tmp, '.complete'), listing.digest);
}
