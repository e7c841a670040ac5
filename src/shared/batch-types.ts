/**
 * Types the batchScore workflow, its activities, the GPU worker and the CLI share.
 * Workflow-safe: plain data only. Item lists and tensors never travel through history: the workflow
 * sees counts and shard numbers, the activities read and write files.
 */
import type { BatchBudgetStatus, BatchCost, BatchCostInput, CostLedger } from './cost-types';
import type { PreprocessConfig } from './preprocess-types';
import type { ScriptSpec } from './target-types';

export const GPU_TASK_QUEUE = 'inferctl-gpu';
export const BATCH_WORKFLOW_TYPE = 'batchScore';

export function batchWorkflowId(name: string): string {
  return `score-${name}`;
}

export type ExecutionProviderRequest = 'cpu' | 'cuda';

export interface BatchScoreInput {
  /** Job name; the workflow id is `score-<name>`. */
  name: string;
  /**
   * The ONNX model: an absolute path on the GPU workers' filesystem, or a blob
   * (`az://<account>/<container>/<name>` or its https URL; each worker downloads it once).
   */
  modelPath: string;
  /**
   * A directory of images (searched recursively), a .jsonl / .csv / .txt manifest of image paths, or a
   * blob prefix (`az://<account>/<container>/<prefix>`, every blob under it).
   */
  inputPath: string;
  /** Where predictions, errors and summary.json go: a directory, or a blob prefix. */
  outputDir: string;
  /** Inputs per shard (one activity each). */
  shardSize: number;
  /** Images per inference call. */
  batchSize: number;
  /** Shards running at once across all GPU workers (a sliding window). */
  maxShardsInFlight: number;
  /**
   * Failed inputs tolerated before the job fails, like Azure ML batch `error_threshold`:
   * -1 ignores errors, a number in (0, 1) is a fraction of all inputs, a whole number ≥ 0 a count.
   */
  errorThreshold: number;
  topK: number;
  /** The preprocessing spec given with --preprocess, as plain data (see DeployInput.preprocess). */
  preprocess?: PreprocessConfig;
  /** Absolute path, on the workers' filesystem like modelPath, to a labels file given with --labels. */
  labelsPath?: string;
  /**
   * Also write each scored input's raw output row to `<outputDir>/raw.npy` (NumPy, float32, shape
   * [rows, classes]; row i belongs to line i of predictions.jsonl).
   */
  rawOutputs?: boolean;
  /** Task queue of the GPU workers. */
  gpuTaskQueue?: string;
  /** Fail instead of scoring on a worker whose model runs on CPU. */
  requireCuda?: boolean;
  /** Fail a shard attempt whose worker stops heartbeating for this long. Default 30. */
  heartbeatTimeoutSeconds?: number;
  /**
   * How often a running shard tells the workflow how far it is (the SHARD_PROGRESS_SIGNAL), in seconds;
   * a shard shorter than this sends nothing. Default 10; 0 turns it off.
   */
  progressIntervalSeconds?: number;
  /** Keep the per-shard outputs and the manifest copy after a successful merge (default: removed). */
  keepShards?: boolean;
  /** Score every file of an input folder or prefix, not only image names (default: other files are skipped). */
  allFiles?: boolean;
  /**
   * Where the GPU workers find the model and labels when their copy is not at modelPath (a worker image
   * built for the job: workflows/gpu-pool.ts); the control worker keeps using modelPath and labelsPath.
   */
  onWorkers?: {
    modelPath: string;
    labelsPath?: string;
    /** A script job whose script, environment and model are built into the worker image (BatchScriptSpec.inImage). */
    scriptInImage?: boolean;
  };
  /** Score with the user's script (docs/batch-scripts.md) instead of the ONNX path. */
  script?: BatchScriptSpec;
  /** The price table the ledger uses and `--budget` (docs/costs.md); left out, the shipped table and no budget. */
  cost?: BatchCostInput;
  /**
   * Set by gpuPoolBatchScore for its child: the job-owned GPU pool, billed from `since` (the parent's
   * workflow time when the pool was created) until the parent removes it.
   */
  gpuPool?: JobGpuPool;
}

