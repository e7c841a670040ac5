/**
 * A batch job's outputs under a blob prefix P, written exactly once:
 *
 *   P/manifest/job.json                         the job token and counts (listing is idempotent per job)
 *   P/manifest/shard-000000.jsonl               one input per line, as a JSON string
 *   P/shards/shard-000000/attempt-3/…           one shard attempt's predictions.jsonl, errors.jsonl,
 *                                               raw.f32 and, last, done.json
 *   P/predictions.jsonl, P/errors.jsonl, P/raw.npy, P/summary.json
 *
 * A shard attempt stages its rows as blocks (ids unique to the attempt) and commits each blob once at
 * the end with If-None-Match: * (created once, never overwritten), then done.json likewise. An attempt
 * that lost its shard (its worker paused past the heartbeat timeout) can still finish its own blobs,
 * but never touch another attempt's: the workflow records which attempt's result Temporal accepted, and
 * the merge reads only that attempt's blobs. The final files are composed server-side: one Put Block
 * From URL per shard blob, then one Put Block List (If-None-Match: *), nothing downloaded.
 */
import crypto from 'node:crypto';

import type { BlockBlobClient } from '@azure/storage-blob';

import { StepFailedError } from '../errors';
import { FailureType } from '../shared/failure-types';
import type { ShardCheckpoint, ShardRecord } from '../shared/batch-types';
import {
  blockBlob,
  containerClient,
  copySource,
  explainStorageError,
  statusOf,
  storageCall,
  storageErrorCode,
} from './blob-client';
import { blobChild, directoryPrefix, formatBlobLocation, parseBlobLocation } from './blob-location';
import type { BlobLocation } from './blob-location';
import type { ManifestSink } from '../batch/input-listing';
import { parseShardManifest } from '../batch/input-listing';
import { npyHeader } from '../batch/npy';
import { SHARD_FILES, shardName } from '../batch/output-layout';
import type { ByteSink, ShardSinks } from '../batch/shard-scorer';

/** Put Block List takes at most 50,000 blocks: one per shard (plus raw.npy's header). */
export const MAX_BLOB_SHARDS = 49_999;
const PARALLEL = 16;

/** What a shard attempt's done.json holds on blob storage: its record and the bytes of each blob. */
export interface BlobShardRecord extends ShardRecord {
  /** The attempt whose blobs these are (the one whose result the workflow accepted, when it did). */
  attempt: number;
  bytes: { predictions: number; errors: number; raw: number };
}

export class BlobBatchOutput {
  readonly root: BlobLocation;

  constructor(readonly output: string) {
    this.root = parseBlobLocation(output);
  }

  private at(...names: string[]): BlobLocation {
    return blobChild(this.root, ...names);
  }

  private blob(...names: string[]): BlockBlobClient {
    return blockBlob(this.at(...names));
  }

  url(...names: string[]): string {
    return formatBlobLocation(this.at(...names));
  }

  get jobFile(): string {
    return this.url('manifest', 'job.json');
  }
  get manifestDir(): string {
    return this.url('manifest');
  }
  get predictionsFile(): string {
    return this.url('predictions.jsonl');
  }
  get errorsFile(): string {
    return this.url('errors.jsonl');
  }
  get rawFile(): string {
    return this.url('raw.npy');
  }
  get summaryFile(): string {
    return this.url('summary.json');
  }

  /** Fails now, saying what to do, when the container is missing or the workers may not write to it. */
  async checkWritable(): Promise<void> {
    const probe = this.blob(`.inferctl-write-test-${crypto.randomBytes(4).toString('hex')}`);
    await storageCall('write to', this.root, () => probe.upload('', 0));
    await storageCall('delete in', this.root, () => probe.deleteIfExists());
  }

  async readJson<T>(...names: string[]): Promise<T | undefined> {
    const text = await this.readText(...names);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async readText(...names: string[]): Promise<string | undefined> {
    const loc = this.at(...names);
    try {
      return (await blockBlob(loc).downloadToBuffer()).toString('utf8');
    } catch (err) {
      if (statusOf(err) === 404 && storageErrorCode(err) !== 'ContainerNotFound') return undefined;
      throw explainStorageError(err, 'read', loc);
    }
  }

  /** Writes (replacing) a small JSON blob. */
  async writeJson(value: unknown, ...names: string[]): Promise<void> {
    const body = JSON.stringify(value, null, 2) + '\n';
    const loc = this.at(...names);
    await storageCall('write', loc, () =>
      blockBlob(loc).upload(body, Buffer.byteLength(body), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
      }),
    );
  }

  /** Deletes every blob under `names` (as a directory), PARALLEL at a time, listing page by page. */
  async removeTree(...names: string[]): Promise<void> {
    const loc = this.at(...names);
    const pages = containerClient(loc)
      .listBlobsFlat({ prefix: directoryPrefix(loc) })
      .byPage({ maxPageSize: 1000 });
    for (;;) {
      const page = await storageCall('list', loc, () => pages.next());
      if (page.done) break;
      await inParallel(page.value.segment.blobItems, (b) =>
        storageCall('delete', loc, () => containerClient(loc).getBlockBlobClient(b.name).deleteIfExists()),
      );
    }
  }

