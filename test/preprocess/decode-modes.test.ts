/**
 * The spec's `decode`: how a JPEG is decoded before the resize. `exact` is the full-size decode and then
 * the kernel, the same bytes as decoding the whole image first and resampling it; `fast` and `draft` decode
 * at a DCT scale (libjpeg's 1/2, 1/4, 1/8) when the resize is large enough, `draft` at a smaller one. PNG
 * and small shrinks come out the same in every mode. (How close
 * `fast` and `draft` are to `exact` on real photographs, through a real classifier: decode-agreement.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import { preprocessImage } from '../../src/preprocess/preprocess-image';
import type { DecodeMode } from '../../src/shared/preprocess-types';
import { seededRandom } from '../../src/demo/seeded-random';

const SIZE = 224;
/** Pixel levels out: (pixel × 1 − 0) / 1, RGB, HWC, so a tensor compares with sharp's raw bytes. */
const LEVELS = {
  width: SIZE,
  height: SIZE,
  scale: 1,
  mean: [0, 0, 0] as [number, number, number],
  std: [1, 1, 1] as [number, number, number],
  layout: 'NHWC' as const,
  interpolation: 'bilinear' as const,
};

/** A detailed image (upscaled noise and grain), so that decoding at a DCT scale shows. */
async function detailed(width: number, height: number, format: 'jpeg' | 'png', orientation?: number): Promise<Buffer> {
  const random = seededRandom(width * 7 + height);
  const small = Buffer.alloc((width >> 3) * (height >> 3) * 3);
  for (let i = 0; i < small.length; i++) small[i] = Math.floor(random() * 256);
  const base = await sharp(small, { raw: { width: width >> 3, height: height >> 3, channels: 3 } })
    .resize(width, height, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  for (let i = 0; i < base.length; i++) base[i] = Math.max(0, Math.min(255, base[i]! + Math.floor(random() * 40) - 20));
  let image = sharp(base, { raw: { width, height, channels: 3 } });
  if (orientation) image = image.withMetadata({ orientation });
  return format === 'jpeg' ? image.jpeg({ quality: 90 }).toBuffer() : image.png().toBuffer();
}

const run = (bytes: Buffer, decode: DecodeMode, orientation: 'ignore' | 'exif' = 'ignore') =>
  preprocessImage(bytes, { ...LEVELS, decode, orientation });

function meanAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('decode modes', () => {
  test('exact is the whole image decoded (and turned, when asked), then resampled with the kernel', async () => {
    for (const [orientation, applied] of [
      [undefined, 'ignore'],
      [6, 'exif'],
    ] as const) {
      const jpeg = await detailed(2048, 1536, 'jpeg', orientation);
      let whole = sharp(jpeg);
      if (applied === 'exif') whole = whole.rotate();
      const full = await whole.raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([full.info.width, full.info.height], applied === 'exif' ? [1536, 2048] : [2048, 1536]);
      const reference = await sharp(full.data, {
        raw: { width: full.info.width, height: full.info.height, channels: 3 },
      })
        .resize(SIZE, SIZE, { fit: 'fill', kernel: 'linear' })
        .raw()
        .toBuffer();
      const exact = await run(jpeg, 'exact', applied);
      assert.equal(meanAbs(exact, Float32Array.from(reference)), 0, `orientation ${String(orientation)}`);
      // The other modes did decode at a DCT scale (the extract is what keeps exact from it).
      assert.ok(meanAbs(await run(jpeg, 'fast', applied), exact) > 0.01);
    }
  });

  test('fast and draft decode a large JPEG at a DCT scale: a level or so from exact on average', async () => {
    const jpeg = await detailed(2048, 1536, 'jpeg');
    const exact = await run(jpeg, 'exact');
    const fast = await run(jpeg, 'fast');
    const draft = await run(jpeg, 'draft');
    const fastOff = meanAbs(fast, exact);
    const draftOff = meanAbs(draft, exact);
    // Different pixels (a DCT scale was used), a fraction of a level to a few levels apart on average
    // (measured 1.2 and 1.0: the DCT scale is itself a good box filter, so draft is not always further).
    assert.ok(fastOff > 0.01 && fastOff < 3, `fast is ${fastOff} levels from exact`);
    assert.ok(draftOff > 0.01 && draftOff < 3, `draft is ${draftOff} levels from exact`);
    assert.ok(meanAbs(fast, draft) > 0.01, 'draft decoded at the same scale as fast');
  });

  test('PNG and a JPEG too small for a DCT scale: the same in every mode', async () => {
    const cases: Array<[string, Buffer, 'ignore' | 'exif']> = [
      ['png', await detailed(2048, 1536, 'png'), 'ignore'],
      ['a 400×300 JPEG (shrink under 2)', await detailed(400, 300, 'jpeg'), 'ignore'],
    ];
    for (const [name, bytes, orientation] of cases) {
      const exact = await run(bytes, 'exact', orientation);
      for (const mode of ['fast', 'draft'] as const) {
        assert.equal(meanAbs(await run(bytes, mode, orientation), exact), 0, `${name}: ${mode} differs from exact`);
      }
    }
  });

  test('the default is fast', async () => {
    const jpeg = await detailed(2048, 1536, 'jpeg');
    const unset = await preprocessImage(jpeg, LEVELS);
    assert.equal(meanAbs(unset, await run(jpeg, 'fast')), 0);
  });
});
