/**
 * The preprocessing spec: parsing what a user wrote (field by field, every problem at once), the presets
 * of the common conventions, and fitting a spec to a model's input (a spec that cannot produce the
 * model's input tensor is refused before anything is created).
 *
 *   torchvision   Resize(256) on the shorter side, CenterCrop(224), ToTensor (/255), ImageNet mean/std, RGB
 *   keras-caffe   imagenet_utils.preprocess_input mode "caffe": BGR, minus 103.939/116.779/123.68, no scaling
 *   keras-tf      mode "tf": x / 127.5 - 1
 *   keras-torch   mode "torch": x / 255, ImageNet mean/std (no resize-crop: resized to the input)
 *   raw           0-255 as is
 *   unit          x / 255
 * Presets other than torchvision resize (stretch) to the model's input size, bilinear.
 */
import type {
  CropSpec,
  PreprocessConfig,
  PreprocessPreset,
  ResizeSpec,
  ResolvedPreprocess,
  TensorLayout,
} from '../shared/preprocess-types';
import { DECODE_MODES, PREPROCESS_PRESETS } from '../shared/preprocess-types';

type Triple = [number, number, number];

const IMAGENET_MEAN: Triple = [0.485, 0.456, 0.406];
const IMAGENET_STD: Triple = [0.229, 0.224, 0.225];

export const PRESETS: Readonly<Record<PreprocessPreset, PreprocessConfig>> = {
  torchvision: {
    resize: { shorterSide: 256 },
    crop: { width: 224, height: 224 },
    channelOrder: 'RGB',
    scale: 1 / 255,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    interpolation: 'bilinear',
  },
  'keras-caffe': { channelOrder: 'BGR', scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1] },
  'keras-tf': { channelOrder: 'RGB', scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] },
  'keras-torch': { channelOrder: 'RGB', scale: 1 / 255, mean: IMAGENET_MEAN, std: IMAGENET_STD },
  raw: { channelOrder: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
  unit: { channelOrder: 'RGB', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] },
};

/** What a model without a spec gets: a stretch to its input size and ImageNet normalisation (as before specs existed). */
export const DEFAULT_PREPROCESS: Omit<ResolvedPreprocess, 'width' | 'height' | 'resize' | 'layout'> = {
  channelOrder: 'RGB',
  scale: 1 / 255,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  interpolation: 'bilinear',
  orientation: 'ignore',
  output: 'auto',
  decode: 'fast',
};

const ENUMS = {
  channelOrder: ['RGB', 'BGR'],
  layout: ['NCHW', 'NHWC'],
  interpolation: ['nearest', 'bilinear', 'bicubic'],
  orientation: ['ignore', 'exif'],
  output: ['auto', 'probabilities', 'logits', 'sigmoid'],
  decode: DECODE_MODES,
} as const;

const KNOWN_KEYS = new Set([
  'preset',
  'resize',
  'crop',
  'scale',
  'mean',
  'std',
  'width',
  'height',
  ...Object.keys(ENUMS),
]);

export function isPreset(name: string): name is PreprocessPreset {
  return (PREPROCESS_PRESETS as readonly string[]).includes(name);
}

/**
 * Checks a spec as written, field by field. Returns the spec and every problem found (empty when it is
 * usable); the caller decides which error to raise, since a bad flag and bad metadata are fixed differently.
 */
