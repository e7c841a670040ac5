/** Decoding is strict about what it accepts and forgiving about what it can convert. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import { ImageError } from '../../src/errors';
import { centreCrop, preprocessImage, resizedSize } from '../../src/preprocess/preprocess-image';
import { makeColourJpeg } from '../../src/demo/sample-images';

const INFO = {
  width: 8,
  height: 6,
  scale: 1 / 255,
  mean: [0, 0, 0] as [number, number, number],
  std: [1, 1, 1] as [number, number, number],
};
const PLANE = INFO.width * INFO.height;

async function rejectsWith(bytes: Buffer, reason: string, message?: RegExp, opts = {}): Promise<void> {
  await assert.rejects(preprocessImage(bytes, INFO, opts), (err: unknown) => {
    assert.ok(err instanceof ImageError, String(err));
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

function channelMean(t: Float32Array, c: number): number {
  let sum = 0;
  for (let i = 0; i < PLANE; i++) sum += t[c * PLANE + i]!;
  return sum / PLANE;
}

function solid(rgb: { r: number; g: number; b: number; alpha?: number }, channels: 3 | 4 = 3, size = 20): sharp.Sharp {
  return sharp({ create: { width: size, height: size, channels, background: rgb } });
}

describe('preprocessImage', () => {
  test('CHW float32 of the model size, (pixel * scale - mean) / std per channel', async () => {
    const info = { ...INFO, mean: [0.1, 0.2, 0.3] as const, std: [0.5, 0.25, 0.125] as const };
    const png = await solid({ r: 200, g: 100, b: 50 }, 3, 30).png().toBuffer();
    const t = await preprocessImage(png, { ...info, mean: [...info.mean], std: [...info.std] });
    assert.equal(t.length, 3 * PLANE);
    const expected = [200, 100, 50].map((v, c) => (v / 255 - info.mean[c]!) / info.std[c]!);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < PLANE; i++) {
        assert.ok(Math.abs(t[c * PLANE + i]! - expected[c]!) < 1e-5, `channel ${c} pixel ${i}: ${t[c * PLANE + i]}`);
      }
    }
  });

  test('JPEG, PNG and WebP are accepted; the channel order is RGB', async () => {
    const jpeg = await makeColourJpeg('red', { size: 50, noise: 0, distractor: 0 });
    const webp = await solid({ r: 0, g: 0, b: 255 }).webp({ lossless: true }).toBuffer();
    const r = await preprocessImage(jpeg, INFO);
    assert.ok(channelMean(r, 0) > 0.9 && channelMean(r, 1) < 0.1 && channelMean(r, 2) < 0.1);
    const b = await preprocessImage(webp, INFO);
    assert.ok(channelMean(b, 2) > 0.99 && channelMean(b, 0) < 0.01);
  });

  test('greyscale, alpha, 16-bit and CMYK inputs are converted to 8-bit sRGB', async () => {
    const grey = await solid({ r: 128, g: 128, b: 128 }).toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(grey).metadata()).channels, 1, 'really single-channel');
    const g = await preprocessImage(grey, INFO);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(channelMean(g, c) - 128 / 255) < 0.01);

    const alpha = await solid({ r: 0, g: 0, b: 255, alpha: 0.5 }, 4).png().toBuffer();
    const a = await preprocessImage(alpha, INFO);
    assert.ok(channelMean(a, 2) > 0.99 && channelMean(a, 0) < 0.01, 'alpha dropped, colour kept');

    const sixteen = await solid({ r: 0, g: 255, b: 0 }).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(sixteen).metadata()).depth, 'ushort', 'really 16-bit');
    const s = await preprocessImage(sixteen, INFO);
    assert.ok(channelMean(s, 1) > 0.99 && channelMean(s, 0) < 0.01);

    const cmyk = await solid({ r: 255, g: 255, b: 0 }).toColourspace('cmyk').jpeg().toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk', 'really CMYK');
    const y = await preprocessImage(cmyk, INFO);
    assert.ok(channelMean(y, 0) > 0.8 && channelMean(y, 1) > 0.8 && channelMean(y, 2) < 0.25);
  });

  test('an animated image is read from its first frame', async () => {
    const red = await solid({ r: 255, g: 0, b: 0 }).png().toBuffer();
    const blue = await solid({ r: 0, g: 0, b: 255 }).png().toBuffer();
    const animated = await sharp([red, blue], { join: { animated: true } })
      .webp({ lossless: true })
      .toBuffer();
    assert.equal((await sharp(animated).metadata()).pages, 2);
    const t = await preprocessImage(animated, INFO);
    assert.ok(channelMean(t, 0) > 0.99 && channelMean(t, 2) < 0.01, 'the red first frame, not both stacked');
  });

  test('empty, unsupported, corrupt and truncated inputs get stable reasons', async () => {
    await rejectsWith(Buffer.alloc(0), 'empty', /0 bytes/);
    await rejectsWith(Buffer.from('just some text, not an image'), 'unsupported-format', /JPEG, PNG or WebP/);
    for (const format of ['gif', 'tiff'] as const) {
      await rejectsWith(
        await solid({ r: 1, g: 2, b: 3 }).toFormat(format).toBuffer(),
        'unsupported-format',
        /gif|tiff/,
      );
    }
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>';
    await rejectsWith(Buffer.from(svg), 'unsupported-format', /svg/);

    const jpeg = await makeColourJpeg('blue', { size: 64 });
    await rejectsWith(jpeg.subarray(0, jpeg.length / 2), 'corrupt', /corrupt or truncated/);
    await rejectsWith(jpeg.subarray(0, 20), 'corrupt');
    const png = await solid({ r: 0, g: 128, b: 0 }, 3, 64).png().toBuffer();
    await rejectsWith(png.subarray(0, png.length - 30), 'corrupt');
    const webp = await makeColourJpeg('red', { size: 64 }).then((j) => sharp(j).webp().toBuffer());
    await rejectsWith(webp.subarray(0, webp.length - 100), 'corrupt');
    const garbled = Buffer.from(png);
    garbled.fill(0x55, 40, 200);
    await rejectsWith(garbled, 'corrupt');
  });

  test('absurd dimensions are refused from the header, before decoding', async () => {
    const huge = await solid({ r: 255, g: 255, b: 255 }, 3, 8000).png({ compressionLevel: 9 }).toBuffer();
    await rejectsWith(huge, 'too-large', /more than 50000000 pixels/);
    const small = await solid({ r: 255, g: 255, b: 255 }, 3, 100).png().toBuffer();
    await rejectsWith(small, 'too-large', /more than 5000 pixels/, { maxInputPixels: 5000 });
    assert.equal((await preprocessImage(small, INFO, { maxInputPixels: 10_000 })).length, 3 * PLANE);
  });

  test('the spec: shorter-side resize and centre crop, BGR and HWC, EXIF orientation when asked', async () => {
    // Three vertical bands, red | green | blue: the centre crop of a shorter-side resize is all green.
    const bands = (width: number, height: number) =>
      sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
        .composite(
          (['#ff0000', '#00ff00', '#0000ff'] as const).map((colour, i) => ({
            input: { create: { width: width / 3, height, channels: 3 as const, background: colour } },
            left: (i * width) / 3,
            top: 0,
          })),
        )
        .png()
        .toBuffer();
    const spec = {
      width: 8,
      height: 8,
      scale: 1,
      mean: [0, 0, 0] as [number, number, number],
      std: [1, 1, 1] as [number, number, number],
      resize: { shorterSide: 12 },
      crop: { width: 8, height: 8 },
    };
    const wide = await preprocessImage(await bands(300, 120), spec);
    assert.ok(Math.abs(wide[0]! - 0) < 1 && Math.abs(wide[64]! - 255) < 1, 'green in the middle, CHW');
    const bgr = await preprocessImage(await bands(300, 120), { ...spec, channelOrder: 'BGR', layout: 'NHWC' });
    assert.deepEqual([...bgr.subarray(0, 3)].map(Math.round), [0, 255, 0], 'B, G, R of the first pixel');
    const stretched = await preprocessImage(await bands(300, 120), { ...spec, resize: undefined, crop: undefined });
    assert.ok(stretched[0]! > 250, 'without a crop the red band is at the left edge');

    // A JPEG stored sideways (orientation 6: rotate 90° clockwise to view): its left half is red.
    const halves = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#0000ff' } })
      .composite([
        { input: { create: { width: 20, height: 20, channels: 3, background: '#ff0000' } }, left: 0, top: 0 },
      ])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const flat = { ...spec, resize: { width: 8, height: 8 }, crop: undefined };
    const ignored = await preprocessImage(halves, flat);
    assert.ok(ignored[0]! > 200 && ignored[7]! < 50, 'as stored: red on the left');
    const applied = await preprocessImage(halves, { ...flat, orientation: 'exif' });
    assert.ok(applied[0]! > 200 && applied[63]! < 50, 'as viewed: red on top');
  });

  test('a stretch spec decodes in one sharp call, with the same result as when the header is read first', async () => {
    // With EXIF orientation asked for, the size is read first (metadata, then the pipeline); an image without
    // an orientation tag then comes out as the one-call path gives it.
    const grey = await solid({ r: 90, g: 90, b: 90 }).toColourspace('b-w').png().toBuffer();
    const inputs: Record<string, Buffer> = {
      jpeg: await makeColourJpeg('green', { size: 120 }),
      'jpeg at the model size': await makeColourJpeg('red', { size: 8 }),
      'jpeg upscaled': await makeColourJpeg('blue', { size: 5 }),
      cmyk: await solid({ r: 255, g: 200, b: 0 }).toColourspace('cmyk').jpeg().toBuffer(),
      png: await solid({ r: 10, g: 200, b: 30 }, 3, 33).png().toBuffer(),
      'png with alpha': await solid({ r: 0, g: 0, b: 255, alpha: 0.5 }, 4).png().toBuffer(),
      'png 16-bit': await solid({ r: 0, g: 255, b: 0 }).toColourspace('rgb16').png().toBuffer(),
      'png greyscale': grey,
      webp: await makeColourJpeg('red', { size: 64 }).then((j) => sharp(j).webp().toBuffer()),
    };
    for (const [name, bytes] of Object.entries(inputs)) {
      for (const decode of ['fast', 'draft'] as const) {
        const one = await preprocessImage(bytes, { ...INFO, decode });
        const read = await preprocessImage(bytes, { ...INFO, decode, orientation: 'exif' });
        assert.deepEqual(one, read, `${name}, decode ${decode}`);
      }
    }
    // What the first bytes claim does not excuse the rest: a JPEG signature on garbage is corrupt.
    await rejectsWith(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(200, 0x41)]), 'corrupt');
  });

  test('resize and crop geometry follows torchvision', () => {
    assert.deepEqual(resizedSize({ width: 451, height: 300 }, { width: 0, height: 0, resize: { shorterSide: 256 } }), {
      width: 384,
      height: 256,
    });
    assert.deepEqual(resizedSize({ width: 300, height: 451 }, { width: 0, height: 0, resize: { shorterSide: 256 } }), {
      width: 256,
      height: 384,
    });
    // int(round((size - crop) / 2.0)): Python rounds half to even.
    assert.equal(centreCrop({ width: 225, height: 224 }, { width: 224, height: 224 }).left, 0);
    assert.equal(centreCrop({ width: 227, height: 224 }, { width: 224, height: 224 }).left, 2);
    assert.equal(centreCrop({ width: 384, height: 256 }, { width: 224, height: 224 }).top, 16);
    assert.throws(() => centreCrop({ width: 100, height: 300 }, { width: 224, height: 224 }), /smaller than the crop/);
  });
});
