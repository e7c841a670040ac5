/**
 * Image bytes → the model's input tensor: decode (JPEG, PNG, WebP; the first frame of an animation),
 * convert to 8-bit sRGB RGB (CMYK, 16-bit, greyscale and alpha are all handled), resize to the model's
 * size, and normalise `(pixel * scale - mean) / std` into CHW float32. Decoding runs on libuv's thread
 * pool, so several images decode in parallel while onnxruntime works on the previous batch.
 */
import sharp from 'sharp';

import { ImageError } from '../errors';
import type { ModelInfo } from '../model/model-info';

const SUPPORTED = new Set(['jpeg', 'png', 'webp']);
/** Larger images are refused before decoding (a 100-megapixel JPEG is not a scoring request). */
export const MAX_INPUT_PIXELS = 50_000_000;

// One image at a time per sharp call; parallelism comes from decoding several images at once.
sharp.concurrency(1);
sharp.cache(false);

export async function preprocessImage(
  bytes: Buffer,
  info: Pick<ModelInfo, 'width' | 'height' | 'mean' | 'std' | 'scale'>,
): Promise<Float32Array> {
  if (bytes.length === 0) throw new ImageError('empty', 'The image is empty (0 bytes).');
  let image: sharp.Sharp;
  let format: string | undefined;
  try {
    image = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'truncated', pages: 1 });
    ({ format } = await image.metadata());
  } catch (err) {
    throw classify(err);
  }
  if (!format || !SUPPORTED.has(format)) {
    throw new ImageError(
      'unsupported-format',
      `Unsupported image format ${format ?? '(unknown)'}; send JPEG, PNG or WebP.`,
    );
  }
  let data: Buffer;
  let channels: number;
  try {
    const out = await image
      .toColourspace('srgb')
      .removeAlpha()
      .resize(info.width, info.height, { fit: 'fill' })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
  } catch (err) {
    throw classify(err);
  }

  const plane = info.width * info.height;
  const tensor = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const scale = info.scale / info.std[c]!;
    const shift = info.mean[c]! / info.std[c]!;
    const source = channels >= 3 ? c : 0; // a greyscale result feeds all three channels
    const offset = c * plane;
    for (let i = 0; i < plane; i++) tensor[offset + i] = data[i * channels + source]! * scale - shift;
  }
  return tensor;
}

function classify(err: unknown): ImageError {
  const message = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(message)) {
    return new ImageError('unsupported-format', 'Not an image in a supported format; send JPEG, PNG or WebP.');
  }
  if (/pixel limit/i.test(message)) {
    return new ImageError('too-large', `The image has more than ${MAX_INPUT_PIXELS} pixels.`);
  }
  if (/premature|truncat|corrupt|invalid|bad|unexpected end|not a|libpng|jpeg|png|webp|vips/i.test(message)) {
    return new ImageError('corrupt', `The image is corrupt or truncated: ${message.split('\n')[0]}`);
  }
  return new ImageError('decode-failed', `The image could not be decoded: ${message.split('\n')[0]}`);
}
