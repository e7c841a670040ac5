/**
 * Reading one local input of a batch job, as a worker must: the file that is opened is checked against
 * the allowed roots (links resolved, after the open, so a swapped-in link cannot redirect the read), then
 * stat'ed before a byte is read: only a regular file of at most MAX_INPUT_BYTES is read. A FIFO, a device,
 * a directory, an oversized or an unreadable file is that input's error (an ImageError with a stable
 * reason), never a hung or failed shard. A ByteBudget bounds what one shard holds in memory at once.
 */
import type fs from 'node:fs';

import { openInsideAllowedRoots } from '../allowed-roots';
import { ImageError, InvalidInputError } from '../errors';

/** Larger inputs are refused as 'too-large' (a 50-megapixel JPEG is well under this); blobs too. */
export const MAX_INPUT_BYTES = 256 * 1024 * 1024;

export interface LocalInput {
  bytes: Buffer;
  /** Gives the bytes back to the budget (call it once they are decoded); a no-op without a budget. */
  release: () => void;
}

/**
 * Reads a local input, taking its size from `budget` first; throws ImageError ('not-a-file', 'too-large',
 * 'unreadable') or InvalidInputError (outside the roots).
 */
export async function readLocalInput(
  file: string,
  opts: { roots?: string[]; maxBytes?: number; budget?: ByteBudget; buffers?: ReadBuffers } = {},
): Promise<LocalInput> {
  const maxBytes = opts.maxBytes ?? MAX_INPUT_BYTES;
  let handle;
  try {
    handle = await openInsideAllowedRoots('input', file, opts.roots);
  } catch (err) {
    throw unreadable(err, file);
  }
  try {
    const stat = await handle.stat().catch((err: unknown) => {
      throw unreadable(err, file);
    });
    if (!stat.isFile()) {
      throw new ImageError('not-a-file', `${file} is ${kindOf(stat)}, not a regular file: only image files are read.`);
    }
    if (stat.size > maxBytes) {
      throw new ImageError('too-large', `${file} is ${stat.size} bytes, over ${maxBytes}. Resize it first.`);
    }
    const giveBudget = opts.budget ? await opts.budget.take(stat.size) : () => undefined;
    const taken = opts.buffers ? opts.buffers.take(stat.size + 1) : { buf: Buffer.allocUnsafe(stat.size + 1) };
    const release = () => {
      giveBudget();
      taken.give?.();
    };
    try {
      return { bytes: await readAtMost(handle, taken.buf, stat.size, maxBytes, file), release };
    } catch (err) {
      release();
      throw unreadable(err, file);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Reads up to `size` bytes (a file may grow after the stat: never more than `maxBytes`). The first read asks
 * for one byte more than the stat said: a regular file that answers exactly `size` bytes to it has ended
 * there, so the usual input costs one read; a short read (it shrank, or a file system that answers in parts)
 * reads on until the end, and a byte past `size` is the file growing.
 */
async function readAtMost(
  handle: fs.promises.FileHandle,
  buf: Buffer,
  size: number,
  maxBytes: number,
  file: string,
): Promise<Buffer> {
  let read = 0;
  while (read <= size) {
    const { bytesRead } = await handle.read(buf, read, size + 1 - read, read);
    if (bytesRead === 0) break; // it shrank
    read += bytesRead;
    if (read === size) break; // asked for more than `size`, the file answered up to it: its end
  }
  if (read > size && read > maxBytes) {
    throw new ImageError('too-large', `${file} grew over ${maxBytes} bytes while it was read. Resize it first.`);
  }
  return buf.subarray(0, Math.min(read, size));
}

function kindOf(stat: fs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** An error reading `file` as that input's error; InvalidInputError (outside the roots) and ImageError pass through. */
function unreadable(err: unknown, file: string): unknown {
  if (err instanceof ImageError || err instanceof InvalidInputError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') return new ImageError('not-a-file', `${file} is a directory, not a regular file.`);
  if (typeof code === 'string') return new ImageError('unreadable', `${code}: cannot read ${file}`);
  return err;
}

/**
 * Read buffers given back once their input is decoded, for the next large input (a camera photo, megabytes):
 * a fresh buffer per photo costs its pages' faults, and megabytes of new external memory per photo drive V8
 * into a major GC every few dozen photos, each marking the worker's whole heap. Inputs under `minBytes` take a
 * fresh buffer (Node's pool serves them); at most `keepBytes` are kept.
 */
export class ReadBuffers {
  private readonly free: Buffer[] = [];
  private kept = 0;

  constructor(
    readonly minBytes = 256 * 1024,
    readonly keepBytes = 64 * 1024 * 1024,
  ) {}

  /** A buffer of at least `size` bytes, and the function that gives it back (call it once: its bytes are reused). */
  take(size: number): { buf: Buffer; give?: () => void } {
    if (size < this.minBytes) return { buf: Buffer.allocUnsafe(size) };
    // The smallest free one that fits, and not more than twice the size (a huge one stays for a huge input).
    let at = -1;
    this.free.forEach((b, i) => {
      if (b.length >= size && b.length <= 2 * size && (at < 0 || b.length < this.free[at]!.length)) at = i;
    });
    const whole = at >= 0 ? this.free.splice(at, 1)[0]! : Buffer.allocUnsafeSlow(size);
    if (at >= 0) this.kept -= whole.length;
    let given = false;
    return {
      buf: whole.subarray(0, size),
      give: () => {
        if (given) return;
        given = true;
        if (this.kept + whole.length > this.keepBytes) return;
        this.kept += whole.length;
        this.free.push(whole);
      },
    };
  }
}

/**
 * At most `limit` bytes of input read at once by one shard: a batch of 4096 large files is read a budget's
 * worth at a time instead of all together. A single input larger than the budget still gets it alone.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Waits until `bytes` fit, takes them, and returns the function that gives them back. */
  async take(bytes: number): Promise<() => void> {
    while (this.used > 0 && this.used + bytes > this.limit) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.used += bytes;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.used -= bytes;
      for (const wake of this.waiting.splice(0)) wake();
    };
  }

  get inUse(): number {
    return this.used;
  }
}
