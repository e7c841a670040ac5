/**
 * Reads a shard's blob inputs ahead of decode: when input i is asked for, the downloads of the next
 * `ahead` inputs are started too, at most `concurrency` at a time, so decode rarely waits on the
 * network. Memory stays bounded: at most `ahead` downloaded inputs wait, each is dropped once read,
 * and a blob larger than `maxBytes` is refused from its properties without downloading it.
 * Local paths in the same shard are read from the file system.
 */
import { ImageError } from '../errors';
import { assertTrustedEndpoint, blockBlob, explainStorageError, statusOf, storageErrorCode } from './blob-client';
import { isBlobLocation, parseBlobLocation } from './blob-location';
import { MAX_INPUT_BYTES, readLocalInput } from '../batch/local-input';

export { MAX_INPUT_BYTES };

export interface PrefetchOptions {
  /** Inputs downloaded ahead of the one being read (default 64). */
  ahead?: number;
  /** Downloads at once (default 16). */
  concurrency?: number;
  maxBytes?: number;
  signal?: AbortSignal;
}

export class InputPrefetcher {
  private readonly started = new Map<number, Promise<Buffer>>();
  private readonly ahead: number;
  private readonly maxBytes: number;
  private readonly limit: Semaphore;
  private next = 0;

  constructor(
    private readonly inputs: readonly string[],
    private readonly opts: PrefetchOptions = {},
  ) {
    this.ahead = Math.max(1, opts.ahead ?? 64);
    this.maxBytes = opts.maxBytes ?? MAX_INPUT_BYTES;
    this.limit = new Semaphore(Math.max(1, opts.concurrency ?? 16));
  }

  /** The bytes of `inputs[position]` (which is `file`); starts the downloads after it. */
  read(file: string, position: number): Promise<Buffer> {
    if (position < this.next - this.ahead) this.next = position; // a restart from earlier: refill from here
    this.next = Math.max(this.next, position);
    for (; this.next < Math.min(this.inputs.length, position + this.ahead); this.next++) this.start(this.next);
    const pending = this.started.get(position) ?? this.fetch(file);
    this.started.delete(position);
    return pending;
  }

  private start(position: number): void {
    if (this.started.has(position)) return;
    const pending = this.fetch(this.inputs[position]!);
    pending.catch(() => undefined); // awaited by read(); not unhandled meanwhile
    this.started.set(position, pending);
  }

  private async fetch(file: string): Promise<Buffer> {
    if (!isBlobLocation(file)) return (await readLocalInput(file, { maxBytes: this.maxBytes })).bytes;
    const loc = parseBlobLocation(file);
    assertTrustedEndpoint(loc); // a manifest line naming another host is that input's error ('not-allowed')
    return this.limit.run(async () => {
      const blob = blockBlob(loc);
      try {
        const props = await blob.getProperties({ abortSignal: this.opts.signal });
        const size = props.contentLength ?? 0;
        if (size > this.maxBytes) {
          throw new ImageError('too-large', `The blob is ${size} bytes, over ${this.maxBytes}. Resize it first.`);
        }
        if (size === 0) return Buffer.alloc(0);
        return await blob.downloadToBuffer(0, size, { abortSignal: this.opts.signal, concurrency: 1 });
      } catch (err) {
        if (err instanceof ImageError) throw err;
        const code = storageErrorCode(err);
        if (statusOf(err) === 404 && code !== 'ContainerNotFound') {
          throw new ImageError('unreadable', `BlobNotFound: cannot read ${file}`);
        }
        throw explainStorageError(err, 'read the input', loc);
      }
    });
  }
}

/** At most `size` calls of `run` at once; the rest wait in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
