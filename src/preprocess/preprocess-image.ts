/**
 * Image bytes → the model's input tensor, with sharp:
 *   - accepts JPEG, PNG and WebP, told apart by their bytes (never by a name or a Content-Type);
 *     anything else (GIF, TIFF, AVIF, SVG, text) is 'unsupported-format', before any pixel is decoded;
 *   - animated or multi-page images: the first frame is used (pages: 1), as PIL's Image.open does;
 *   - refuses images over `maxInputPixels` ('too-large') from the header, before decoding;
 *   - one sharp call per image where the spec stretches to a fixed size (the default) and neither decodes
 *     'exact' nor applies EXIF orientation: the format is then told by the first bytes (as libvips tells
 *     it) and the pixel limit checked by the load; otherwise a metadata call reads the size first;
 *   - truncated or damaged data is 'corrupt' (failOn: 'truncated': a half-received JPEG is an error,
 *     not a grey bottom half);
 *   - CMYK, 16-bit, greyscale and palette images are converted to 8-bit sRGB; an alpha channel is
 *     dropped (the colour under it is kept, as PIL's convert('RGB') does);
 *   - then the preprocessing spec (src/preprocess/preprocess-spec.ts): EXIF orientation applied or not
 *     (default not, as PIL's Image.open does), a JPEG decoded at full size or a DCT scale (`decode`), resized (shorter side kept in proportion, as torchvision's
 *     Resize(n); or stretched) with the spec's kernel, centre-cropped (torchvision's CenterCrop offsets),
 *     channels in RGB or BGR order, (pixel * scale - mean) / std, laid out CHW or HWC.
 * The result is float32; the classifier converts it to the model's input dtype (float16, uint8).
 */
import sharp from 'sharp';

import { ImageError } from '../errors';
import type { ResolvedPreprocess } from '../shared/preprocess-types';

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

/** What preprocessImage needs: the tensor size and normalisation, and optionally the rest of a spec. */
export type ImageTransform = Pick<ResolvedPreprocess, 'width' | 'height' | 'mean' | 'std' | 'scale'> &
  Partial<Omit<ResolvedPreprocess, 'width' | 'height' | 'mean' | 'std' | 'scale'>>;

const KERNELS = { nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic' } as const;

export async function preprocessImage(
  bytes: Buffer,
  info: ImageTransform,
  opts: PreprocessOptions = {},
): Promise<Float32Array> {
  if (bytes.length === 0) throw new ImageError('empty', 'The image is empty (0 bytes). Send the image file itself.');
  const maxPixels = opts.maxInputPixels ?? MAX_INPUT_PIXELS;
  const load = () => sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1 });

  // One sharp call where the input's size changes nothing (a stretch to a fixed size, the default): the
  // format is told from the bytes as libvips tells it, the pixel limit is checked by the load from the
  // header. Otherwise the header is read first (metadata), for the size the resize and crop follow.
  const stretch = stretchTo(info);
  const size = stretch && oneCallFormat(bytes) ? undefined : await headerSize(load, info, maxPixels);
  const resized = size ? resizedSize(size, info) : stretch!;
  const crop = info.crop ? centreCrop(resized, info.crop) : undefined;
  let data: Buffer;
  let channels: number;
  try {
    let pipeline = load();
    if (info.orientation === 'exif') pipeline = pipeline.rotate();
    pipeline = pipeline.toColourspace('srgb').removeAlpha();
    if (!size || resized.width !== size.width || resized.height !== size.height) {
      const decode = info.decode ?? 'fast';
      // libvips decodes a JPEG at a DCT scale (1/2, 1/4, 1/8) when the resize allows it (sharp's
      // shrink-on-load): with fastShrinkOnLoad false it leaves at least twice the resized size ('fast'),
      // with true at least the resized size ('draft'). A whole-frame extract before the resize (of the
      // image as turned, when it is) turns it off ('exact').
      if (decode === 'exact' && size) pipeline = pipeline.extract({ left: 0, top: 0, ...size });
      pipeline = pipeline.resize(resized.width, resized.height, {
        fit: 'fill',
        kernel: KERNELS[info.interpolation ?? 'bilinear'],
        fastShrinkOnLoad: decode === 'draft',
      });
    }
    if (crop) pipeline = pipeline.extract(crop);
    const out = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
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
  const bgr = info.channelOrder === 'BGR';
  const hwc = info.layout === 'NHWC';
  for (let c = 0; c < 3; c++) {
    const scale = info.scale / info.std[c]!;
    const shift = info.mean[c]! / info.std[c]!;
    const rgb = bgr ? 2 - c : c;
    const source = channels >= 3 ? rgb : 0; // a single-channel result feeds all three channels
    if (hwc) {
      for (let i = 0; i < plane; i++) tensor[i * 3 + c] = data[i * channels + source]! * scale - shift;
    } else {
      const offset = c * plane;
      for (let i = 0; i < plane; i++) tensor[offset + i] = data[i * channels + source]! * scale - shift;
    }
  }
  return tensor;
}

