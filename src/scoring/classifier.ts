/**
 * An image classifier on onnxruntime-node: one InferenceSession per inference thread (off the main
 * thread, see inference-threads.ts), batched inference, top-k labels.
 * Execution provider: CPU, or CUDA when asked for. onnxruntime-node throws when the CUDA provider
 * cannot load (its libraries are not installed by default, see .npmrc), and then this falls back to
 * CPU only if the caller allowed it; `executionProvider` says which one runs.
 */
import * as ort from 'onnxruntime-node';

import { ImageError, ModelError, WorkerCapabilityError } from '../errors';
import { preprocessImage } from '../preprocess/preprocess-image';
import { modelInfoOf, readModelFile } from '../model/model-info';
import type { ModelInfo, ModelOverrides } from '../model/model-info';
import { FailureType } from '../shared/failure-types';
import { InferenceThreads } from './inference-threads';
import { outputScores } from './output-scores';
import { sessionOptions } from './thread-tuning';
import type { SessionThreading } from './thread-tuning';
import { inputTensor, outputAsFloat32, toInputData } from './tensor-dtype';

export interface ClassifierOptions extends SessionThreading {
  executionProvider?: 'cpu' | 'cuda';
  deviceId?: number;
  /** When CUDA was asked for and cannot load: run on CPU (true) or fail with FailureType.CudaUnavailable (false, default). */
  allowCpuFallback?: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** The deployment's or job's preprocessing spec and labels, over the model's own (readModelInfo). */
  overrides?: ModelOverrides;
  /**
   * Whether `infer` may open sessions at other intra-op thread settings (the GPU worker's decode split
   * measures each, src/batch/decode-split.ts). The model's bytes are then kept until
   * `settleIntraOpThreads`.
   */
  intraOpVariants?: boolean;
}

export interface Prediction {
  label: string;
  score: number;
}

export type Classification = { ok: true; predictions: Prediction[] } | { ok: false; reason: string; message: string };

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

export class Classifier {
  /** Sessions at other intra-op settings than `intraOpThreads`, opened on first use (intraOpVariants). */
  private readonly variants = new Map<number, Promise<InferenceThreads>>();

  private constructor(
    readonly info: ModelInfo,
    private session: InferenceThreads,
    readonly executionProvider: 'cpu' | 'cuda',
    /** The intra-op threads the session runs with. */
    public intraOpThreads: number,
    /** Opens a session like this one at another intra-op setting (absent: only this one). */
    private reopen?: (intraOpNumThreads: number) => Promise<InferenceThreads>,
  ) {}

