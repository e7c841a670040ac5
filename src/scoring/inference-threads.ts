/**
 * An onnxruntime session that runs off the main thread: a piscina pool of inference threads, each with
 * its own session on the same model and options (inference-thread.ts). onnxruntime-node's
 * `InferenceSession.run` is a synchronous native call (a setImmediate, then a blocking run), so on the
 * main thread it would stop heartbeats, decode callbacks and HTTP answers for as long as a batch takes;
 * here the main thread only posts the tensors (transferred, see inference-wire.ts) and awaits the answer.
 *
 * One thread (the default) is one session, as before; more threads run that many batches at once,
 * each on its own session (and its own copy of the weights).
 */
import path from 'node:path';

import * as ort from 'onnxruntime-node';
import { Piscina } from 'piscina';

import { ortTensor } from './tensor-dtype';
import type { RunTask, SessionDescription, ThreadData, ThreadTask, WireTensor } from './inference-wire';
import { wireTensors } from './inference-wire';

const THREAD_FILE = path.join(__dirname, 'inference-thread.js');

export class InferenceThreads {
  private running = 0;
  private readonly idle: Array<() => void> = [];

  private constructor(
    private readonly pool: Piscina<ThreadTask, unknown>,
    private readonly description: SessionDescription,
    readonly threads: number,
  ) {}

  /**
   * Starts the threads and opens the session on the first (its errors, such as a CUDA provider that
   * cannot load, are thrown here as onnxruntime words them; the pool is then closed).
   */
  static async open(
    model: Uint8Array,
    options: ort.InferenceSession.SessionOptions,
    threads = 1,
  ): Promise<InferenceThreads> {
    // The bytes, not a path: onnxruntime opening the file by name again could open what a link swapped in
    // after the allowed-roots check points to.
    const workerData: ThreadData = { model, options };
    const pool = new Piscina<ThreadTask, unknown>({
      filename: THREAD_FILE,
      workerData,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      // A thread waits for its next task on a message port, not spinning on Atomics.wait.
      atomics: 'disabled',
    });
    try {
      const description = (await pool.run({ kind: 'describe' })) as SessionDescription;
      return new InferenceThreads(pool, description, threads);
    } catch (err) {
      await pool.destroy();
      throw err;
    }
  }

  get inputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.description.inputMetadata;
  }

  get outputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.description.outputMetadata;
  }

  /**
   * One run on a free thread. The feeds' buffers are transferred: a typed array that owns its whole
   * buffer is detached here once sent, so callers must not read a feed after passing it, unless they
   * ask to `keep` the feeds (then each is copied once before it is sent).
   */
  async run(
    feeds: ort.InferenceSession.FeedsType,
    fetches?: readonly string[],
    { keep = false }: { keep?: boolean } = {},
  ): Promise<ort.InferenceSession.ReturnType> {
    const wire = wireTensors(feeds, keep);
    const task: RunTask = { kind: 'run', feeds: wire.tensors, ...(fetches ? { fetches: [...fetches] } : {}) };
    this.running++;
    let outputs: Record<string, WireTensor>;
    try {
      outputs = (await this.pool.run(task, { transferList: wire.transfer })) as Record<string, WireTensor>;
    } finally {
      if (--this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
    const results: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(outputs)) {
      results[name] =
        t.type === 'string'
          ? new ort.Tensor('string', t.data as string[], t.dims)
          : ortTensor(t.type as ort.Tensor.Type, t.data as ArrayBufferView, t.dims);
    }
    return results;
  }

  /**
   * As `release`, after letting a caller that has this session in hand start its run within the current turn
   * (a session no longer used, while others run).
   */
  async releaseWhenIdle(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await this.release();
  }

  /**
   * Closes the threads once the runs under way have answered (their callers may have gone: a replica stopping
   * with a request whose client left). Ending an onnxruntime run's thread mid-run aborts the process (SIGABRT),
   * so a run is never cut off here.
   */
  async release(): Promise<void> {
    while (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await this.pool.destroy();
  }
}