/**
 * The size of a stretch (resize to width × height) when it is all the image's size would be read for:
 * not for the 'exact' decode (its whole-frame extract needs the size) nor EXIF orientation (it swaps it).
 */
function stretchTo(info: ImageTransform): { width: number; height: number } | undefined {
  const resize = info.resize ?? (info.crop ? undefined : { width: info.width, height: info.height });
  if (!resize || !('width' in resize) || info.decode === 'exact' || info.orientation === 'exif') return undefined;
  return resize;
}

/**
 * JPEG (FF D8 FF), PNG (its 8-byte signature) or WebP (RIFF....WEBP) by their first bytes: what libvips'
 * jpegload, pngload and webpload take (jpegload takes FF D8 alone), so sharp loads such bytes with one of
 * those three. Anything else goes through metadata, for its format's name in the refusal.
 */
function oneCallFormat(bytes: Buffer): boolean {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return true;
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return true;
  return bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP';
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The image's size from its header (as turned, with EXIF orientation); refuses unsupported formats. */
async function headerSize(
  load: () => sharp.Sharp,
  info: ImageTransform,
  maxPixels: number,
): Promise<{ width: number; height: number }> {
  let format: string | undefined;
  let size: { width: number; height: number };
  try {
    const meta = await load().metadata();
    format = meta.format;
    // EXIF orientations 5-8 swap width and height when applied.
    const swap = info.orientation === 'exif' && (meta.orientation ?? 1) >= 5;
    size = swap ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
  } catch (err) {
    throw asImageError(err, maxPixels);
  }
  if (!format || !SUPPORTED.has(format)) {
    throw new ImageError(
      'unsupported-format',
      `Unsupported image format: ${format ?? 'unknown'}. Send JPEG, PNG or WebP.`,
    );
  }
  return size;
}

/**
 * The size the image is resized to: torchvision's Resize(n) for a shorter side (the longer side is
 * n * long / short, rounded down), a stretch for width × height, the input size without a resize spec
 * unless the spec only crops.
 */
export function resizedSize(
  image: { width: number; height: number },
  info: Pick<ImageTransform, 'width' | 'height' | 'resize' | 'crop'>,
): { width: number; height: number } {
  const resize = info.resize ?? (info.crop ? undefined : { width: info.width, height: info.height });
  if (!resize) return image;
  if ('width' in resize) return { width: resize.width, height: resize.height };
  const n = resize.shorterSide;
  if (image.width <= image.height) {
    return { width: n, height: Math.floor((n * image.height) / image.width) };
  }
  return { width: Math.floor((n * image.width) / image.height), height: n };
}

/** torchvision's CenterCrop offsets: int(round((size - crop) / 2.0)), Python's round (half to even). */
export function centreCrop(
  image: { width: number; height: number },
  crop: { width: number; height: number },
): { left: number; top: number; width: number; height: number } {
  if (crop.width > image.width || crop.height > image.height) {
    throw new ImageError(
      'too-small',
      `The image is ${image.width}x${image.height} after resizing, smaller than the crop ${crop.width}x${crop.height}. ` +
        'Send a larger image.',
    );
  }
  return {
    left: roundHalfEven((image.width - crop.width) / 2),
    top: roundHalfEven((image.height - crop.height) / 2),
    width: crop.width,
    height: crop.height,
  };
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
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
