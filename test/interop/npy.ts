/** Reads NumPy .npy files (format 1.0/2.0/3.0) of little-endian float32, float16 or uint8 in C order. */
import fs from 'node:fs/promises';

export interface NpyArray {
  shape: number[];
  /** float32 as numbers; float16 as its bits; uint8 as is. */
  data: Float32Array | Uint16Array | Uint8Array;
  dtype: 'float32' | 'float16' | 'uint8';
}

const DTYPES = { '<f4': 'float32', '<f2': 'float16', '|u1': 'uint8' } as const;

export async function readNpy(file: string): Promise<NpyArray> {
  const bytes = await fs.readFile(file);
  if (bytes.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error(`${file} is not a .npy file`);
  const major = bytes[6]!;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.subarray(start, start + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] as keyof typeof DTYPES | undefined;
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || !(descr in DTYPES) || fortran !== 'False' || shape === undefined) {
    throw new Error(`${file}: want little-endian float32, float16 or uint8 in C order, got ${header.trim()}`);
  }
  const dims = shape
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d.length > 0)
    .map(Number);
  const body = bytes.subarray(start + headerLength);
  const buffer = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  const dtype = DTYPES[descr];
  const data =
    dtype === 'float32'
      ? new Float32Array(buffer)
      : dtype === 'float16'
        ? new Uint16Array(buffer)
        : new Uint8Array(buffer);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`${file}: ${data.length} values for shape [${dims.join(', ')}]`);
  return { shape: dims, data, dtype };
}

/** [1, 3, H, W] → [1, H, W, 3], any element type. */
export function toNhwc<T extends Float32Array | Uint16Array | Uint8Array>(data: T, height: number, width: number): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const plane = height * width;
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[i * 3 + c] = data[c * plane + i]!;
  return out;
}
