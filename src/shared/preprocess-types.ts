/**
 * The preprocessing spec as plain data: what a user writes (`--preprocess spec.json`, a sidecar
 * `<model>.preprocess.json`, the model's `inferctl.preprocess` metadata) and what travels in a deploy or
 * batch workflow input. Workflow-safe: types and constants only. Parsing, presets and fitting a spec to a
 * model live in src/preprocess/preprocess-spec.ts.
 */

export const PREPROCESS_PRESETS = ['torchvision', 'keras-caffe', 'keras-tf', 'keras-torch', 'raw', 'unit'] as const;
export type PreprocessPreset = (typeof PREPROCESS_PRESETS)[number];

export type TensorLayout = 'NCHW' | 'NHWC';
export type ChannelOrder = 'RGB' | 'BGR';
export type Interpolation = 'nearest' | 'bilinear' | 'bicubic';
export type Orientation = 'ignore' | 'exif';
/**
 * How a JPEG is decoded before the resize (docs/preprocessing.md, "JPEG decode"):
 *   exact  at full size, then resampled: what Pillow's plain resize sees (the slowest);
 *   fast   at the smallest DCT scale (1/2, 1/4, 1/8) that leaves at least twice the resized size, then
 *          resampled with the spec's kernel (Pillow's reducing_gap idea; the default);
 *   draft  at the smallest DCT scale not below the resized size (Pillow's Image.draft), then resampled.
 * PNG and WebP are decoded at full size whatever this says.
 */
export const DECODE_MODES = ['exact', 'fast', 'draft'] as const;
export type DecodeMode = (typeof DECODE_MODES)[number];

/** How the model's output rows become scores: as is, softmax, per-class sigmoid, or softmax unless already a distribution. */
export type OutputScores = 'auto' | 'probabilities' | 'logits' | 'sigmoid';

/** `{ shorterSide }` keeps the aspect ratio (torchvision's Resize(256)); `{ width, height }` stretches. */
export type ResizeSpec = { shorterSide: number } | { width: number; height: number };

export interface CropSpec {
  width: number;
  height: number;
}

/**
 * A spec as written: every field optional. `preset` starts from a preset's values, and the other fields
 * override it. `width`/`height` at the top level are the old metadata form: a stretch to that size.
 */
export interface PreprocessConfig {
  preset?: PreprocessPreset;
  resize?: ResizeSpec;
  crop?: CropSpec;
  channelOrder?: ChannelOrder;
  /** Pixel values (0-255) are multiplied by this, then normalised: (pixel * scale - mean) / std. */
  scale?: number;
  /** Per channel, in the model's channel order (after channelOrder). */
  mean?: [number, number, number];
  std?: [number, number, number];
  layout?: TensorLayout;
  interpolation?: Interpolation;
  orientation?: Orientation;
  output?: OutputScores;
  /** How JPEGs are decoded (default 'fast'); `--decode` sets it on top of whichever spec is used. */
  decode?: DecodeMode;
  /** The old metadata form (a stretch to width × height). */
  width?: number;
  height?: number;
}

/** A spec fitted to one model: every field decided, `width` × `height` the model's input size. */
export interface ResolvedPreprocess {
  width: number;
  height: number;
  /** Absent only with a crop: the centre of the image as decoded is cut out. */
  resize?: ResizeSpec;
  crop?: CropSpec;
  channelOrder: ChannelOrder;
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  layout: TensorLayout;
  interpolation: Interpolation;
  orientation: Orientation;
  output: OutputScores;
  decode: DecodeMode;
}

/**
 * Where the spec a model is served with came from. One rule for the spec and the labels, in precedence
 * order: the flag (`--preprocess`, `--labels`), the model's sidecar (`<model>.preprocess.json`,
 * `<model>.labels.txt`), the model's metadata (`inferctl.preprocess`, `inferctl.labels`), then a fallback.
 */
export type PreprocessSource = 'flag' | 'sidecar' | 'metadata' | 'defaults';

/** Where a model's labels came from, by the same rule; the fallback is a `labels.txt` in the model's directory. */
export type LabelsSource = 'flag' | 'sidecar' | 'metadata' | 'directory';
