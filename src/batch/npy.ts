/**
 * NumPy's `.npy` format, version 1.0 (numpy/lib/format.py), for the batch job's raw outputs: a header
 * that `numpy.load` reads, then the array's bytes, C order. The header is written exactly as `numpy.save`
 * writes it (same dict, same spare room for the first axis to grow, same padding), so the data starts
 * at a multiple of 64 bytes and a file we write is byte for byte the file NumPy would write.
 *
 *   \x93NUMPY  0x01 0x00  <header length, uint16 little-endian>  {'descr': '<f4', 'fortran_order': False,
 *   'shape': (N, C), }<spaces>\n  <N × C little-endian float32>
 *
 * No npm package is used: there is no well-kept one for writing (only readers), and the header is a few
 * lines. `parseNpyHeader` reads version 1.0, 2.0 and 3.0 headers back (for tests and checks).
 */

export const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** The data offset is a multiple of this (numpy's ARRAY_ALIGN). */
export const NPY_ALIGNMENT = 64;
/** numpy leaves room in the header for the first axis to grow to this many digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;
const PREFIX_BYTES = NPY_MAGIC.length + 2 + 2; // magic, version, uint16 header length

/** dtypes as NumPy spells them in `descr`: little-endian float32 is '<f4'. */
export type NpyDescr = '<f4' | '<f8' | '<i4' | '<i8' | '|u1';

export interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Where the array's bytes start (the header's total length). */
  dataOffset: number;
}

/** Thrown when bytes are not a .npy header this module can read. */
export class NpyFormatError extends Error {
  override readonly name = 'NpyFormatError';
}

/** The complete header (magic to newline) of a C-order array of this shape and dtype. */
export function npyHeader(shape: readonly number[], descr: NpyDescr = '<f4'): Buffer {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`npy shape ${JSON.stringify(shape)}: not a size`);
  }
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${pythonTuple(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  const withNewline = dict.length + 1;
  const padding = NPY_ALIGNMENT - ((PREFIX_BYTES + withNewline) % NPY_ALIGNMENT); // 1-64, as numpy pads
  const headerLength = withNewline + padding;
  if (headerLength > 0xffff) throw new RangeError(`npy header of ${headerLength} bytes needs format 2.0`);
  const out = Buffer.alloc(PREFIX_BYTES + headerLength, ' ');
  NPY_MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(headerLength, 8);
  out.write(dict, PREFIX_BYTES, 'latin1');
  out[out.length - 1] = 0x0a;
  return out;
}

/** Bytes per element of a descr ('<f4' → 4). */
export function npyItemSize(descr: string): number {
  const m = /^[<>|=]?[fiub](\d+)$/.exec(descr);
  if (!m) throw new NpyFormatError(`unsupported npy descr ${JSON.stringify(descr)}`);
  return Number(m[1]);
}

/** Reads the header at the start of `bytes` (at least the header's length of the file). */
export function parseNpyHeader(bytes: Buffer): NpyHeader {
  if (bytes.length < PREFIX_BYTES || !bytes.subarray(0, NPY_MAGIC.length).equals(NPY_MAGIC)) {
    throw new NpyFormatError('not a .npy file (no \\x93NUMPY magic)');
  }
  const major = bytes[6]!;
  let lengthBytes: number;
  if (major === 1) lengthBytes = 2;
  else if (major === 2 || major === 3) lengthBytes = 4;
  else throw new NpyFormatError(`unsupported .npy format version ${major}.${bytes[7]}`);
  const start = NPY_MAGIC.length + 2 + lengthBytes;
  if (bytes.length < start) throw new NpyFormatError('truncated .npy header');
  const length = lengthBytes === 2 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  if (bytes.length < start + length) throw new NpyFormatError('truncated .npy header');
  const text = bytes.subarray(start, start + length).toString(major === 3 ? 'utf8' : 'latin1');
  if (!text.endsWith('\n')) throw new NpyFormatError('the .npy header does not end with a newline');

  const m = /^\{\s*(.*?)\s*\}\s*$/s.exec(text);
  if (!m) throw new NpyFormatError(`the .npy header is not a dict: ${JSON.stringify(text)}`);
  const body = m[1]!;
  const descr = /'descr':\s*'([^']*)'/.exec(body)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(body)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(body)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyFormatError(`the .npy header lacks descr, fortran_order or shape: ${JSON.stringify(text)}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      if (!/^\d+$/.test(s)) throw new NpyFormatError(`bad .npy shape (${shapeText})`);
      return Number(s);
    });
  return { descr, fortranOrder: fortran === 'True', shape, dataOffset: start + length };
}

/** Python's repr of a tuple of ints: (), (5,), (2, 3). */
function pythonTuple(values: readonly number[]): string {
  if (values.length === 1) return `(${values[0]},)`;
  return `(${values.join(', ')})`;
}
