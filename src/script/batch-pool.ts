/**
 * The GPU worker's Python processes for script jobs: at most `processes` of them (Azure ML's
 * max_concurrency_per_instance; default 1, as there), each long-lived (init() ran once in it), lent to
 * one shard at a time and given back after, so the next shard of the same script skips init(). The shards
 * in flight share them: a shard that finds none free waits (heartbeating) for one to be given back, which
 * happens the moment the shard before it ends, so a process goes from shard to shard without waiting on
 * Temporal. One process is what a plain loop over the script runs; a second one only helps where the
 * script leaves cores idle (an onnxruntime session takes every core by default, and two such processes
 * fight over them), so more is the user's choice (the worker's --script-processes), not the default.
 * A process that died, or was killed for a timeout, is never lent again. An idle process of another script
 * is stopped when a new one needs its place (a worker keeps at most `processes` models loaded), and every
 * process is stopped when the worker stops.
 */
import type { BatchApp } from './batch-app';
import { ScriptProcess } from './batch-process';

/** One shard's hold on a process: the current one, a fresh one after a timeout, and the hand-back. */
export interface ScriptLease {
  process(): Promise<ScriptProcess>;
  replace(): Promise<ScriptProcess>;
  release(): void;
}

/** How often a waiting shard looks again even if nothing was given back (an idle process may have died). */
const RECHECK_MS = 1000;

export class ScriptProcessPool {
  private readonly idle = new Map<string, ScriptProcess[]>();
  private readonly busy = new Set<ScriptProcess>();
  private starting = 0;
  private stopped = false;
  private waiters: Array<() => void> = [];

  /** `processes`: how many Python processes this worker runs at most (default 1). */
  constructor(readonly processes = 1) {}

  /** Lends a process for `app` (an idle one, else a new one, else the next one given back; `signal` ends the wait). */
  lease(app: BatchApp, signal?: AbortSignal): ScriptLease {
    let current: ScriptProcess | undefined;
    const hold = (p: ScriptProcess): ScriptProcess => (current = p); // already counted busy by acquire/startCounted
    // A process of this lease's own that died or timed out is replaced in its place: the slot stays this shard's.
    const replace = async (): Promise<ScriptProcess> => {
      if (!current) return hold(await this.acquire(app, signal));
      this.busy.delete(current);
      current.kill();
      current = undefined;
      return hold(await this.startCounted(app));
    };
    return {
      process: async () => (current?.alive ? current : replace()),
      replace,
      release: () => {
        if (!current) return;
        this.busy.delete(current);
        // A shard that ended mid-run (cancelled, failed) leaves an answer owed: that process is not lent again.
        if (current.reusable && !this.stopped) this.idleOf(app.digest).push(current);
        else current.kill();
        current = undefined;
        this.wake();
      },
    };
  }

  /** Stops every process, lent or idle; a shard still waiting for one fails. */
  stopAll(): void {
    this.stopped = true;
    for (const p of this.busy) p.kill();
    for (const list of this.idle.values()) for (const p of list) p.kill();
    this.busy.clear();
    this.idle.clear();
    this.wake();
  }

  private async acquire(app: BatchApp, signal?: AbortSignal): Promise<ScriptProcess> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.stopped) throw new Error('the GPU worker is stopping');
      const list = this.idleOf(app.digest);
      for (let p = list.pop(); p; p = list.pop()) {
        if (!p.alive) continue;
        this.busy.add(p);
        return p;
      }
      if (this.count() >= this.processes) this.evictOther(app.digest);
      if (this.count() < this.processes) return this.startCounted(app);
      await this.changed(signal);
    }
  }

  /**
   * Starts a process for `app`, counted against the limit while init() runs and busy once it is ready (before
   * any waiter wakes, so that none takes its place).
   */
  private async startCounted(app: BatchApp): Promise<ScriptProcess> {
    this.starting++;
    try {
      const p = await ScriptProcess.start({
        python: app.python,
        entryScript: app.entryScript,
        appDir: app.appDir,
        modelDir: app.modelDir,
        entryRelative: app.entryRelative,
      });
      this.busy.add(p);
      return p;
    } finally {
      this.starting--;
      this.wake();
    }
  }

  /** Processes alive or starting (dead idle ones are dropped here). */
  private count(): number {
    let n = this.busy.size + this.starting;
    for (const [digest, list] of this.idle) {
      const alive = list.filter((p) => p.alive);
      if (alive.length === 0) this.idle.delete(digest);
      else this.idle.set(digest, alive);
      n += alive.length;
    }
    return n;
  }

  /** Stops one idle process of another script, to make room. */
  private evictOther(digest: string): void {
    for (const [other, list] of this.idle) {
      if (other === digest) continue;
      const p = list.pop();
      if (list.length === 0) this.idle.delete(other);
      p?.kill();
      return;
    }
  }

  /** Resolves when a process is given back or ends starting, or after RECHECK_MS; rejects when `signal` aborts. */
  private changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (then: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        this.waiters = this.waiters.filter((w) => w !== done);
        then();
      };
      const done = () => settle(resolve);
      const aborted = () => settle(() => reject(signal!.reason as Error));
      const timer = setTimeout(done, RECHECK_MS);
      signal?.addEventListener('abort', aborted, { once: true });
      this.waiters.push(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private idleOf(digest: string): ScriptProcess[] {
    let list = this.idle.get(digest);
    if (!list) this.idle.set(digest, (list = []));
    return list;
  }
}
