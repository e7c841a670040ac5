/**
 * IEEE 754 half precision (float16 model inputs and outputs, the Open Inference Protocol's FP16) to and
 * from JavaScript numbers, by hand:
 * the project's TypeScript lib (ES2022) has neither Float16Array nor DataView.setFloat16, and
 * onnxruntime takes float16 tensors as their bits in a Uint16Array.
 */

/** IEEE 754 half-precision bits of `value`, rounded to nearest even (as Math.f16round). */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  // Round from the double, not the float32, to avoid double rounding.
  const abs = Math.abs(value);
  if (abs >= 65520) return sign | 0x7c00;
  if (abs < 2 ** -14) {
    // Subnormal: a multiple of 2^-24; Math.round would round halves up, so round half to even by hand.
    const scaled = abs * 2 ** 24;
    let m = Math.floor(scaled);
    const rest = scaled - m;
    if (rest > 0.5 || (rest === 0.5 && m % 2 === 1)) m++;
    return sign | m;
  }
  const e = Math.floor(Math.log2(abs));
  const exponent = abs >= 2 ** (e + 1) ? e + 1 : abs < 2 ** e ? e - 1 : e;
  const scaled = (abs / 2 ** exponent - 1) * 1024;
  let m = Math.floor(scaled);
  const rest = scaled - m;
  if (rest > 0.5 || (rest === 0.5 && m % 2 === 1)) m++;
  return sign | ((exponent + 15) * 1024 + m);
}

/** The number a half-precision bit pattern stands for. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
