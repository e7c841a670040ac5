/** Decoding is strict about what it accepts and forgiving about what it can convert. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import { ImageError } from '../../src/errors';
import { preprocessImage } from '../../src/images/preprocess';
import { makeColourJpeg } from '../../src/images/sample-images';

const INFO = {
  width: 8,
  height: 8,
  scale: 1 / 255,
  mean: [0, 0, 0] as [number, number, number],
  std: [1, 1, 1] as [number, number, number],
};

async function rejectsWith(bytes: Buffer, reason: string): Promise<void> {
  await assert.rejects(preprocessImage(bytes, INFO), (err: unknown) => {
    assert.ok(err instanceof ImageError, String(err));
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

function meanOfChannel(t: Float32Array, c: number): number {
  const plane = INFO.width * INFO.height;
  let sum = 0;
  for (let i = 0; i < plane; i++) sum += t[c * plane + i]!;
  return sum / plane;
}

describe('preprocessImage', () => {
  test('a JPEG becomes a normalised CHW tensor of the model size', async () => {
    const t = await preprocessImage(await makeColourJpeg('red', { size: 50, noise: 0 }), INFO);
    assert.equal(t.length, 3 * 8 * 8);
    assert.ok(meanOfChannel(t, 0) > 0.9, 'red channel high');
    assert.ok(meanOfChannel(t, 1) < 0.1 && meanOfChannel(t, 2) < 0.1, 'green and blue low');
  });

  test('greyscale, alpha, 16-bit and CMYK inputs are converted to RGB', async () => {
    const grey = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .greyscale()
      .png()
      .toBuffer();
    const g = await preprocessImage(grey, INFO);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(meanOfChannel(g, c) - 128 / 255) < 0.02);

    const alpha = await sharp({
      create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    assert.ok(meanOfChannel(await preprocessImage(alpha, INFO), 2) > 0.9);

    const sixteen = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 0, g: 255, b: 0 } } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    assert.ok(meanOfChannel(await preprocessImage(sixteen, INFO), 1) > 0.9);

    const cmyk = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 255, g: 255, b: 0 } } })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    const y = await preprocessImage(cmyk, INFO);
    assert.ok(meanOfChannel(y, 0) > 0.8 && meanOfChannel(y, 1) > 0.8 && meanOfChannel(y, 2) < 0.25);
  });

  test('empty, unsupported, corrupt and truncated inputs get stable reasons', async () => {
    await rejectsWith(Buffer.alloc(0), 'empty');
    await rejectsWith(Buffer.from('just some text, not an image'), 'unsupported-format');
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } })
      .gif()
      .toBuffer();
    await rejectsWith(gif, 'unsupported-format');
    const jpeg = await makeColourJpeg('blue', { size: 64 });
    await rejectsWith(jpeg.subarray(0, jpeg.length / 2), 'corrupt');
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'green' } })
      .png()
      .toBuffer();
    const garbled = Buffer.from(png);
    garbled.fill(0x55, 40, 200);
    await assert.rejects(preprocessImage(garbled, INFO), ImageError);
  });

  test('absurd dimensions are refused before decoding', async () => {
    const huge = await sharp({ create: { width: 8000, height: 8000, channels: 3, background: 'white' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    await rejectsWith(huge, 'too-large');
  });
});