  async remove(...names: string[]): Promise<void> {
    const loc = this.at(...names);
    await storageCall('delete', loc, () => blockBlob(loc).deleteIfExists());
  }

  /** Everything a previous job on this prefix left (a re-run of a scheduled slot replaces it). */
  async removeJobOutputs(): Promise<void> {
    await this.removeTree('manifest');
    await this.removeTree('shards');
    for (const name of ['predictions.jsonl', 'errors.jsonl', 'raw.npy', 'summary.json']) await this.remove(name);
  }

  /** Shard lists as blobs under manifest/, uploaded PARALLEL at a time while the listing goes on. */
  manifestSink(): ManifestSink {
    const inFlight = new Set<Promise<unknown>>();
    let failure: unknown;
    return {
      write: async (shard, body) => {
        if (failure) throw failure as Error;
        while (inFlight.size >= PARALLEL) await Promise.race(inFlight);
        const loc = this.at('manifest', `${shardName(shard)}.jsonl`);
        const upload = storageCall('write the shard list', loc, () =>
          blockBlob(loc).upload(body, Buffer.byteLength(body)),
        )
          .catch((err: unknown) => (failure ??= err))
          .finally(() => inFlight.delete(upload));
        inFlight.add(upload);
      },
      commit: async () => {
        await Promise.all(inFlight);
        if (failure) throw failure as Error;
      },
      abort: async () => {
        await Promise.all(inFlight);
      },
    };
  }

  async readShardManifest(shard: number): Promise<string[]> {
    const text = await this.readText('manifest', `${shardName(shard)}.jsonl`);
    if (text === undefined) {
      throw new StepFailedError(
        `The shard list ${this.url('manifest', `${shardName(shard)}.jsonl`)} is gone (a newer job on the same output removed it?).`,
        FailureType.BatchOutputsInconsistent,
      );
    }
    return parseShardManifest(text);
  }

  /** The done record of `attempt` of `shard`, if that attempt finished. */
  doneRecord(shard: number, attempt: number): Promise<BlobShardRecord | undefined> {
    return this.readJson<BlobShardRecord>('shards', shardName(shard), `attempt-${attempt}`, SHARD_FILES.done);
  }

  /** The first attempt of `shard` that finished (a retry after a crash that came after done.json). */
  async anyDoneRecord(shard: number): Promise<BlobShardRecord | undefined> {
    const loc = this.at('shards', shardName(shard));
    const attempts: number[] = [];
    for await (const b of containerClient(loc).listBlobsFlat({ prefix: directoryPrefix(loc) })) {
      const m = /attempt-(\d+)\/done\.json$/.exec(b.name);
      if (m) attempts.push(Number(m[1]));
    }
    for (const attempt of attempts.sort((a, b) => a - b)) {
      const record = await this.doneRecord(shard, attempt);
      if (record) return record;
    }
    return undefined;
  }

  /** The blobs one attempt of one shard writes: staged as the rows come, committed once by `finish`. */
  openAttempt(shard: number, attempt: number, rawOutputs: boolean): ShardAttemptOutput {
    const dir = ['shards', shardName(shard), `attempt-${attempt}`];
    const part = (name: string) => new StagedBlob(this.at(...dir, name));
    return new ShardAttemptOutput(
      this,
      dir,
      part(SHARD_FILES.predictions),
      part(SHARD_FILES.errors),
      rawOutputs ? part(SHARD_FILES.raw) : undefined,
    );
  }

