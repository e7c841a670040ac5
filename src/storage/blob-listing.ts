/**
 * Lists a blob prefix as a batch job's inputs, streaming: one page of names at a time (listBlobsFlat
 * pages of up to 5,000), so millions of blobs never sit in memory. Blob Storage lists names in
 * lexicographic order, the stable order the shards take. Like a directory walk, a name with a segment
 * starting with '.' is skipped, and so is the job's own output prefix when it lies inside the input.
 */
import { InvalidInputError } from '../errors';
import { FailureType } from '../shared/failure-types';
import { containerClient, storageCall } from './blob-client';
import { directoryPrefix, formatBlobLocation } from './blob-location';
import type { BlobLocation } from './blob-location';

const PAGE_SIZE = 5000;

/** Every blob under `loc`'s prefix (as a directory), as a location string, in name order. */
export async function* listBlobInputs(loc: BlobLocation, exclude?: BlobLocation): AsyncGenerator<string> {
  const prefix = directoryPrefix(loc);
  const skip =
    exclude && exclude.account === loc.account && exclude.container === loc.container ? directoryPrefix(exclude) : '';
  const pages = containerClient(loc).listBlobsFlat({ prefix }).byPage({ maxPageSize: PAGE_SIZE });
  let any = false;
  for (;;) {
    const page = await storageCall('list the inputs in', loc, () => pages.next());
    if (page.done) break;
    for (const blob of page.value.segment.blobItems) {
      any = true;
      if (skip && blob.name.startsWith(skip)) continue;
      if (
        blob.name
          .slice(prefix.length)
          .split('/')
          .some((s) => s.startsWith('.') || s === '')
      )
        continue;
      yield formatBlobLocation({ ...loc, prefix: blob.name });
    }
  }
  if (!any) {
    throw new InvalidInputError(
      `No blobs under ${formatBlobLocation(loc)}: nothing to score. Check the prefix (it is listed as a directory: ${prefix || '(whole container)'}).`,
      FailureType.EmptyInput,
    );
  }
}
