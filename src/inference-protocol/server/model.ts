/**
 * What the Open Inference Protocol routes serve: any ONNX model on an onnxruntime session, described by
 * the session's own input/output metadata and run with arbitrary named feeds. A Classifier is one
 * (v2ModelOf); `loadOnnxModel` opens one for a model that is not an image classifier (several inputs,
 * integer tensors, no labels), with the same CPU session options.
 */
import path from 'node:path';

import type * as ort from 'onnxruntime-node';

import { ModelError } from '../../errors';
import { readModelFile } from '../../model/model-info';
import type { Classifier } from '../../scoring/classifier';
import { InferenceThreads } from '../../scoring/inference-threads';
import { sessionOptions } from '../../scoring/thread-tuning';
import type { SessionThreading } from '../../scoring/thread-tuning';
import { FailureType } from '../../shared/failure-types';
import { v2DatatypeOf } from '../tensors';
import type { V2Datatype } from '../tensors';

export interface V2Model {
  /** The model file; its basename without `.onnx` is the model's name unless the server is given one. */
  readonly path: string;
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  /**
   * Runs on an inference thread. The feeds are left intact unless `transfer` hands their buffers over
   * (no copy; the caller's arrays are detached).
   */
  runFeeds(
    feeds: ort.InferenceSession.FeedsType,
    fetches?: readonly string[],
    opts?: { transfer?: boolean },
  ): Promise<ort.InferenceSession.ReturnType>;
}

/** A tensor as `GET /v2/models/{name}` lists it: `-1` for a dynamic axis. */
export interface TensorMetadata {
  name: string;
  /** 'BYTES' for string tensors, which infer refuses; undefined for a type V2 cannot express. */
  datatype: V2Datatype | 'BYTES' | undefined;
  shape: number[];
}

export function v2ModelOf(classifier: Classifier): V2Model {
  return {
    path: classifier.info.path,
    inputMetadata: classifier.inputMetadata,
    outputMetadata: classifier.outputMetadata,
    runFeeds: (feeds, fetches, opts) => classifier.runFeeds(feeds, fetches, opts),
  };
}

/** The model's default V2 name: its file name without `.onnx`. */
export function defaultModelName(modelPath: string): string {
  return path.basename(modelPath).replace(/\.onnx$/i, '');
}

export function describeTensors(metadata: readonly ort.InferenceSession.ValueMetadata[]): TensorMetadata[] {
  return metadata.map((m) =>
    m.isTensor
      ? {
          name: m.name,
          datatype: v2DatatypeOf(m.type),
          shape: m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)),
        }
      : { name: m.name, datatype: undefined, shape: [] },
  );
}

export interface LoadedOnnxModel extends V2Model {
  release(): Promise<void>;
}

/**
 * Opens any ONNX model on a CPU session, off the main thread (what a replica serves when the model is
 * not a classifier).
 */
export async function loadOnnxModel(modelPath: string, opts: SessionThreading = {}): Promise<LoadedOnnxModel> {
  const bytes = await readModelFile(modelPath); // checked against the allowed roots; the session opens these bytes
  let session: InferenceThreads;
  try {
    session = await InferenceThreads.open(
      bytes,
      { ...sessionOptions(opts), executionProviders: ['cpu'] },
      opts.inferenceThreads ?? 1,
    );
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
    throw new ModelError(
      `onnxruntime cannot load ${modelPath} (${why}). Check that it is an ONNX model with an opset this onnxruntime supports.`,
      FailureType.InvalidModel,
    );
  }
  return {
    path: modelPath,
    inputMetadata: session.inputMetadata,
    outputMetadata: session.outputMetadata,
    runFeeds: (feeds, fetches, opts) => session.run(feeds, fetches, { keep: !opts?.transfer }),
    release: () => session.release(),
  };
}
