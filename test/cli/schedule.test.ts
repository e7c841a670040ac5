/**
 * `inferctl schedule` against the run's dev server with real workers: create, describe, trigger, see the
 * run, backfill two past slots (each writes its own slot's output), re-run a slot (it overwrites that
 * slot instead of adding a copy), the clear errors, and delete.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { writeSampleImages } from '../../src/demo/sample-images';
import { readJsonl } from '../helpers/jsonl';
import { demoAssets, eventually, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';

const inferctl = (args: string[]) => runInferctl(args);

interface ScheduleView {
  paused: boolean;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; workflowId: string; status?: string }>;
}

const day = (d: Date) => d.toISOString().slice(0, 10);

describe('inferctl schedule', () => {
  const controlQueue = uniqueName('sched-control');
  const gpuQueue = uniqueName('sched-gpu');
  const name = uniqueName('nightly');
  const workers: WorkerProcess[] = [];
  let scratch: string;
  let modelPath: string;

  before(async () => {
    modelPath = (await demoAssets()).modelPath;
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'inferctl-sched-'));
    await writeSampleImages(path.join(scratch, 'in'), 6);
    workers.push(await startControlWorker(controlQueue), await startGpuWorker(gpuQueue));
  });
  after(async () => {
    await inferctl(['schedule', 'delete', name]);
    for (const w of workers) await w.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  async function describeSchedule(): Promise<ScheduleView> {
    const run = await inferctl(['schedule', 'describe', name, '--json']);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as ScheduleView;
  }

  async function completedRuns(count: number): Promise<ScheduleView['recentRuns']> {
    return eventually(
      async () => {
        const runs = (await describeSchedule()).recentRuns;
        return runs.length >= count && runs.every((r) => r.status === 'COMPLETED') ? runs : undefined;
      },
      `${count} completed scheduled run(s)`,
      90_000,
    );
  }

  test('create, trigger, backfill two slots, re-run a slot, errors, delete', async () => {
    const output = path.join(scratch, 'out', '{date}');
    const created = await inferctl([
      'schedule',
      'create',
      name,
      '--cron',
      '0 2 * * *',
      '--model',
      modelPath,
      '--input',
      path.join(scratch, 'in'),
      '--output',
      output,
      '--shard-size',
      '4',
      '--task-queue',
      controlQueue,
      '--gpu-queue',
      gpuQueue,
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const next = (await describeSchedule()).nextRuns;
    assert.ok(
      next.length > 0 && next.every((t) => t.endsWith('T02:00:00.000Z')),
      `next runs at 02:00 UTC: ${next.join(', ')}`,
    );

    // Schedule listing is a visibility query, eventually consistent: a new schedule shows up soon, not at once.
    await eventually(async () => {
      const listed = await inferctl(['schedule', 'list', '--json']);
      return (JSON.parse(listed.stdout) as Array<{ name: string }>).some((s) => s.name === name) ? true : undefined;
    }, 'the new schedule in schedule list');

    // Trigger: one run now, writing today's slot.
    assert.equal((await inferctl(['schedule', 'trigger', name])).code, 0);
    const [triggered] = await completedRuns(1);
    assert.match(triggered!.workflowId, new RegExp(`^score-${name}-`), 'workflow id names the schedule and the slot');
    const today = path.join(scratch, 'out', day(new Date(triggered!.scheduledAt)));
    assert.equal((await readJsonl(path.join(today, 'predictions.jsonl'))).length, 6);

    // Backfill the 02:00 slots of two past days.
    const d1 = new Date(Date.now() - 3 * 86400_000);
    const d2 = new Date(Date.now() - 2 * 86400_000);
    const from = `${day(d1)}T00:00:00Z`;
    const to = `${day(d2)}T23:00:00Z`;
    const backfill = await inferctl(['schedule', 'backfill', name, '--from', from, '--to', to, '--json']);
    assert.equal(backfill.code, 0, backfill.stderr);
    assert.deepEqual((JSON.parse(backfill.stdout) as { slots: string[] }).slots, [
      `${day(d1)}T02:00:00.000Z`,
      `${day(d2)}T02:00:00.000Z`,
    ]);
    await completedRuns(3);
    for (const d of [d1, d2]) {
      const rows = await readJsonl(path.join(scratch, 'out', day(d), 'predictions.jsonl'));
      assert.equal(rows.length, 6, `slot ${day(d)} has its own output`);
    }

    // Re-running a slot overwrites that slot's output instead of writing a second copy.
    const again = await inferctl([
      'schedule',
      'backfill',
      name,
      '--from',
      `${day(d1)}T01:00:00Z`,
      '--to',
      `${day(d1)}T03:00:00Z`,
    ]);
    assert.equal(again.code, 0, again.stderr);
    await completedRuns(4);
    assert.equal((await readJsonl(path.join(scratch, 'out', day(d1), 'predictions.jsonl'))).length, 6);
    const outDirs = (await fs.readdir(path.join(scratch, 'out'))).sort();
    assert.deepEqual(outDirs, [...new Set([day(d1), day(d2), day(new Date(triggered!.scheduledAt))])].sort());

    // Clear errors.
    const empty = await inferctl([
      'schedule',
      'backfill',
      name,
      '--from',
      '2020-01-01T03:00:00Z',
      '--to',
      '2020-01-01T04:00:00Z',
    ]);
    assert.equal(empty.code, 2, 'a range without a slot is bad input');
    assert.match(empty.stderr, /No slot of schedule .* nothing to backfill/);
    const badCron = await inferctl([
      'schedule',
      'create',
      uniqueName('bad'),
      '--cron',
      'every night',
      '--model',
      modelPath,
      '--input',
      scratch,
      '--output',
      scratch,
    ]);
    assert.equal(badCron.code, 2);
    assert.match(badCron.stderr, /Invalid cron "every night"/);
    const unknown = await inferctl(['schedule', 'describe', uniqueName('missing')]);
    assert.equal(unknown.code, 2, 'a name that does not exist is bad input');
    assert.match(unknown.stderr, /No schedule named/);

    // Pause, then delete.
    assert.equal((await inferctl(['schedule', 'pause', name, '--note', 'test'])).code, 0);
    assert.equal((await describeSchedule()).paused, true);
    assert.equal((await inferctl(['schedule', 'delete', name])).code, 0);
    const gone = await inferctl(['schedule', 'describe', name]);
    assert.equal(gone.code, 2, 'a deleted schedule is a name that does not exist');
  });
});
