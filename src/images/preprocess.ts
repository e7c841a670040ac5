/**
 * Image bytes → the model's input tensor, with sharp:
 *   - accepts JPEG, PNG and WebP, told apart by their bytes (never by a name or a Content-Type);
 *     anything else (GIF, TIFF, AVIF, SVG, text) is 'unsupported-format', before any pixel is decoded;
 *   - animated or multi-page images: the first frame is used (pages: 1), as PIL's Image.open does;
 *   - refuses images over `maxInputPixels` ('too-large') from the header, before decoding;
 *   - truncated or damaged data is 'corrupt' (failOn: 'truncated': a half-received JPEG is an error,
 *     not a grey bottom half);
 *   - CMYK, 16-bit, greyscale and palette images are converted to 8-bit sRGB; an alpha channel is
 *     dropped (the colour under it is kept, as PIL's convert('RGB') does);
 *   - resized to the model's width × height (stretched, no crop), then (pixel * scale - mean) / std,
 *     laid out CHW.
 * EXIF orientation is not applied, matching the PIL pipelines most models are trained with.
 */
import sharp from 'sharp';

import { ImageError } from '../errors';
import type { ModelInfo } from '../model/model-info';

const SUPPORTED = new Set(['jpeg', 'png', 'webp']);
/** Larger images are refused before decoding (50 megapixels: a 8660×5773 photo, 150 MB decoded). */
export const MAX_INPUT_PIXELS = 50_000_000;

// sharp.concurrency is libvips' thread count *per image*. Scoring decodes many small images at once
// (each call runs on libuv's thread pool, 4 threads by default), so one libvips thread per image keeps
// the total at about the pool size instead of pool size × cores, and leaves cores for onnxruntime.
// The operation cache is off: every image is different, caching only holds memory.
sharp.concurrency(1);
sharp.cache(false);

export interface PreprocessOptions {
  /** Refuse images with more pixels than this (default MAX_INPUT_PIXELS). */
  maxInputPixels?: number;
}

export async function preprocessImage(
  bytes: Buffer,
  info: Pick<ModelInfo, 'width' | 'height' | 'mean' | 'std' | 'scale'>,
  opts: PreprocessOptions = {},
): Promise<Float32Array> {
  if (bytes.length === 0) throw new ImageError('empty', 'The image is empty (0 bytes). Send the image file itself.');
  const maxPixels = opts.maxInputPixels ?? MAX_INPUT_PIXELS;
  const load = () => sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1 });

  let format: string | undefined;
  try {
    ({ format } = await load().metadata());
  } catch (err) {
    throw asImageError(err, maxPixels);
  }
  if (!format || !SUPPORTED.has(format)) {
    throw new ImageError(
      'unsupported-format',
      `Unsupported image format: ${format ?? 'unknown'}. Send JPEG, PNG or WebP.`,
    );
  }

  let data: Buffer;
  let channels: number;
  try {
    const out = await load()
      .toColourspace('srgb')
      .removeAlpha()
      .resize(info.width, info.height, { fit: 'fill' })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
  } catch (err) {
    throw asImageError(err, maxPixels);
  }
  const plane = info.width * info.height;
  if (data.length !== plane * channels) {
    throw new ImageError('decode-failed', `The image decoded to ${data.length} bytes, not ${plane * channels}.`);
  }

  const tensor = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const scale = info.scale / info.std[c]!;
    const shift = info.mean[c]! / info.std[c]!;
    const source = channels >= 3 ? c : 0; // a single-channel result feeds all three channels
    const offset = c * plane;
    for (let i = 0; i < plane; i++) tensor[offset + i] = data[i * channels + source]! * scale - shift;
  }
  return tensor;
}

/** sharp's errors → stable reasons. Its messages are not an API, so anything unrecognised is 'decode-failed'. */
function asImageError(err: unknown, maxPixels: number): ImageError {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  if (/unsupported image format/i.test(message)) {
    return new ImageError('unsupported-format', 'Not an image in a supported format. Send JPEG, PNG or WebP.');
  }
  if (/pixel limit/i.test(message)) {
    return new ImageError('too-large', `The image has more than ${maxPixels} pixels. Resize it before sending.`);
  }
  // What the loaders (libjpeg, libpng/spng, libwebp via libvips) say about damaged data.
  if (
    /corrupt|premature|truncat|invalid|bad |unexpected end|read error|crc|zlib|decode|vips|jpeg|png|webp/i.test(message)
  ) {
    return new ImageError('corrupt', `The image is corrupt or truncated (${message}). Send the complete file.`);
  }
  return new ImageError('decode-failed', `The image could not be decoded (${message}).`);
}
