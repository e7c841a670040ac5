/**
 * The body of an inference thread (a piscina worker, see inference-threads.ts): one onnxruntime session,
 * opened on the thread's first task from the model's bytes (read once, from the file that was checked) with
 * the pool's session options, then reused by every task.
 * `InferenceSession.run` is a synchronous native call in onnxruntime-node, so it blocks this thread
 * and never the process's main thread. Tensors arrive and leave transferred, not copied.
 */
import * as ort from 'onnxruntime-node';
import { move, workerData } from 'piscina';

import { ortTensor } from './tensor-dtype';
import type { RunTask, SessionDescription, ThreadData, ThreadTask, WireTensor } from './inference-wire';
import { transferable, wireOutputs } from './inference-wire';

const data = workerData as ThreadData;
let session: Promise<ort.InferenceSession> | undefined;

function opened(): Promise<ort.InferenceSession> {
  session ??= ort.InferenceSession.create(data.model, data.options);
  // A failed open is not kept: the task that asked reports it, and the pool is closed by its owner.
  session.catch(() => (session = undefined));
  return session;
}

function tensorOf(t: WireTensor): ort.Tensor {
  if (t.type === 'string') return new ort.Tensor('string', t.data as unknown as string[], t.dims);
  return ortTensor(t.type as ort.Tensor.Type, t.data as ArrayBufferView, t.dims);
}

async function run(task: RunTask): Promise<unknown> {
  const s = await opened();
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(task.feeds)) feeds[name] = tensorOf(t);
  const results = task.fetches ? await s.run(feeds, [...task.fetches]) : await s.run(feeds);
  return move(transferable(wireOutputs(results)) as Parameters<typeof move>[0]);
}

async function describe(): Promise<SessionDescription> {
  const s = await opened();
  return { inputMetadata: [...s.inputMetadata], outputMetadata: [...s.outputMetadata] };
}

export default async function handle(task: ThreadTask): Promise<unknown> {
  if (task.kind === 'describe') return describe();
  return run(task);
}
