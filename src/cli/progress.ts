/**
 * How `inferctl score` shows a running job: a live progress bar (cli-progress), redrawn in place, when
 * stdout is a terminal; otherwise (a pipe, a log file, or --json) a plain progress line every few seconds,
 * so whatever captures the output reads it line by line.
 */
import { Format, Presets, SingleBar } from 'cli-progress';
import type { Options, Params } from 'cli-progress';

import type { BatchProgress } from '../shared/batch-types';
import { formatDuration } from '../shared/duration';
import type { Output } from './output';

export type ProgressRendererKind = 'bar' | 'lines';

export interface ProgressRenderer {
  readonly kind: ProgressRendererKind;
  /** Shows the latest progress (the line renderer prints at most one line per interval). */
  update(p: BatchProgress): void;
  /** Prints a note (stderr) without drawing it over the bar. */
  note(text: string): void;
  /** Ends the display; the bar is drawn one last time and the cursor moves to the next line. */
  stop(): void;
}

/** The stream the bar is drawn on: stdout, or anything that says whether it is a terminal. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgressRendererOptions {
  /** Where the bar goes and whose `isTTY` decides (default: process.stdout). */
  stream?: ProgressStream;
  /** How often a plain line is printed (default 5 s). */
  lineIntervalMs?: number;
}

/** A live bar only where someone watches it: on a terminal, and not with --json. */
export function progressRendererKind(stream: { isTTY?: boolean }, json: boolean): ProgressRendererKind {
  return stream.isTTY === true && !json ? 'bar' : 'lines';
}

export function createProgressRenderer(out: Output, opts: ProgressRendererOptions = {}): ProgressRenderer {
  const stream = opts.stream ?? process.stdout;
  return progressRendererKind(stream, out.json) === 'bar'
    ? new BarRenderer(stream, out)
    : new LineRenderer(out, opts.lineIntervalMs ?? 5000);
}

/** One line of progress, as printed to pipes and logs and by `inferctl score status`. */
export function progressLine(p: BatchProgress): string {
  if (p.stage === 'listing') return 'Listing inputs…';
  const width = 30;
  const filled = Math.round(fraction(p) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progressFigures(p)}`;
}

function fraction(p: BatchProgress): number {
  return p.totalItems > 0 ? p.itemsDone / p.totalItems : 0;
}

/** Everything after the bar: percentage, items, rate and ETA (from the job's own start), failures, shards. */
function progressFigures(p: BatchProgress): string {
  const elapsed = (Date.now() - Date.parse(p.startedAt)) / 1000;
  const rate = elapsed > 0 ? p.itemsDone / elapsed : 0;
  const eta = rate > 0 ? formatDuration(((p.totalItems - p.itemsDone) / rate) * 1000) : '?';
  return (
    `${(fraction(p) * 100).toFixed(1)}% ` +
    `${p.itemsDone}/${p.totalItems} items, ${rate.toFixed(0)} items/s, ETA ${eta}, ` +
    `${p.itemsFailed} failed, shards ${p.shardsDone}/${p.shardCount} (${p.shardsInFlight} running)`
  );
}

class LineRenderer implements ProgressRenderer {
  readonly kind = 'lines';
  private lastPrinted = 0;

  constructor(
    private readonly out: Output,
    private readonly everyMs: number,
  ) {}

  update(p: BatchProgress): void {
    if (Date.now() - this.lastPrinted < this.everyMs) return;
    this.out.line(progressLine(p));
    this.lastPrinted = Date.now();
  }

  note(text: string): void {
    this.out.note(text);
  }

  stop(): void {}
}

interface BarPayload {
  progress: BatchProgress;
}

function formatBar(options: Options, _params: Params, payload: BarPayload): string {
  const p = payload.progress;
  if (p.stage === 'listing') return 'Listing inputs…';
  return `${Format.BarFormat(fraction(p), options)} ${progressFigures(p)}`;
}

class BarRenderer implements ProgressRenderer {
  readonly kind = 'bar';
  private readonly bar: SingleBar;
  private active = false;

  constructor(
    stream: ProgressStream,
    private readonly out: Output,
  ) {
    this.bar = new SingleBar(
      {
        stream,
        format: formatBar,
        barsize: 30,
        // Leave the terminal's line wrapping and cursor as they are (a Ctrl-C must not leave them off):
        // the line is cut to the terminal's width instead.
        linewrap: true,
        hideCursor: false,
        gracefulExit: false,
      },
      Presets.shades_classic,
    );
  }

  update(p: BatchProgress): void {
    const payload: BarPayload = { progress: p };
    if (!this.active) {
      this.bar.start(p.totalItems, p.itemsDone, payload);
      this.active = true;
      return;
    }
    if (this.bar.getTotal() !== p.totalItems) this.bar.setTotal(p.totalItems);
    this.bar.update(p.itemsDone, payload);
  }

  note(text: string): void {
    // The bar stays above as it was; the next update starts a new one below the note.
    this.stop();
    this.out.note(text);
  }

  stop(): void {
    if (!this.active) return;
    this.bar.stop();
    this.active = false;
  }
}
