/**
 * What travels between the main thread and an inference thread: tasks, tensors as {type, dims, data},
 * and the rule that their buffers are transferred (moved, not copied). A typed array that covers its
 * whole ArrayBuffer is transferred as is (the sender's view is then detached); one that is a window on a
 * larger buffer (a pooled Buffer, a slice of a request body) is first copied out, so that the rest of
 * that buffer is never taken from its owner.
 */
import type * as ort from 'onnxruntime-node';
import { transferableSymbol, valueSymbol } from 'piscina';

export interface WireTensor {
  type: string;
  dims: readonly number[];
  /** A typed array, or string[] for string tensors (cloned, never transferred). */
  data: ArrayBufferView | readonly string[];
}

export interface ThreadData {
  /** The model's bytes, as read from the file the allowed-roots check opened (never reopened by path). */
  model: Uint8Array;
  options: ort.InferenceSession.SessionOptions;
}

export interface RunTask {
  kind: 'run';
  feeds: Record<string, WireTensor>;
  fetches?: readonly string[];
}

export type ThreadTask = RunTask | { kind: 'describe' };

export interface SessionDescription {
  inputMetadata: ort.InferenceSession.ValueMetadata[];
  outputMetadata: ort.InferenceSession.ValueMetadata[];
}

type View = ArrayBufferView & { slice(): ArrayBufferView };

/** The view itself when it owns its whole (non-shared) buffer, else a copy of its own bytes that does. */
export function ownedView<T extends ArrayBufferView>(view: T): T {
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  if (whole && view.buffer instanceof ArrayBuffer) return view;
  return (view as unknown as View).slice() as unknown as T;
}

/**
 * Tensors as they travel, each over a buffer of its own, and the buffers to transfer. With `keep`, the
 * senders' arrays are left intact (each is copied once, and the copy transferred).
 */
export function wireTensors(
  tensors: Record<string, { type: string; dims: readonly number[]; data: unknown }>,
  keep = false,
): {
  tensors: Record<string, WireTensor>;
  transfer: ArrayBuffer[];
} {
  const out: Record<string, WireTensor> = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, t] of Object.entries(tensors)) {
    if (ArrayBuffer.isView(t.data)) {
      const data = keep ? (t.data as unknown as View).slice() : ownedView(t.data);
      transfer.add(data.buffer as ArrayBuffer);
      out[name] = { type: t.type, dims: [...t.dims], data };
    } else {
      out[name] = { type: t.type, dims: [...t.dims], data: t.data as readonly string[] };
    }
  }
  return { tensors: out, transfer: [...transfer] };
}

/** A session's results as they travel back (the thread's side of wireTensors). */
export function wireOutputs(results: ort.InferenceSession.ReturnType): ReturnType<typeof wireTensors> {
  return wireTensors(results);
}

/** Wraps outputs so that piscina (with `move`) transfers their buffers back instead of cloning them. */
export function transferable(wire: ReturnType<typeof wireTensors>): object {
  return {
    [transferableSymbol]: wire.transfer,
    [valueSymbol]: wire.tensors,
  };
}
