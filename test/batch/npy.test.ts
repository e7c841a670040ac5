/**
 * The .npy header writer: the bytes numpy.save writes (fixtures taken from NumPy 2.4), data aligned to
 * 64 bytes for every shape, and a header that parses back to its shape and dtype. Loading with real
 * NumPy is test/interop/npy-numpy.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NPY_ALIGNMENT, NpyFormatError, npyHeader, npyItemSize, parseNpyHeader } from '../../src/batch/npy';

/** What `np.save(f, np.zeros(shape, '<f4'))` writes before the data (NumPy 2.4.6). */
function numpyHeader(dict: string, spaces: number): Buffer {
  const text = dict + ' '.repeat(spaces) + '\n';
  const length = Buffer.alloc(2);
  length.writeUInt16LE(text.length);
  return Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), length, Buffer.from(text, 'latin1')]);
}

test('writes the header numpy.save writes, byte for byte', () => {
  const cases: Array<[number[], string, number]> = [
    [[2, 3], "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58],
    [[0, 4], "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", 58],
    [[5], "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 60],
    [[], "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 62],
    [[123456, 1000], "{'descr': '<f4', 'fortran_order': False, 'shape': (123456, 1000), }", 50],
    [[2, 3, 4], "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 55],
  ];
  for (const [shape, dict, spaces] of cases) {
    const expected = numpyHeader(dict, spaces);
    assert.equal(expected.length, 128, `fixture for ${JSON.stringify(shape)}`);
    assert.deepEqual(npyHeader(shape), expected, JSON.stringify(shape));
  }
});

test('the data starts at a multiple of 64 bytes, after a newline, for every shape', () => {
  const shapes: number[][] = [[], [0], [1], [0, 0], [1, 1], [7, 1000], [10 ** 15, 3], [2 ** 40, 21_843], [3, 4, 5, 6]];
  // Dicts whose length lands on every remainder mod 64 (numpy pads a full 64 when nothing is needed).
  for (let n = 1; n <= 40; n++) shapes.push(Array.from({ length: n }, () => 9));
  for (const shape of shapes) {
    const header = npyHeader(shape);
    const what = JSON.stringify(shape);
    assert.equal(header.length % NPY_ALIGNMENT, 0, `${what}: ${header.length} bytes`);
    assert.equal(header[header.length - 1], 0x0a, `${what}: ends with a newline`);
    assert.equal(header.subarray(0, 8).toString('latin1'), '\x93NUMPY\x01\x00', `${what}: magic, version 1.0`);
    assert.equal(header.readUInt16LE(8), header.length - 10, `${what}: the length field counts the rest`);
    const dict = header.subarray(10).toString('latin1');
    assert.match(dict, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \([\d, ]*\), \} *\n$/, what);
  }
});

test('parses back to its shape, dtype and data offset; the data round-trips', () => {
  const rows = [
    [0.25, -1.5, 3],
    [1e-7, 0, 65504],
  ];
  const data = Float32Array.from(rows.flat());
  const file = Buffer.concat([npyHeader([2, 3], '<f4'), Buffer.from(data.buffer)]);
  const header = parseNpyHeader(file);
  assert.deepEqual(header, { descr: '<f4', fortranOrder: false, shape: [2, 3], dataOffset: 128 });
  assert.equal(npyItemSize(header.descr), 4);
  const back = new Float32Array(file.buffer.slice(file.byteOffset + header.dataOffset, file.byteOffset + file.length));
  assert.deepEqual(Array.from(back), Array.from(data));

  assert.deepEqual(parseNpyHeader(npyHeader([5])).shape, [5]);
  assert.deepEqual(parseNpyHeader(npyHeader([])).shape, []);
  assert.deepEqual(parseNpyHeader(npyHeader([0, 1000], '<f8')), {
    descr: '<f8',
    fortranOrder: false,
    shape: [0, 1000],
    dataOffset: 128,
  });
});

test('reads a version 2.0 header and refuses what is not .npy', () => {
  const text = "{'descr': '<i8', 'fortran_order': True, 'shape': (4, 2), }" + ' '.repeat(52) + '\n';
  const v2 = Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.alloc(4), Buffer.from(text, 'latin1')]);
  v2.writeUInt32LE(text.length, 8);
  assert.deepEqual(parseNpyHeader(v2), {
    descr: '<i8',
    fortranOrder: true,
    shape: [4, 2],
    dataOffset: 12 + text.length,
  });

  const good = npyHeader([2, 3]);
  assert.throws(() => parseNpyHeader(Buffer.from('PK\x03\x04 a zip, not npy')), NpyFormatError);
  assert.throws(() => parseNpyHeader(good.subarray(0, 60)), /truncated/);
  const noNewline = Buffer.from(good);
  noNewline[noNewline.length - 1] = 0x20;
  assert.throws(() => parseNpyHeader(noNewline), /newline/);
  const v9 = Buffer.from(good);
  v9[6] = 9;
  assert.throws(() => parseNpyHeader(v9), /version 9/);
});

test('refuses shapes that are not sizes', () => {
  for (const shape of [[-1, 3], [1.5], [Number.NaN], [2 ** 60]]) {
    assert.throws(() => npyHeader(shape), RangeError, JSON.stringify(shape));
  }
});
