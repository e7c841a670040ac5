/**
 * The phase gate (src/batch/phase-gate.ts) that the decode split's "phases" mode runs a batch's decodes and a
 * batch's inference through: the two kinds never run at once, tasks of one kind share a turn, and a waiting
 * kind is not starved by newcomers of the other.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { PhaseGate } from '../../src/batch/phase-gate';
import type { Phase } from '../../src/batch/phase-gate';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PhaseGate', () => {
  test('decodes and inferences never run at once; the same kind shares a turn', async () => {
    const gate = new PhaseGate();
    const running: Record<Phase, number> = { decode: 0, infer: 0 };
    const most: Record<Phase, number> = { decode: 0, infer: 0 };
    let overlaps = 0;
    const task = (phase: Phase, ms: number) =>
      gate.run(phase, async () => {
        running[phase]++;
        most[phase] = Math.max(most[phase], running[phase]);
        if (running.decode > 0 && running.infer > 0) overlaps++;
        assert.equal(gate.phase, phase);
        await tick(ms);
        if (running.decode > 0 && running.infer > 0) overlaps++;
        running[phase]--;
        return phase;
      });
    const kinds: Phase[] = ['decode', 'decode', 'infer', 'decode', 'infer', 'infer', 'decode', 'infer'];
    const results = await Promise.all(kinds.map((k, i) => task(k, 2 + (i % 3) * 3)));
    assert.deepEqual(results, kinds, 'each task answered with its own result');
    assert.equal(overlaps, 0);
    assert.equal(most.decode, 2, 'the first two decodes shared their turn');
    assert.equal(gate.phase, undefined, 'idle once all are done');
  });

  test('turns go in arrival order: newcomers of the running kind wait behind a waiting task of the other', async () => {
    const gate = new PhaseGate();
    const order: string[] = [];
    const first = gate.run('decode', async () => {
      await tick(10);
      order.push('decode 1');
    });
    const infer = gate.run('infer', async () => {
      order.push('infer');
      await tick(1);
    });
    await tick(2);
    const late = gate.run('decode', async () => {
      order.push('decode 2');
      await tick(1);
    });
    await Promise.all([first, infer, late]);
    assert.deepEqual(order, ['decode 1', 'infer', 'decode 2']);
  });

  test('a failed task ends its turn', async () => {
    const gate = new PhaseGate();
    await assert.rejects(
      gate.run('decode', () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(gate.phase, undefined);
    assert.equal(await gate.run('infer', () => Promise.resolve(7)), 7);
  });
});
