/**
 * One onnxruntime session per model per process, shared by every shard the process scores.
 * The first load says, once and plainly, which execution provider runs.
 */
import crypto from 'node:crypto';

import type { ModelOverrides } from '../model/model-info';
import { Classifier } from './classifier';
import type { SessionThreading } from './thread-tuning';

export interface ExecutionConfig extends SessionThreading {
  executionProvider: 'cpu' | 'cuda';
  deviceId?: number;
  /** When CUDA was asked for and cannot load: run on CPU (true) or fail (false). */
  allowCpuFallback: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Sessions may be opened at other intra-op settings, for the decode split to measure (ClassifierOptions). */
  intraOpVariants?: boolean;
}

export class ClassifierPool {
  private readonly sessions = new Map<string, Promise<Classifier>>();
  private announced = false;

  constructor(
    readonly config: ExecutionConfig,
    private readonly announce: (line: string) => void = (line) => console.log(line),
  ) {}

  /**
   * The session for this model, loading it on first use. `key` tells versions of a path apart; a job's
   * own preprocessing spec and labels (`overrides`) get a session of their own.
   */
  get(modelPath: string, key = modelPath, overrides?: ModelOverrides): Promise<Classifier> {
    if (overrides && (overrides.preprocess || overrides.labels)) {
      key += `#${crypto.createHash('sha256').update(JSON.stringify(overrides)).digest('hex').slice(0, 16)}`;
    }
    let session = this.sessions.get(key);
    if (!session) {
      session = Classifier.load(modelPath, { ...this.config, overrides }).then((classifier) => {
        if (!this.announced) {
          this.announced = true;
          const asked = this.config.executionProvider;
          const runs = classifier.executionProvider;
          const device = runs === 'cuda' ? ` (device ${this.config.deviceId ?? 0})` : '';
          this.announce(
            asked === runs
              ? `Execution provider: ${runs.toUpperCase()}${device}`
              : `Execution provider: ${runs.toUpperCase()} — CUDA was requested but could not load; falling back to CPU as allowed`,
          );
        }
        return classifier;
      });
      // A failed load is not cached: the next shard tries again (the file may have been fixed).
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  async releaseAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) {
      try {
        await (await s).release();
      } catch {
        // Already reported when it failed to load.
      }
    }
  }
}
