/**
 * A job's model (and labels file) may be a blob: each worker downloads it once into its cache,
 * `<inferctl home>/blob-cache/<sha256 of the URL>/<etag>/<name>` (a temp name renamed into place), and
 * scores from the local copy; a changed blob (a new ETag) is downloaded again. File paths pass through.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { fileExists } from '../file-exists';
import { blobCacheDir } from '../paths';
import { blockBlob, storageCall } from './blob-client';
import { isBlobLocation, parseBlobLocation } from './blob-location';

/** The local path of `location`: itself for a file, the cached download for a blob. */
export async function localCopy(location: string, what: string, abortSignal?: AbortSignal): Promise<string> {
  if (!isBlobLocation(location)) return location;
  const loc = parseBlobLocation(location);
  const blob = blockBlob(loc);
  const props = await storageCall(`read the ${what}`, loc, () => blob.getProperties({ abortSignal }));
  const tag = (props.etag ?? 'none').replace(/[^A-Za-z0-9]/g, '');
  const dir = path.join(blobCacheDir(), crypto.createHash('sha256').update(location).digest('hex').slice(0, 32), tag);
  const file = path.join(dir, path.posix.basename(loc.prefix) || 'blob');
  if (await fileExists(file)) return file;
  await fs.mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    await storageCall(`download the ${what}`, loc, () =>
      blob.downloadToFile(tmp, 0, undefined, { abortSignal, conditions: { ifMatch: props.etag } }),
    );
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return file;
}

/** `given` with its model and labels as local paths (downloaded when they are blobs). */
export async function withLocalModel<T extends { modelPath: string; labelsPath?: string }>(
  given: T,
  abortSignal?: AbortSignal,
): Promise<T> {
  return {
    ...given,
    modelPath: await localCopy(given.modelPath, 'model', abortSignal),
    ...(given.labelsPath ? { labelsPath: await localCopy(given.labelsPath, 'labels file', abortSignal) } : {}),
  };
}