  /**
   * Reads the model once, through the allowed-roots check, checks it (readModelInfo's ModelErrors), then opens
   * one session on those same bytes.
   */
  static async load(modelPath: string, opts: ClassifierOptions = {}): Promise<Classifier> {
    const bytes = await readModelFile(modelPath);
    const info = await modelInfoOf(modelPath, bytes, opts.overrides);
    const base = sessionOptions(opts, opts.graphOptimizationLevel);
    const threads = opts.inferenceThreads ?? 1;
    const intraOp = base.intraOpNumThreads!;
    if (opts.executionProvider === 'cuda') {
      try {
        const session = await InferenceThreads.open(
          bytes,
          { ...base, executionProviders: [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }] },
          threads,
        );
        return new Classifier(info, session, 'cuda', intraOp);
      } catch (err) {
        if (!opts.allowCpuFallback) {
          throw new WorkerCapabilityError(
            `The CUDA execution provider could not load (${firstLine(err)}). Install CUDA 12, cuDNN 9 and ` +
              "onnxruntime-node's CUDA provider (see README, GPU workers), or allow the CPU fallback.",
            FailureType.CudaUnavailable,
          );
        }
      }
    }
    try {
      const cpu = { ...base, executionProviders: ['cpu'] };
      const session = await InferenceThreads.open(bytes, cpu, threads);
      const reopen = opts.intraOpVariants
        ? (intraOpNumThreads: number) => InferenceThreads.open(bytes, { ...cpu, intraOpNumThreads }, threads)
        : undefined;
      return new Classifier(info, session, 'cpu', intraOp, reopen);
    } catch (err) {
      throw new ModelError(
        `onnxruntime ${ort.env.versions.node ?? ort.env.versions.common} cannot load ${modelPath} (${firstLine(err)}). Re-export it with ` +
          'standard ONNX operators and an opset this onnxruntime supports.',
        FailureType.InvalidModel,
      );
    }
  }

  /** Values per image: 3 × height × width. */
  get inputSize(): number {
    return 3 * this.info.height * this.info.width;
  }

  /**
   * The model's raw output row for each preprocessed image (CHW or HWC, as the spec's layout), in order.
   * One run of shape [N, 3, H, W] or [N, H, W, 3] in the input's dtype; a model with a fixed batch of 1
   * is run once per image. `scores` turns a row into what top-k ranks.
   */
  async infer(batch: Float32Array[], at: { intraOpThreads?: number } = {}): Promise<Float32Array[]> {
    if (batch.length === 0) return [];
    const plane = this.inputSize;
    batch.forEach((t, i) => {
      if (t.length !== plane) {
        throw new RangeError(
          `Image ${i} has ${t.length} values; this model takes 3×${this.info.height}×${this.info.width} = ${plane}. Use preprocessImage.`,
        );
      }
    });
    if (!this.info.dynamicBatch && batch.length > 1) {
      const out: Float32Array[] = [];
      for (const one of batch) out.push(...(await this.infer([one], at)));
      return out;
    }
    const data = new Float32Array(batch.length * plane);
    batch.forEach((t, i) => data.set(t, i * plane));
    const { height, width } = this.info;
    const dims = this.info.layout === 'NHWC' ? [batch.length, height, width, 3] : [batch.length, 3, height, width];
    const input = inputTensor(this.info.inputType, toInputData(data, this.info.inputType), dims);
    const at_ = this.sessionAt(at.intraOpThreads);
    const session = at_ instanceof InferenceThreads ? at_ : await at_;
    const results = await session.run({ [this.info.inputName]: input }); // `data` is transferred
    const output = results[this.info.outputName];
    if (!output || (output.type !== 'float32' && output.type !== 'float16')) {
      throw new Error(`The model returned no float32 or float16 output "${this.info.outputName}".`);
    }
    const values = outputAsFloat32(output.data);
    const classes = values.length / batch.length;
    return batch.map((_, i) => values.slice(i * classes, (i + 1) * classes));
  }

  /**
   * The session at `intraOpThreads` (this one, or one opened for it when intraOpVariants allowed; otherwise
   * this one: a classifier that cannot open others runs every batch at its own setting).
   */
  private sessionAt(intraOpThreads: number | undefined): Promise<InferenceThreads> | InferenceThreads {
    if (intraOpThreads === undefined || intraOpThreads === this.intraOpThreads || !this.reopen) return this.session;
    let variant = this.variants.get(intraOpThreads);
    if (!variant) {
      variant = this.reopen(intraOpThreads);
      variant.catch(() => this.variants.delete(intraOpThreads));
      this.variants.set(intraOpThreads, variant);
    }
    return variant;
  }

  /**
   * Runs at `intraOpThreads` from now on, whatever `infer` is asked: its session becomes this classifier's
   * and the others close once their runs have answered (in the background); the model's bytes are let go.
   * Once settled, calling it again does nothing.
   */
  async settleIntraOpThreads(intraOpThreads: number): Promise<void> {
    if (!this.reopen) return;
    const keep = await this.sessionAt(intraOpThreads);
    const others = [this.session, ...(await Promise.all(this.variants.values()))].filter((s) => s !== keep);
    this.reopen = undefined;
    this.variants.clear();
    this.session = keep;
    this.intraOpThreads = intraOpThreads;
    // Closed in the background: a run another shard has under way on one of them finishes first.
    for (const s of others) void s.releaseWhenIdle().catch(() => undefined);
  }

  /** An output row as scores, by the spec's `output` (softmax for logits, sigmoid, or as is). */
  scores(row: Float32Array): Float32Array {
    return outputScores(row, this.info.output);
  }

  /** The k highest scores of an output row (after `scores`) with their labels, best first (ties keep class order). */
  topK(row: Float32Array, k: number): Prediction[] {
    const probs = this.scores(row);
    const count = Math.max(0, Math.min(Math.floor(k), probs.length));
    const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
    return order.slice(0, count).map((i) => ({ label: this.info.labels[i] ?? `class_${i}`, score: probs[i]! }));
  }

  /**
   * Decodes and scores each image in one batch. An image that cannot be decoded gets its own
   * `{ ok: false, reason, message }` (reasons as ImageError's) and does not fail the others.
   */
  async classify(images: Buffer[], k: number): Promise<Classification[]> {
    const decoded = await Promise.all(
      images.map(async (bytes) => {
        try {
          return { ok: true as const, tensor: await preprocessImage(bytes, this.info) };
        } catch (err) {
          const reason = err instanceof ImageError ? err.reason : 'decode-failed';
          const message =
            err instanceof ImageError ? err.message : `The image could not be decoded (${firstLine(err)}).`;
          return { ok: false as const, reason, message };
        }
      }),
    );
    const tensors: Float32Array[] = [];
    for (const d of decoded) if (d.ok) tensors.push(d.tensor);
    const probs = await this.infer(tensors);
    let next = 0;
    return decoded.map((d) => (d.ok ? { ok: true, predictions: this.topK(probs[next++]!, k) } : d));
  }

  /** Closes the sessions once the runs under way have answered (InferenceThreads.release). */
  async release(): Promise<void> {
    const variants = await Promise.allSettled(this.variants.values());
    this.variants.clear();
    for (const v of variants) if (v.status === 'fulfilled') await v.value.release();
    await this.session.release();
  }

  /** The model's inputs as onnxruntime reads them: name, tensor type, shape (symbolic axes as names). */
  get inputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.session.inputMetadata;
  }

  /** The model's outputs, as `inputMetadata`. */
  get outputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.session.outputMetadata;
  }

  /**
   * Runs any feeds on the session, not only images (the Open Inference Protocol routes use it);
   * answers every output, or only those named in `fetches`. The feeds are left as they were, unless
   * `transfer` hands their buffers to the inference thread (no copy; the caller's arrays are detached).
   */
  runFeeds(
    feeds: ort.InferenceSession.FeedsType,
    fetches?: readonly string[],
    { transfer = false }: { transfer?: boolean } = {},
  ): Promise<ort.InferenceSession.ReturnType> {
    return this.session.run(feeds, fetches, { keep: !transfer });
  }

  /** Inference threads (each with its own session). */
  get inferenceThreads(): number {
    return this.session.threads;
  }
}