/** A job-owned GPU pool as the ledger bills it. */
export interface JobGpuPool {
  vmSize: string;
  nodes: number;
  /** Workflow time, ISO 8601: when the pool was created. */
  since: string;
}

/**
 * How a batch job's rows are written: `jsonl` (default) one JSON row per input in predictions.jsonl,
 * `{index, path, result}`; `append_row` Azure ML's shape, one line per input in predictions.csv.
 */
export type OutputAction = 'jsonl' | 'append_row';

/**
 * A batch job scored by the user's own script (Azure ML's batch contract: init() once per process, then
 * run(mini_batch) with a list of file paths), instead of the ONNX path. The environment and the model's
 * layout are the online --entry-script's (ScriptSpec).
 */
export interface BatchScriptSpec extends ScriptSpec {
  /** Paths per run() call (Azure ML's mini_batch_size). */
  miniBatchSize: number;
  /** A run() that takes longer is stopped and its inputs fail as 'timeout' (Azure ML's retry_settings.timeout). */
  miniBatchTimeoutSeconds: number;
  outputAction: OutputAction;
  /**
   * The script, its environment and the model are built into the GPU workers' image (--target aks): the
   * worker runs the bundle it was started with (gpu-worker --script-bundle) instead of building its own.
   */
  inImage?: boolean;
}

/** The signal a running shard sends its workflow (at most every progressIntervalSeconds). */
export const SHARD_PROGRESS_SIGNAL = 'shardProgress';

/** Items done so far inside one running shard (this attempt's checkpoint). */
export interface ShardProgress {
  shard: number;
  itemsDone: number;
  itemsFailed: number;
}

/** What the listing activity returns: counts and where the shard lists are, never the items. */
export interface PreparedBatch {
  totalItems: number;
  shardCount: number;
  /** Directory holding shard-<n>.txt, one input path per line. */
  manifestDir: string;
  modelDigest: string;
  /** Files of the input folder or prefix left out because their names are not images' (absent: none). */
  skippedFiles?: number;
}

/** What the workflow passes a shard activity. */
export interface ShardTask {
  jobName: string;
  shard: number;
  /** Global index of the shard's first input (rows carry global indices). */
  baseIndex: number;
  manifestDir: string;
  outputDir: string;
  modelPath: string;
  modelDigest: string;
  batchSize: number;
  topK: number;
  rawOutputs: boolean;
  requireCuda: boolean;
  /** See BatchScoreInput.progressIntervalSeconds (left out: 10). */
  progressIntervalSeconds?: number;
  /** The job's own preprocessing spec and labels file (BatchScoreInput), when it has them. */
  preprocess?: PreprocessConfig;
  labelsPath?: string;
  /** BatchScoreInput.script. */
  script?: BatchScriptSpec;
}

export interface ShardResult {
  shard: number;
  itemsOk: number;
  itemsFailed: number;
  /** Wall time of the attempt that completed it (ms), and of decode / inference inside it. */
  wallMs: number;
  decodeMs: number;
  inferMs: number;
  attempts: number;
  executionProvider: string;
  worker: string;
}

/**
 * The model output a job scored: its name in the ONNX graph, the values per row (classes; the second
 * axis of raw.npy) and their type.
 */
export interface BatchModelOutput {
  name: string;
  classes: number;
  dtype: 'float32';
}

/**
 * The preprocessing the shards applied to every image, in the field names of the preprocessing spec
 * (resize, crop, channelOrder, layout, scale, mean, std, …). An object that grows with the spec:
 * readers should ignore fields they do not know.
 */
