/**
 * Turns a batch job's input spec (a directory of images, or a manifest of paths) into shard lists on
 * disk, streaming, so that a million inputs never sit in memory or in workflow history.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { pipeline } from 'node:stream';

import { CsvError, parse as parseCsv } from 'csv-parse';
import type { Info } from 'csv-parse';

import { InvalidInputError } from '../errors';
import { shardName } from './output-layout';
import { FailureType } from '../shared/failure-types';
import { listBlobInputs } from '../storage/blob-listing';
import { isBlobLocation, parseBlobLocation } from '../storage/blob-location';

const MANIFEST_EXTENSIONS = new Set(['.jsonl', '.csv', '.txt']);

/** Names an input folder's walk takes as images; other files are skipped unless the job asks for every file. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg',
  '.jpeg',
  '.jpe',
  '.png',
  '.webp',
  '.gif',
  '.avif',
  '.heic',
  '.heif',
  '.tif',
  '.tiff',
  '.bmp',
]);

/** How a folder or blob prefix is walked: every file, or only images by name (each skipped one reported). */
export interface ListingOptions {
  /** Take every file, not only image names. */
  allFiles?: boolean;
  /** Called for each file left out because its name is not an image's. */
  onSkipped?: (path: string) => void;
}

/**
 * Every input path, in a stable order: a directory is walked recursively (sorted, hidden names skipped),
 * taking only image names unless `allFiles`; a manifest's lines are taken as they are.
 * `exclude` is a directory never to descend into: the job's own output, when it lies inside the input.
 */
export async function* listInputs(
  inputPath: string,
  exclude?: string,
  listing: ListingOptions = {},
): AsyncGenerator<string> {
  const keep = (p: string) => {
    if (listing.allFiles || IMAGE_EXTENSIONS.has(path.extname(p).toLowerCase())) return true;
    listing.onSkipped?.(p);
    return false;
  };
  if (isBlobLocation(inputPath)) {
    const outside = exclude && isBlobLocation(exclude) ? parseBlobLocation(exclude) : undefined;
    for await (const p of listBlobInputs(parseBlobLocation(inputPath), outside)) if (keep(p)) yield p;
    return;
  }
  if (exclude && isBlobLocation(exclude)) exclude = undefined;
  let stat: fs.Stats;
  try {
    stat = await fsp.stat(inputPath);
  } catch {
    throw new InvalidInputError(
      `Input not found: ${inputPath}. Pass a directory of images or a .jsonl/.csv/.txt manifest of image paths.`,
      FailureType.InputNotFound,
    );
  }
  if (stat.isDirectory()) {
    for await (const p of walk(inputPath, exclude ? path.resolve(exclude) : undefined)) if (keep(p)) yield p;
  } else if (MANIFEST_EXTENSIONS.has(path.extname(inputPath).toLowerCase())) {
    yield* readManifest(inputPath);
  } else {
    throw new InvalidInputError(
      `Input ${inputPath} is neither a directory nor a manifest (.jsonl, .csv or .txt).`,
      FailureType.InvalidInput,
    );
  }
}

async function* walk(dir: string, exclude: string | undefined): AsyncGenerator<string> {
  const entries = (await fsp.readdir(dir, { withFileTypes: true }))
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (full === exclude) continue;
    if (entry.isDirectory()) yield* walk(full, exclude);
    else if (entry.isFile()) yield full;
  }
}

/**
 * A manifest lists one input per line: a path (.txt), a CSV row whose first column is the path (a
 * header row naming `path` is skipped; quoted fields may hold commas, quotes and newlines), or a JSON
 * line that is a string or an object with `path`. Relative paths are relative to the manifest's directory.
 * Lines that are empty or start with `#` are skipped.
 */
async function* readManifest(file: string): AsyncGenerator<string> {
  const base = path.dirname(file);
  const ext = path.extname(file).toLowerCase();
  for await (const { entry, line, text } of ext === '.csv' ? csvRows(file) : textLines(file, ext)) {
    if (typeof entry !== 'string' || entry.length === 0) {
      throw new InvalidInputError(
        `${file}:${line}: expected ${ext === '.jsonl' ? 'a JSON string or {"path": …}' : 'a path'}, got: ${text.slice(0, 120)}`,
        FailureType.InvalidManifest,
      );
    }
    yield isBlobLocation(entry) ? entry : path.resolve(base, entry);
  }
}

/** One manifest row: the path it names (if any), the line it starts on and its text, for messages. */
interface ManifestRow {
  entry: string | undefined;
  line: number;
  text: string;
}

async function* textLines(file: string, ext: string): AsyncGenerator<ManifestRow> {
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let line = 0;
  for await (const raw of lines) {
    line++;
    const text = raw.trim();
    if (!text || text.startsWith('#')) continue;
    let entry: string | undefined = text;
    if (ext === '.jsonl') {
      try {
        const parsed = JSON.parse(text) as unknown;
        entry = typeof parsed === 'string' ? parsed : ((parsed as { path?: unknown }).path as string | undefined);
      } catch {
        entry = undefined;
      }
    }
    yield { entry, line, text };
  }
}

