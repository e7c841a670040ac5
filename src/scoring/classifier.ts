/**
 * An image classifier on onnxruntime-node: one InferenceSession, batched inference, top-k labels.
 * Execution provider: CPU, or CUDA when asked for; onnxruntime-node throws when the CUDA provider
 * cannot load, and then this falls back to CPU only if the caller allowed it.
 */
import * as ort from 'onnxruntime-node';

import { ModelError } from '../errors';
import { preprocessImage } from '../images/preprocess';
import { readModelInfo } from '../model/model-info';
import type { ModelInfo } from '../model/model-info';
import { ImageError } from '../errors';

export interface ClassifierOptions {
  executionProvider?: 'cpu' | 'cuda';
  deviceId?: number;
  allowCpuFallback?: boolean;
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface Prediction {
  label: string;
  score: number;
}

export type Classification = { ok: true; predictions: Prediction[] } | { ok: false; reason: string; message: string };

export class Classifier {
  private constructor(
    readonly info: ModelInfo,
    private readonly session: ort.InferenceSession,
    readonly executionProvider: 'cpu' | 'cuda',
  ) {}

  static async load(modelPath: string, opts: ClassifierOptions = {}): Promise<Classifier> {
    const info = await readModelInfo(modelPath);
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
    };
    if (opts.executionProvider === 'cuda') {
      try {
        const session = await ort.InferenceSession.create(modelPath, {
          ...base,
          executionProviders: [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }],
        });
        return new Classifier(info, session, 'cuda');
      } catch (err) {
        if (!opts.allowCpuFallback) {
          throw new ModelError(
            `The CUDA execution provider could not load (${(err as Error).message.split('\n')[0]}). Install CUDA 12, cuDNN 9 and ` +
              "onnxruntime-node's CUDA provider (see README, GPU workers), or allow the CPU fallback.",
            'CudaUnavailable',
          );
        }
      }
    }
    try {
      const session = await ort.InferenceSession.create(modelPath, { ...base, executionProviders: ['cpu'] });
      return new Classifier(info, session, 'cpu');
    } catch (err) {
      throw new ModelError(
        `onnxruntime cannot load ${modelPath}: ${(err as Error).message.split('\n')[0]}`,
        'InvalidModel',
      );
    }
  }

  /** Probabilities (the model's output row) for each preprocessed image, in order. */
  async infer(batch: Float32Array[]): Promise<Float32Array[]> {
    if (batch.length === 0) return [];
    if (!this.info.dynamicBatch && batch.length > 1) {
      const out: Float32Array[] = [];
      for (const one of batch) out.push(...(await this.infer([one])));
      return out;
    }
    const plane = 3 * this.info.height * this.info.width;
    const data = new Float32Array(batch.length * plane);
    batch.forEach((t, i) => data.set(t, i * plane));
    const input = new ort.Tensor('float32', data, [batch.length, 3, this.info.height, this.info.width]);
    const results = await this.session.run({ [this.info.inputName]: input });
    const output = results[this.info.outputName] ?? Object.values(results)[0];
    if (!output) throw new Error('The model returned no output.');
    const values = output.data as Float32Array;
    const classes = values.length / batch.length;
    return batch.map((_, i) => values.slice(i * classes, (i + 1) * classes));
  }

  topK(probs: Float32Array, k: number): Prediction[] {
    const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]!);
    return order.slice(0, k).map((i) => ({ label: this.info.labels[i] ?? `class_${i}`, score: probs[i]! }));
  }

  /** Decodes and scores each image; a bad image gets its own error and does not fail the others. */
  async classify(images: Buffer[], k: number): Promise<Classification[]> {
    const decoded = await Promise.all(
      images.map(async (bytes) => {
        try {
          return { ok: true as const, tensor: await preprocessImage(bytes, this.info) };
        } catch (err) {
          if (err instanceof ImageError) return { ok: false as const, reason: err.reason, message: err.message };
          throw err;
        }
      }),
    );
    const good = decoded.filter((d) => d.ok);
    const probs = await this.infer(good.map((d) => d.tensor));
    let next = 0;
    return decoded.map((d) => (d.ok ? { ok: true, predictions: this.topK(probs[next++]!, k) } : d));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