  /**
   * Composes `target` from the shards' blobs of `file` in shard order, server-side (one staged block per
   * non-empty shard blob, then one commit that creates the blob). A retry that finds the blob already
   * committed with the expected size keeps it. Returns nothing; throws when a shard blob is missing.
   */
  async compose(
    target: string,
    shards: readonly BlobShardRecord[],
    file: keyof BlobShardRecord['bytes'],
    opts: { prefix?: Buffer; onShard?: () => void } = {},
  ): Promise<void> {
    const loc = this.at(target);
    const dest = blockBlob(loc);
    const nonce = crypto.randomBytes(6).toString('hex');
    const blockId = (i: number) => Buffer.from(`${nonce}-${String(i).padStart(8, '0')}`).toString('base64');
    const ids: string[] = [];
    let expected = 0;
    if (opts.prefix) {
      const id = blockId(ids.length);
      ids.push(id);
      expected += opts.prefix.length;
      await storageCall('write', loc, () => dest.stageBlock(id, opts.prefix!, opts.prefix!.length));
    }
    const parts = shards
      .filter((s) => s.bytes[file] > 0)
      .map((s) => {
        const id = blockId(ids.length);
        ids.push(id);
        expected += s.bytes[file];
        return { s, id };
      });
    if (ids.length > 50_000) {
      throw new StepFailedError(
        `${target} would need ${ids.length} blocks, over Blob Storage's 50,000: run the job with a larger --shard-size.`,
        FailureType.BatchOutputsInconsistent,
      );
    }
    const fileName = { predictions: SHARD_FILES.predictions, errors: SHARD_FILES.errors, raw: SHARD_FILES.raw }[file];
    await inParallel(parts, async ({ s, id }) => {
      const srcLoc = this.at('shards', shardName(s.shard), `attempt-${s.attempt}`, fileName);
      const source = await copySource(srcLoc, blockBlob(srcLoc));
      await storageCall('copy the shard output into', loc, () =>
        dest.stageBlockFromURL(id, source.url, 0, s.bytes[file], {
          ...(source.sourceAuthorization ? { sourceAuthorization: source.sourceAuthorization } : {}),
        }),
      );
      opts.onShard?.();
    });
    try {
      await dest.commitBlockList(ids, { conditions: { ifNoneMatch: '*' } });
    } catch (err) {
      if (storageErrorCode(err) === 'BlobAlreadyExists' || statusOf(err) === 409) {
        const size = (await storageCall('read', loc, () => dest.getProperties())).contentLength;
        if (size === expected) return; // this merge's earlier attempt committed it
        throw new StepFailedError(
          `${formatBlobLocation(loc)} already exists with ${size} bytes, not the ${expected} this job composes: ` +
            'another job writes to the same output. Give each job its own --output.',
          FailureType.BatchOutputsInconsistent,
        );
      }
      throw explainStorageError(err, 'write', loc);
    }
  }

  /** raw.npy: the .npy header, then every scored row in shard order; returns the shape. */
  async composeRaw(
    shards: readonly BlobShardRecord[],
    classes: number,
    onShard?: () => void,
  ): Promise<[number, number]> {
    let rows = 0;
    for (const s of shards) {
      const want = s.itemsOk * classes * 4;
      if (s.bytes.raw !== want) {
        throw new StepFailedError(
          `Shard ${s.shard}'s raw outputs hold ${s.bytes.raw} bytes, not ${s.itemsOk} rows × ${classes} float32 values ` +
            `(${want} bytes), so raw.npy cannot line up with predictions.jsonl. Run the job again.`,
          FailureType.BatchOutputsInconsistent,
        );
      }
      rows += s.itemsOk;
    }
    const shape: [number, number] = [rows, classes];
    await this.compose('raw.npy', shards, 'raw', { prefix: npyHeader(shape, '<f4'), onShard });
    return shape;
  }
}

/** One shard attempt's output blobs. */
export class ShardAttemptOutput {
  constructor(
    private readonly output: BlobBatchOutput,
    private readonly dir: string[],
    private readonly predictions: StagedBlob,
    private readonly errors: StagedBlob,
    private readonly raw: StagedBlob | undefined,
  ) {}

  get sinks(): ShardSinks {
    return { predictions: this.predictions, errors: this.errors, ...(this.raw ? { raw: this.raw } : {}) };
  }

  /** Commits each blob once (If-None-Match: *), then done.json, the attempt's last write. */
  async finish(record: Omit<BlobShardRecord, 'bytes'>, checkpoint: ShardCheckpoint): Promise<BlobShardRecord> {
    await Promise.all([this.predictions.commit(), this.errors.commit(), this.raw?.commit()]);
    const done: BlobShardRecord = {
      ...record,
      bytes: { predictions: checkpoint.predictionsBytes, errors: checkpoint.errorsBytes, raw: checkpoint.rawBytes },
    };
    const body = JSON.stringify(done);
    const loc = blobChild(this.output.root, ...this.dir, SHARD_FILES.done);
    await storageCall('write', loc, () =>
      blockBlob(loc).upload(body, Buffer.byteLength(body), { conditions: { ifNoneMatch: '*' } }),
    );
    return done;
  }
}

/**
 * A blob written as staged blocks at explicit offsets, committed once. Block ids carry a nonce of this
 * writer, so no other attempt's blocks can ever end up in its commit.
 */
export class StagedBlob implements ByteSink {
  private readonly nonce = crypto.randomBytes(6).toString('hex');
  private readonly blocks: Array<{ position: number; id: string; length: number }> = [];

  constructor(private readonly loc: BlobLocation) {}

  async writeAt(buf: Buffer, position: number): Promise<void> {
    const id = Buffer.from(`${this.nonce}-${String(position).padStart(14, '0')}`).toString('base64');
    const body = Buffer.from(buf); // the caller may reuse its buffer
    await storageCall('write', this.loc, () => blockBlob(this.loc).stageBlock(id, body, body.length));
    this.blocks.push({ position, id, length: body.length });
  }

  async commit(): Promise<void> {
    if (this.blocks.length === 0) return; // nothing written: no blob (done.json says 0 bytes)
    const ordered = [...this.blocks].sort((a, b) => a.position - b.position);
    await storageCall('write', this.loc, () =>
      blockBlob(this.loc).commitBlockList(
        ordered.map((b) => b.id),
        { conditions: { ifNoneMatch: '*' } },
      ),
    );
  }
}

async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