/** The rows of a CSV manifest, streamed through csv-parse: the first field of each row is the path. */
async function* csvRows(file: string): AsyncGenerator<ManifestRow> {
  const parser = parseCsv({
    bom: true,
    comment: '#',
    comment_no_infix: true,
    info: true,
    raw: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    trim: true,
  });
  // pipeline, not pipe: when the reader stops early (or fails) the file is closed too. Its errors reach
  // the loop below through the parser.
  pipeline(fs.createReadStream(file), parser, () => undefined);
  // csv-parse counts a row's lines at its end and hands the skipped lines before it in its raw text.
  let lastLine = 0;
  let skippedBefore = 0;
  try {
    for await (const { record, info, raw } of parser as AsyncIterable<{ record: string[]; info: Info; raw: string }>) {
      const skipped = info.comment_lines + info.empty_lines;
      const line = lastLine + skipped - skippedBefore + 1;
      const text = raw
        .split(/\r?\n/)
        .slice(skipped - skippedBefore)
        .join('\n')
        .trim();
      lastLine = info.lines;
      skippedBefore = skipped;
      const entry = record[0];
      if (info.lines === 1 && entry?.toLowerCase() === 'path') continue;
      yield { entry, line, text };
    }
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    const line = typeof err.lines === 'number' ? err.lines : '?';
    throw new InvalidInputError(`${file}:${line}: ${err.message}`, FailureType.InvalidManifest);
  }
}

/** Where a listing's shard lists go: a directory on disk, or blobs (src/storage/blob-output.ts). */
export interface ManifestSink {
  /** Stores shard `shard`'s list (called in shard order). */
  write(shard: number, body: string): Promise<void>;
  /** Makes the whole listing visible, once every shard is written. */
  commit(): Promise<void>;
  /** Drops what was written (nothing to score). */
  abort(): Promise<void>;
}

/** Shard lists in a directory: written into a temp dir renamed into place at the end. */
export function directoryManifestSink(manifestDir: string): ManifestSink {
  const tmp = `${manifestDir}.${process.pid}.tmp`;
  let ready: Promise<void> | undefined;
  const start = () =>
    (ready ??= fsp
      .rm(tmp, { recursive: true, force: true })
      .then(() => fsp.mkdir(tmp, { recursive: true }))
      .then(() => undefined));
  return {
    async write(shard, body) {
      await start();
      await fsp.writeFile(path.join(tmp, `${shardName(shard)}.jsonl`), body);
    },
    async commit() {
      await start();
      await fsp.rm(manifestDir, { recursive: true, force: true });
      await fsp.rename(tmp, manifestDir);
    },
    async abort() {
      await fsp.rm(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * Writes shard-<n>.jsonl lists of `shardSize` inputs each (into `manifest`: a directory, atomically, or
 * any sink) and returns the counts. Fails clearly when there is nothing to score.
 */
export async function writeShardManifests(
  inputPath: string,
  manifest: string | ManifestSink,
  shardSize: number,
  onProgress?: (items: number) => void,
  exclude?: string,
  listing: Pick<ListingOptions, 'allFiles'> = {},
): Promise<{ totalItems: number; shardCount: number; skippedFiles: number }> {
  const sink = typeof manifest === 'string' ? directoryManifestSink(manifest) : manifest;
  let totalItems = 0;
  let shardCount = 0;
  let skippedFiles = 0;
  let current: string[] = [];
  const flush = async () => {
    // One JSON string per line: a path may contain any character, newlines included.
    await sink.write(shardCount, current.map((p) => JSON.stringify(p)).join('\n') + '\n');
    shardCount++;
    current = [];
  };
  try {
    const options: ListingOptions = { ...listing, onSkipped: () => skippedFiles++ };
    for await (const input of listInputs(inputPath, exclude, options)) {
      current.push(input);
      totalItems++;
      if (current.length === shardSize) {
        await flush();
        onProgress?.(totalItems);
      }
    }
    if (current.length > 0) await flush();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  if (totalItems === 0) {
    await sink.abort();
    const why =
      skippedFiles > 0
        ? ` (${skippedFiles} file(s) skipped: their names are not images'; --all-files scores every file)`
        : '';
    throw new InvalidInputError(`No inputs found in ${inputPath}${why}: nothing to score.`, FailureType.EmptyInput);
  }
  await sink.commit();
  return { totalItems, shardCount, skippedFiles };
}

/** The paths of one shard list's text, in order. */
export function parseShardManifest(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as string);
}

/** The paths of one shard, in order. */
export async function readShardManifest(file: string): Promise<string[]> {
  return parseShardManifest(await fsp.readFile(file, 'utf8'));
}