export function parsePreprocessConfig(raw: unknown): { config: PreprocessConfig; problems: string[] } {
  const problems: string[] = [];
  if (typeof raw === 'string') raw = { preset: raw };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { config: {}, problems: [`the spec must be a JSON object or a preset name, not ${JSON.stringify(raw)}`] };
  }
  const spec = raw as Record<string, unknown>;
  const config: PreprocessConfig = {};
  for (const key of Object.keys(spec)) {
    if (!KNOWN_KEYS.has(key)) problems.push(`unknown field "${key}" (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  const positiveInt = (name: string, value: unknown): number | undefined => {
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
    problems.push(`${name} must be a positive integer, not ${JSON.stringify(value)}`);
    return undefined;
  };
  if (spec.preset !== undefined) {
    if (typeof spec.preset === 'string' && isPreset(spec.preset)) config.preset = spec.preset;
    else problems.push(`preset ${JSON.stringify(spec.preset)} is not one of ${PREPROCESS_PRESETS.join(', ')}`);
  }
  if (spec.resize !== undefined) config.resize = parseResize(spec.resize, positiveInt, problems);
  if (spec.crop !== undefined) {
    const crop = spec.crop as Record<string, unknown> | null;
    if (typeof crop !== 'object' || crop === null || Array.isArray(crop)) {
      problems.push(`crop must be {"width","height"}, not ${JSON.stringify(spec.crop)}`);
    } else {
      const width = positiveInt('crop.width', crop.width);
      const height = positiveInt('crop.height', crop.height);
      if (width && height) config.crop = { width, height };
    }
  }
  for (const key of ['width', 'height'] as const) {
    if (spec[key] !== undefined) config[key] = positiveInt(key, spec[key]);
  }
  if ((spec.width !== undefined || spec.height !== undefined) && spec.resize !== undefined) {
    problems.push('give either resize or the old width/height, not both');
  }
  if (spec.scale !== undefined) {
    if (typeof spec.scale === 'number' && Number.isFinite(spec.scale) && spec.scale > 0) config.scale = spec.scale;
    else problems.push(`scale must be a positive number, not ${JSON.stringify(spec.scale)}`);
  }
  for (const [key, nonZero] of [
    ['mean', false],
    ['std', true],
  ] as const) {
    const value = spec[key];
    if (value === undefined) continue;
    const ok =
      Array.isArray(value) &&
      value.length === 3 &&
      value.every((v) => typeof v === 'number' && Number.isFinite(v) && (!nonZero || v !== 0));
    if (ok) config[key] = [...(value as number[])] as Triple;
    else problems.push(`${key} must be 3 finite numbers${nonZero ? ', none zero' : ''}, not ${JSON.stringify(value)}`);
  }
  for (const [key, allowed] of Object.entries(ENUMS) as Array<[keyof typeof ENUMS, readonly string[]]>) {
    const value = spec[key];
    if (value === undefined) continue;
    if (typeof value === 'string' && allowed.includes(value)) (config as Record<string, unknown>)[key] = value;
    else
      problems.push(`${key} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, not ${JSON.stringify(value)}`);
  }
  return { config, problems };
}

function parseResize(
  value: unknown,
  positiveInt: (name: string, value: unknown) => number | undefined,
  problems: string[],
): ResizeSpec | undefined {
  const resize = value as Record<string, unknown> | null;
  if (typeof resize !== 'object' || resize === null || Array.isArray(resize)) {
    problems.push(`resize must be {"shorterSide"} or {"width","height"}, not ${JSON.stringify(value)}`);
    return undefined;
  }
  if (resize.shorterSide !== undefined) {
    if (resize.width !== undefined || resize.height !== undefined) {
      problems.push('resize takes either shorterSide or width and height, not both');
    }
    const shorterSide = positiveInt('resize.shorterSide', resize.shorterSide);
    return shorterSide ? { shorterSide } : undefined;
  }
  const width = positiveInt('resize.width', resize.width);
  const height = positiveInt('resize.height', resize.height);
  return width && height ? { width, height } : undefined;
}

/** The input's shape as readModelInfo reads it: [batch, 3, H, W] or [batch, H, W, 3], dims fixed or named. */
export interface InputShape {
  dims: Array<number | string>;
  /** The layout the shape says, when it says one (a channel axis of 3 in one place only). */
  layout: TensorLayout | undefined;
}

/**
 * Fits a parsed spec to a model's input: preset, then the spec's fields, then the defaults. The tensor
 * size is the crop, else the stretch, else the input's own size; it must equal the input's fixed size.
 * `source` names the spec in messages ('"inferctl.preprocess"', 'the --preprocess spec', …).
 * Returns the resolved spec and every problem (empty when it fits).
 */
export function fitPreprocess(
  config: PreprocessConfig,
  input: InputShape,
  source: string,
): { spec: ResolvedPreprocess; problems: string[] } {
  const problems: string[] = [];
  const merged: PreprocessConfig = { ...(config.preset ? PRESETS[config.preset] : {}), ...withoutUndefined(config) };
  const layout = merged.layout ?? input.layout ?? 'NCHW';
  const [staticHeight, staticWidth] =
    layout === 'NHWC' ? [input.dims[1], input.dims[2]] : [input.dims[2], input.dims[3]];
  const channels = layout === 'NHWC' ? input.dims[3] : input.dims[1];
  if (channels !== 3) {
    problems.push(
      `layout "${layout}" is not supported by this input: [${input.dims.join(', ')}] has ${String(channels)} ` +
        `channels ${layout === 'NHWC' ? 'last' : 'first'}, inferctl feeds 3 (RGB or BGR)`,
    );
  }
  let resize: ResizeSpec | undefined =
    merged.resize ??
    (merged.width !== undefined || merged.height !== undefined
      ? { width: merged.width ?? 0, height: merged.height ?? 0 }
      : undefined);
  const crop: CropSpec | undefined = merged.crop;
  // The size the tensor will have, before it is compared with the input's.
  let final: { width: number | undefined; height: number | undefined };
  if (crop) final = { ...crop };
  else if (resize && 'width' in resize)
    final = { width: resize.width || undefined, height: resize.height || undefined };
  else if (resize) {
    problems.push(
      `resize.shorterSide ${resize.shorterSide} without a crop gives a size that depends on each image; ` +
        'add "crop": {"width","height"} of the model input size, or resize to {"width","height"}',
    );
    final = { width: undefined, height: undefined };
  } else {
    final = {
      width: typeof staticWidth === 'number' ? staticWidth : undefined,
      height: typeof staticHeight === 'number' ? staticHeight : undefined,
    };
  }
  const sizes = { width: 0, height: 0 };
  for (const [key, fixed] of [
    ['width', staticWidth],
    ['height', staticHeight],
  ] as const) {
    const value = final[key];
    if (value === undefined) {
      if (typeof fixed === 'number') sizes[key] = fixed;
      else if (!(resize && 'shorterSide' in resize && !crop)) {
        problems.push(`the input's ${key} is not fixed (${String(fixed)}) and ${source} gives no ${key}`);
      }
      continue;
    }
    if (typeof fixed === 'number' && value !== fixed) {
      problems.push(
        `${key} ${value} disagrees with the input's fixed ${key} ${fixed}` +
          (crop || resize ? ' (the size after resize and crop must be the input size)' : ''),
      );
    }
    sizes[key] = value;
  }
  if (crop && resize) {
    if ('shorterSide' in resize && (crop.width > resize.shorterSide || crop.height > resize.shorterSide)) {
      problems.push(
        `crop ${crop.width}x${crop.height} is larger than the resized shorter side ${resize.shorterSide}; ` +
          'crop at most the shorter side',
      );
    }
    if ('width' in resize && (crop.width > resize.width || crop.height > resize.height)) {
      problems.push(`crop ${crop.width}x${crop.height} is larger than the resize ${resize.width}x${resize.height}`);
    }
  }
  // A crop alone cuts the centre of the image as decoded; nothing at all stretches to the input size.
  if (!resize && !crop) resize = { ...sizes };
  if (resize && 'width' in resize)
    resize = { width: resize.width || sizes.width, height: resize.height || sizes.height };
  const spec: ResolvedPreprocess = {
    ...sizes,
    ...(resize ? { resize } : {}),
    ...(crop ? { crop } : {}),
    channelOrder: merged.channelOrder ?? DEFAULT_PREPROCESS.channelOrder,
    scale: merged.scale ?? DEFAULT_PREPROCESS.scale,
    mean: merged.mean ?? DEFAULT_PREPROCESS.mean,
    std: merged.std ?? DEFAULT_PREPROCESS.std,
    layout,
    interpolation: merged.interpolation ?? DEFAULT_PREPROCESS.interpolation,
    orientation: merged.orientation ?? DEFAULT_PREPROCESS.orientation,
    output: merged.output ?? DEFAULT_PREPROCESS.output,
    decode: merged.decode ?? DEFAULT_PREPROCESS.decode,
  };
  return { spec, problems };
}

/** A resolved spec as a config that resolves to itself (what a bundle or a job keeps; no `decode` is 'fast'). */
export function configOf(spec: ResolvedPreprocess): PreprocessConfig {
  return {
    ...(spec.resize ? { resize: spec.resize } : {}),
    ...(spec.crop ? { crop: spec.crop } : {}),
    channelOrder: spec.channelOrder,
    scale: spec.scale,
    mean: spec.mean,
    std: spec.std,
    layout: spec.layout,
    interpolation: spec.interpolation,
    orientation: spec.orientation,
    output: spec.output,
    // Only when not the default, so that the records and bundles of jobs that did not choose are as before.
    ...(spec.decode !== DEFAULT_PREPROCESS.decode ? { decode: spec.decode } : {}),
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
