/**
 * Dynamic batching for Open Inference Protocol requests, on the batch axis, for requests of equal
 * shape: concurrent infer requests whose inputs have the same names, datatypes and shapes past axis 0
 * (any number of rows on it), and that ask for the same outputs, are concatenated along axis 0 and run as one inference; each gets its own rows
 * of every output back.
 *   - a group runs as soon as it holds `maxBatchSize` rows, or when its oldest request has waited
 *     `maxQueueDelayMicros`; a request as large as `maxBatchSize` alone is not queued;
 *   - the caller decides what may be batched (every input and output dynamic on axis 0, every input of
 *     the request the same size on it: see routes.ts);
 *   - when a batch fails, each of its requests is retried alone, so a request the model refuses is
 *     refused alone and never fails its neighbours.
 */
import type { OrtTensorType, TensorData } from '../tensors';

export interface BatchInput {
  name: string;
  type: OrtTensorType;
  shape: number[];
  data: TensorData;
}

/** An output as onnxruntime answers it (an ort.Tensor is one). */
export interface BatchOutput {
  type: string;
  dims: readonly number[];
  data: ArrayBufferView;
}

export type Outputs = Record<string, BatchOutput>;

export interface V2BatcherOptions {
  maxBatchSize: number;
  maxQueueDelayMicros: number;
  run: (inputs: BatchInput[], fetches: readonly string[]) => Promise<Outputs>;
  /** Told about each executed batch: rows, inference seconds, each member's queue delay in seconds. */
  onBatch?: (rows: number, inferenceSeconds: number, queueDelaysSeconds: number[]) => void;
}

interface Member {
  inputs: BatchInput[];
  rows: number;
  enqueuedAt: bigint;
  resolve: (outputs: Outputs) => void;
  reject: (err: unknown) => void;
}

interface Group {
  fetches: readonly string[];
  members: Member[];
  rows: number;
  timer: NodeJS.Timeout;
}

type Sliceable = ArrayBufferView & { length: number; subarray(begin: number, end: number): ArrayBufferView };
type Growable = TensorData & { set(array: ArrayLike<number | bigint>, offset: number): void };

function concat(parts: BatchInput[]): BatchInput {
  const first = parts[0]!;
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  const data = new (first.data.constructor as new (n: number) => Growable)(total);
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  const rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
  return { ...first, shape: [rows, ...first.shape.slice(1)], data };
}

export class V2Batcher {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly opts: V2BatcherOptions) {}

  /** The outputs for these inputs (all of the same size `rows` on axis 0), inferred with others of equal shape. */
  submit(inputs: BatchInput[], fetches: readonly string[], rows: number): Promise<Outputs> {
    if (rows >= this.opts.maxBatchSize) return this.runAlone(inputs, fetches, [0]);
    const key = JSON.stringify([fetches, inputs.map((i) => [i.name, i.type, i.shape.slice(1)])]);
    return new Promise((resolve, reject) => {
      let group = this.groups.get(key);
      if (group && group.rows + rows > this.opts.maxBatchSize) {
        this.flush(key);
        group = undefined;
      }
      if (!group) {
        const timer = setTimeout(() => this.flush(key), this.opts.maxQueueDelayMicros / 1000);
        group = { fetches, members: [], rows: 0, timer };
        this.groups.set(key, group);
      }
      group.members.push({ inputs, rows, enqueuedAt: process.hrtime.bigint(), resolve, reject });
      group.rows += rows;
      if (group.rows >= this.opts.maxBatchSize) this.flush(key);
    });
  }

  private flush(key: string): void {
    const group = this.groups.get(key);
    if (!group) return;
    this.groups.delete(key);
    clearTimeout(group.timer);
    void this.execute(group);
  }

  private async runAlone(inputs: BatchInput[], fetches: readonly string[], delays: number[]): Promise<Outputs> {
    const started = process.hrtime.bigint();
    const outputs = await this.opts.run(inputs, fetches);
    this.opts.onBatch?.(inputs[0]?.shape[0] ?? 1, Number(process.hrtime.bigint() - started) / 1e9, delays);
    return outputs;
  }

  private async execute({ members, fetches, rows }: Group): Promise<void> {
    const started = process.hrtime.bigint();
    const delays = members.map((m) => Number(started - m.enqueuedAt) / 1e9);
    if (members.length === 1) {
      const [only] = members;
      await this.runAlone(only!.inputs, fetches, delays).then(only!.resolve, only!.reject);
      return;
    }
    let outputs: Outputs;
    try {
      const names = members[0]!.inputs.map((i) => i.name);
      outputs = await this.opts.run(
        names.map((_, k) => concat(members.map((m) => m.inputs[k]!))),
        fetches,
      );
      for (const name of fetches) {
        if (outputs[name]?.dims[0] !== rows) throw new Error(`Output "${name}" is not batched on axis 0.`);
      }
    } catch {
      // Retried one by one: each request gets its own answer, or its own refusal.
      for (const m of members) await this.runAlone(m.inputs, fetches, [0]).then(m.resolve, m.reject);
      return;
    }
    this.opts.onBatch?.(rows, Number(process.hrtime.bigint() - started) / 1e9, delays);
    let offset = 0;
    for (const m of members) {
      const own: Outputs = {};
      for (const name of fetches) {
        const out = outputs[name]!;
        const data = out.data as Sliceable;
        const perRow = data.length / rows;
        own[name] = {
          type: out.type,
          dims: [m.rows, ...out.dims.slice(1)],
          data: data.subarray(offset * perRow, (offset + m.rows) * perRow),
        };
      }
      offset += m.rows;
      m.resolve(own);
    }
  }
}