export interface BatchPreprocess {
  resize?: { width: number; height: number } | { shorterSide: number };
  crop?: { width: number; height: number };
  channelOrder?: string;
  layout?: string;
  /** Pixels (0-255) become (pixel * scale - mean) / std, per channel. */
  scale?: number;
  mean?: number[];
  std?: number[];
  [field: string]: unknown;
}

/** What a finished shard's done.json holds: its result, and what its worker scored with. */
export interface ShardRecord extends ShardResult {
  model?: { output: BatchModelOutput; preprocess: BatchPreprocess };
}

/** The checkpoint a shard heartbeats: where to resume and what to truncate. */
export interface ShardCheckpoint {
  /** The attempt that wrote the files this checkpoint describes (absent in checkpoints of older workers). */
  attempt?: number;
  itemsDone: number;
  itemsOk: number;
  itemsFailed: number;
  predictionsBytes: number;
  errorsBytes: number;
  rawBytes: number;
}

export interface BatchProgress {
  name: string;
  stage: 'listing' | 'scoring' | 'summarising' | 'done' | 'failed' | 'stopped';
  totalItems: number;
  itemsDone: number;
  itemsFailed: number;
  shardCount: number;
  shardsDone: number;
  shardsInFlight: number;
  /** Of itemsDone, those inside shards still running (from their progress signals). */
  itemsInRunningShards?: number;
  startedAt: string;
  executionProvider?: string;
  /** Set when the job ended: where summary.json is. */
  summaryPath?: string;
  /** The cost ledger summed now, and the budget (docs/costs.md). */
  cost?: BatchCost;
}

/** Carried across continue-as-new so a long job keeps each run's history small. */
export interface BatchCarryOver {
  prepared: PreparedBatch;
  nextShard: number;
  shardsDone: number;
  itemsOk: number;
  itemsFailed: number;
  startedAt: string;
  executionProvider?: string;
  /** Shard number → the attempt whose output is the shard's, for shards attempt 1 did not finish. */
  shardOwners?: Record<string, number>;
  /** The ledger so far and where the budget stood: a budget is for the whole job, across runs and resumes. */
  cost?: { ledger: CostLedger; budgetState?: BatchBudgetStatus };
}

/**
 * Why a job ended before scoring every shard: its budget was spent. Everything scored is kept; `resume`
 * is what `inferctl score resume` starts the job again from (the done shards skipped, the ledger carried).
 */
export interface BudgetStop {
  by: 'budget';
  spent: number;
  budget: number;
  currency: string;
  shardsLeft: number;
  resume: { input: BatchScoreInput; carry: BatchCarryOver };
}

export interface BatchSummary {
  name: string;
  modelPath: string;
  modelDigest: string;
  inputPath: string;
  outputDir: string;
  totalItems: number;
  itemsOk: number;
  itemsFailed: number;
  shards: number;
  wallSeconds: number;
  itemsPerSecond: number;
  executionProvider: string;
  predictionsFile: string;
  errorsFile: string;
  /** Files of the input folder or prefix left out because their names are not images' (absent: none). */
  skippedFiles?: number;
  /** The model output scored (absent only when no shard finished). */
  modelOutput?: BatchModelOutput;
  /** The preprocessing used (absent only when no shard finished). */
  preprocess?: BatchPreprocess;
  /**
   * With rawOutputs: raw.npy, float32, shape `rawShape` = [rows, classes]. Its rows are the scored inputs
   * in input order, exactly the lines of predictions.jsonl (row i ↔ line i, whose `index` is the input's);
   * inputs that could not be scored (errors.jsonl) have no row.
   */
  rawFile?: string;
  rawShape?: [number, number];
  /** Where this summary is written (with the per-shard timings). */
  summaryFile: string;
  shardTimings: Array<
    Pick<ShardResult, 'shard' | 'itemsOk' | 'itemsFailed' | 'wallMs' | 'decodeMs' | 'inferMs' | 'attempts' | 'worker'>
  >;
}
