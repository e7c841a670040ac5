/**
 * The GPU worker's scoring slots for script jobs: one long-lived Python process per slot (init() ran once
 * in it), lent to one shard at a time and given back after, so the next shard of the same script skips
 * init(). A process that died, or was killed for a timeout, is never lent again. Idle processes of another
 * script are stopped when a new one starts (a worker keeps at most its slots' worth of models loaded), and
 * every process is stopped when the worker stops.
 */
import type { BatchApp } from './batch-app';
import { ScriptProcess } from './batch-process';

/** One shard's hold on a process: the current one, a fresh one after a timeout, and the hand-back. */
export interface ScriptLease {
  process(): Promise<ScriptProcess>;
  replace(): Promise<ScriptProcess>;
  release(): void;
}

export class ScriptProcessPool {
  private readonly idle = new Map<string, ScriptProcess[]>();
  private readonly busy = new Set<ScriptProcess>();

  /** Lends a process for `app` (an idle one, else a new one started on first use). */
  lease(app: BatchApp): ScriptLease {
    let current: ScriptProcess | undefined;
    const start = async (): Promise<ScriptProcess> => {
      const p = await this.take(app);
      this.busy.add(p);
      current = p;
      return p;
    };
    return {
      process: () => (current?.alive ? Promise.resolve(current) : this.replaced(current, start)),
      replace: () => this.replaced(current, start),
      release: () => {
        if (!current) return;
        this.busy.delete(current);
        // A shard that ended mid-run (cancelled, failed) leaves an answer owed: that process is not lent again.
        if (current.reusable) this.idleOf(app.digest).push(current);
        else current.kill();
        current = undefined;
      },
    };
  }

  /** Stops every process, lent or idle. */
  stopAll(): void {
    for (const p of this.busy) p.kill();
    for (const list of this.idle.values()) for (const p of list) p.kill();
    this.busy.clear();
    this.idle.clear();
  }

  private async take(app: BatchApp): Promise<ScriptProcess> {
    const list = this.idleOf(app.digest);
    for (let p = list.pop(); p; p = list.pop()) if (p.alive) return p;
    for (const [digest, others] of this.idle) {
      if (digest === app.digest) continue;
      for (const p of others) p.kill();
      this.idle.delete(digest);
    }
    return ScriptProcess.start({
      python: app.python,
      entryScript: app.entryScript,
      appDir: app.appDir,
      modelDir: app.modelDir,
      entryRelative: app.entryRelative,
    });
  }

  private replaced(old: ScriptProcess | undefined, start: () => Promise<ScriptProcess>): Promise<ScriptProcess> {
    if (old) {
      this.busy.delete(old);
      old.kill();
    }
    return start();
  }

  private idleOf(digest: string): ScriptProcess[] {
    let list = this.idle.get(digest);
    if (!list) this.idle.set(digest, (list = []));
    return list;
  }
}
