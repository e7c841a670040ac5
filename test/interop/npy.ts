/** Reads the reference tensors: NumPy .npy files of little-endian float32, float16 or uint8 in C order. */
import fs from 'node:fs/promises';

import { parseNpyHeader } from '../../src/batch/npy';

export interface NpyArray {
  shape: number[];
  /** float32 as numbers; float16 as its bits; uint8 as is. */
  data: Float32Array | Uint16Array | Uint8Array;
  dtype: 'float32' | 'float16' | 'uint8';
}

const DTYPES: Record<string, NpyArray['dtype']> = { '<f4': 'float32', '<f2': 'float16', '|u1': 'uint8' };

export async function readNpy(file: string): Promise<NpyArray> {
  const bytes = await fs.readFile(file);
  const header = parseNpyHeader(bytes);
  const dtype = DTYPES[header.descr];
  if (dtype === undefined || header.fortranOrder) {
    throw new Error(`${file}: want little-endian float32, float16 or uint8 in C order, got ${JSON.stringify(header)}`);
  }
  const body = bytes.subarray(header.dataOffset);
  const buffer = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  const data =
    dtype === 'float32'
      ? new Float32Array(buffer)
      : dtype === 'float16'
        ? new Uint16Array(buffer)
        : new Uint8Array(buffer);
  const count = header.shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`${file}: ${data.length} values for shape [${header.shape.join(', ')}]`);
  return { shape: [...header.shape], data, dtype };
}

/** [1, 3, H, W] → [1, H, W, 3], any element type. */
export function toNhwc<T extends Float32Array | Uint16Array | Uint8Array>(data: T, height: number, width: number): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const plane = height * width;
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[i * 3 + c] = data[c * plane + i]!;
  return out;
}
