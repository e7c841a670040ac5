/**
 * The score progress display: a live bar redrawn in place on a terminal, plain whole lines everywhere else
 * (pipes, log files, --json), both fed the same progress answers a batch job gives.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';

import { createProgressRenderer, progressLine, progressRendererKind } from '../../src/cli/progress';
import type { Output } from '../../src/cli/output';
import type { BatchProgress } from '../../src/shared/batch-types';

/** A stream that keeps what is written to it and says whether it is a terminal, as stdout does. */
class CapturedStream extends Writable {
  readonly chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 160,
  ) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString());
    done();
  }
  text(): string {
    return this.chunks.join('');
  }
}

/** An Output that keeps its lines and notes instead of printing them. */
function recordedOutput(json = false): Output & { lines: string[]; notes: string[] } {
  const lines: string[] = [];
  const notes: string[] = [];
  return {
    json,
    lines,
    notes,
    line: (text) => lines.push(text),
    note: (text) => notes.push(text),
    result: () => {},
  };
}

function progress(itemsDone: number, overrides: Partial<BatchProgress> = {}): BatchProgress {
  return {
    name: 'job',
    stage: 'scoring',
    totalItems: 200,
    itemsDone,
    itemsFailed: 1,
    shardCount: 4,
    shardsDone: Math.floor(itemsDone / 50),
    shardsInFlight: 2,
    startedAt: new Date(Date.now() - 10_000).toISOString(),
    ...overrides,
  };
}

describe('score progress display', () => {
  test('the choice: a bar on a terminal, lines on a pipe, lines with --json even on a terminal', () => {
    assert.equal(progressRendererKind({ isTTY: true }, false), 'bar');
    assert.equal(progressRendererKind({ isTTY: false }, false), 'lines');
    assert.equal(progressRendererKind({}, false), 'lines', 'a stream that does not say is not a terminal');
    assert.equal(progressRendererKind({ isTTY: true }, true), 'lines');
    assert.equal(createProgressRenderer(recordedOutput(), { stream: new CapturedStream(true) }).kind, 'bar');
    assert.equal(createProgressRenderer(recordedOutput(), { stream: new CapturedStream(false) }).kind, 'lines');
    assert.equal(createProgressRenderer(recordedOutput(true), { stream: new CapturedStream(true) }).kind, 'lines');
  });

  test('a terminal gets one live bar, redrawn in place, ending on a new line', () => {
    const tty = new CapturedStream(true);
    const out = recordedOutput();
    const renderer = createProgressRenderer(out, { stream: tty });
    renderer.update(progress(0, { stage: 'listing', totalItems: 0 }));
    renderer.update(progress(50));
    renderer.update(progress(150));
    renderer.stop();

    const text = tty.text();
    assert.match(text, /Listing inputs…/);
    assert.match(text, /\x1b\[/, 'moves the cursor to redraw');
    assert.equal(text.split('\n').length - 1, 1, 'one line in all: each update redraws it');
    assert.ok(text.endsWith('\n'), 'the cursor ends on the next line');
    const last = text.slice(text.lastIndexOf('\x1b[1G'));
    assert.match(last, /75\.0% 150\/200 items, \d+ items\/s, ETA [^,]+, 1 failed, shards 3\/4 \(2 running\)/);
    assert.deepEqual(out.lines, [], 'nothing goes through the plain lines');
  });

  test('a note during the bar goes to stderr between bars, not over one', () => {
    const tty = new CapturedStream(true);
    const out = recordedOutput();
    const renderer = createProgressRenderer(out, { stream: tty });
    renderer.update(progress(0));
    renderer.note('No shard has finished yet.');
    const beforeNote = tty.text();
    renderer.update(progress(100));
    renderer.stop();
    assert.deepEqual(out.notes, ['No shard has finished yet.']);
    assert.ok(beforeNote.endsWith('\n'), 'the bar ended its line before the note');
    assert.match(tty.text().slice(beforeNote.length), /100\/200 items/, 'a new bar below the note');
  });

  test('elsewhere: whole lines, in the same format as `score status`, at most one per interval', () => {
    const pipe = new CapturedStream(false);
    const out = recordedOutput();
    const everyUpdate = createProgressRenderer(out, { stream: pipe, lineIntervalMs: 0 });
    everyUpdate.update(progress(0, { stage: 'listing', totalItems: 0 }));
    everyUpdate.update(progress(50));
    everyUpdate.stop();
    assert.equal(out.lines[0], 'Listing inputs…');
    assert.match(
      out.lines[1] ?? '',
      /^\[#{8}\.{22}\] 25\.0% 50\/200 items, \d+ items\/s, ETA [^,]+, 1 failed, shards 1\/4 \(2 running\)$/,
    );
    assert.equal(out.lines.length, 2);
    for (const line of out.lines) assert.doesNotMatch(line, /[\r\n\x1b]/, 'no carriage returns or escapes');
    assert.equal(pipe.text(), '', 'nothing is drawn on the stream itself');

    const throttled = recordedOutput();
    const every5s = createProgressRenderer(throttled, { stream: pipe });
    every5s.update(progress(10));
    every5s.update(progress(20));
    every5s.update(progress(30));
    assert.equal(throttled.lines.length, 1, 'the first at once, the next only after 5 s');
    assert.match(throttled.lines[0] ?? '', /^\[#{2}\.{28}\] 5\.0% 10\/200 items/);
    assert.equal(progressLine(progress(10, { stage: 'listing' })), 'Listing inputs…');
  });
});
