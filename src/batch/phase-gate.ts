/**
 * Turns between two kinds of work that must not run at the same time (the decode split's "phases" mode,
 * ./decode-split.ts: a batch's decodes and a batch's inference, each with every core to itself). Tasks of the
 * kind that holds the gate share it; a task of the other kind waits until they have all finished. Turns are
 * taken in arrival order: once a task of the other kind waits, newcomers of the current kind queue behind it,
 * so neither kind starves the other.
 */
export type Phase = 'decode' | 'infer';

export class PhaseGate {
  private current: Phase | undefined;
  private running = 0;
  private readonly queue: Array<{ phase: Phase; enter: () => void }> = [];

  /** The kind of work running now (undefined when idle). */
  get phase(): Phase | undefined {
    return this.current;
  }

  async run<T>(phase: Phase, task: () => Promise<T>): Promise<T> {
    if (this.queue.length > 0 || (this.current !== undefined && this.current !== phase)) {
      await new Promise<void>((enter) => this.queue.push({ phase, enter }));
    } else {
      this.current = phase;
      this.running++;
    }
    try {
      return await task();
    } finally {
      if (--this.running === 0) this.admitNext();
    }
  }

  /** The gate is free: the first waiter's kind takes it, with every waiter of that kind up to the next of the other. */
  private admitNext(): void {
    this.current = this.queue[0]?.phase;
    while (this.queue.length > 0 && this.queue[0]!.phase === this.current) {
      this.running++;
      this.queue.shift()!.enter();
    }
  }
}
