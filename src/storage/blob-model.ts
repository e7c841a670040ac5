/**
 * A job's model (and labels file) may be a blob: each worker downloads it once into its cache,
 * `<inferctl home>/blob-cache/<sha256 of the URL>/<etag>/<name>` (a temp name renamed into place by
 * ./blob-cache.ts), and scores from the local copy; a changed blob (a new ETag) is downloaded again. File
 * paths pass through. A script's model folder (./blob-tree.ts) lists its prefix first and is keyed by the
 * listing; a one-blob ONNX model reads only the blob's properties, so the two keep their own layouts.
 */
import path from 'node:path';

import { fileExists } from '../file-exists';
import { blockBlob, storageCall } from './blob-client';
import { cachePath, placeOnce } from './blob-cache';
import { isBlobLocation, parseBlobLocation } from './blob-location';

/** The local path of `location`: itself for a file, the cached download for a blob. */
export async function localCopy(location: string, what: string, abortSignal?: AbortSignal): Promise<string> {
  if (!isBlobLocation(location)) return location;
  const loc = parseBlobLocation(location);
  const blob = blockBlob(loc);
  const props = await storageCall(`read the ${what}`, loc, () => blob.getProperties({ abortSignal }));
  const tag = (props.etag ?? 'none').replace(/[^A-Za-z0-9]/g, '');
  const file = path.join(cachePath(location), tag, path.posix.basename(loc.prefix) || 'blob');
  if (await fileExists(file)) return file;
  await placeOnce(file, (tmp) =>
    storageCall(`download the ${what}`, loc, () =>
      blob.downloadToFile(tmp, 0, undefined, { abortSignal, conditions: { ifMatch: props.etag } }),
    ).then(() => undefined),
  );
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
