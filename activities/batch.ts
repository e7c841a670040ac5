/**
 * The batchScore workflow's control-plane activities (they run on the control worker): list the
 * inputs into shard manifests before scoring, and gather the shards into the job's outputs after.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { ApplicationFailure, Context, log } from '@temporalio/activity';

import { assertInsideAllowedRoots } from '../src/allowed-roots';
import { buildSummary, compactSummary } from '../src/batch/batch-summary';
import type { SummaryFile } from '../src/batch/batch-summary';
import { assertTrustedEndpoint } from '../src/storage/blob-client';
import { isBlobLocation, parseBlobLocation } from '../src/storage/blob-location';
import { withLocalModel } from '../src/storage/blob-model';
import { writeShardManifests } from '../src/batch/input-listing';
import { BatchLayout, SHARD_FILES } from '../src/batch/output-layout';
import type { JobFile } from '../src/batch/output-layout';
import { concatFiles, mergeRawOutputs } from '../src/batch/shard-merge';
import { readModelInfo, readOverrides } from '../src/model/model-info';
import { DEPLOYMENT_NAME_PATTERN } from '../src/shared/deploy-types';
import type { BatchScoreInput, BatchSummary, PreparedBatch, ShardRecord } from '../src/shared/batch-types';
import { failingPermanently } from './failures';
import { prepareBlobBatch, summariseBlobBatch } from './blob-batch';
import { fileExists } from '../src/file-exists';
import { readJsonFile, syncDirectory, writeJsonFileAtomic } from '../src/json-file';
import { FailureType } from '../src/shared/failure-types';
import { scriptModelDigest } from '../src/script/batch-app';
import { withScriptModelCopy } from '../src/script/script-model';
import { compileEntryScript, planScript } from '../src/script/script-plan';
import type { BatchScriptSpec } from '../src/shared/batch-types';

export function createBatchActivities() {
  return {
    /**
     * Validates the job, claims its output directory, then lists its inputs into shard manifests.
     * Idempotent per job: a retry (same token) reuses the listing; a new run of the same job (the same
     * workflow id: a re-run of a scheduled slot) replaces the previous run's files instead of adding to
     * them. Another job's output directory, or a non-empty one no job claimed, is refused, never wiped.
     */
    async prepareBatch(input: BatchScoreInput, jobToken: string): Promise<PreparedBatch> {
      validate(input);
      await failingPermanently(() => {
        for (const [what, p] of [
          ['model', input.modelPath],
          ['input', input.inputPath],
          ['output directory', input.outputDir],
          ['labels file', input.labelsPath],
        ] as const) {
          if (p && !isBlobLocation(p)) assertInsideAllowedRoots(what, p);
        }
        return Promise.resolve();
      });
      // The job's spec and labels are checked against the model here, before any shard runs; a script job's
      // script is planned (environment file read, interpreter chosen) and compiled instead.
      const info = await failingPermanently(async () => {
        if (input.script) return { digest: await checkScriptJob(input.modelPath, input.script) };
        const local = await withLocalModel(input);
        return readModelInfo(local.modelPath, await readOverrides(local));
      });
      if (isBlobLocation(input.outputDir)) return prepareBlobBatch(input, jobToken, info.digest);
      const layout = new BatchLayout(input.outputDir, input.script?.outputAction);
      await ensureWritable(input.outputDir);
      await claimOutput(input.outputDir, Context.current().info.workflowExecution?.workflowId ?? jobToken);

      const existing = await readJsonFile<JobFile>(layout.jobFile);
      if (existing && existing.jobToken === jobToken) return withoutToken(existing);

      for (const stale of [
        layout.manifestDir,
        layout.shardsDir,
        layout.predictionsFile,
        layout.errorsFile,
        layout.rawFile,
        layout.summaryFile,
      ]) {
        await fs.rm(stale, { recursive: true, force: true });
      }
      const ctx = Context.current();
      const { totalItems, shardCount, skippedFiles } = await failingPermanently(() =>
        writeShardManifests(
          input.inputPath,
          layout.manifestDir,
          input.shardSize,
          (items) => ctx.heartbeat({ listed: items }),
          input.outputDir, // an output directory inside the input is not input
          { allFiles: input.allFiles || input.script !== undefined }, // a script reads any kind of file
        ),
      );
      const prepared: PreparedBatch = {
        totalItems,
        shardCount,
        manifestDir: layout.manifestDir,
        modelDigest: info.digest,
        ...(skippedFiles > 0 ? { skippedFiles } : {}),
      };
      await writeJsonFileAtomic(layout.jobFile, { ...prepared, jobToken } satisfies JobFile);
      log.info('Inputs listed', { totalItems, shardCount, skippedFiles });
      return prepared;
    },

    /**
     * Concatenates the finished shards, in order, into predictions.jsonl / errors.jsonl (and raw.npy),
     * streaming, and writes summary.json with per-shard timings, the model output and the preprocessing
     * the shards used. When every shard was there, the per-shard files and the manifest copy are then
     * removed (unless `keepShards`), so the output is about the size of the predictions. Returns the
     * summary without the per-shard list.
     */
    async summariseBatch(
      input: BatchScoreInput,
      prepared: PreparedBatch,
      startedAt: string,
      shardOwners: Record<string, number> = {},
    ): Promise<Omit<BatchSummary, 'shardTimings'>> {
      if (isBlobLocation(input.outputDir)) return summariseBlobBatch(input, prepared, startedAt, shardOwners);
      const layout = new BatchLayout(input.outputDir, input.script?.outputAction);
      const ctx = Context.current();
      // A retry after the shards were removed: the summary written before removing them is the answer.
      const merged = await alreadyMerged(layout, prepared);
      if (merged) {
        await removeShardFiles(layout);
        return merged;
      }
      const shards: ShardRecord[] = [];
      const missing: number[] = [];
      for (let shard = 0; shard < prepared.shardCount; shard++) {
        const done = await readJsonFile<ShardRecord>(path.join(layout.shardDir(shard), SHARD_FILES.done));
        if (done) shards.push(done);
        else missing.push(shard);
      }
      const complete = missing.length === 0;
      const heartbeat = () => ctx.heartbeat();
      const shardFiles = (name: string) => shards.map((s) => path.join(layout.shardDir(s.shard), name));
      const concat = { skipMissing: true, onFile: heartbeat };
      await concatFiles(shardFiles(SHARD_FILES.predictions), layout.predictionsFile, concat);
      await concatFiles(shardFiles(SHARD_FILES.errors), layout.errorsFile, concat);
      const model = shards.find((s) => s.model)?.model;
      let raw: Pick<BatchSummary, 'rawFile' | 'rawShape'> = {};
      if (input.rawOutputs && model) {
        const rawShape = await failingPermanently(() =>
          mergeRawOutputs(layout, shards, model.output.classes, heartbeat),
        );
        raw = { rawFile: layout.rawFile, rawShape };
      }
      const summary = buildSummary(input, prepared, startedAt, shards, {
        predictionsFile: layout.predictionsFile,
        errorsFile: layout.errorsFile,
        summaryFile: layout.summaryFile,
        raw,
      });
      await writeJsonFileAtomic(layout.summaryFile, { ...summary, complete, missingShards: missing });
      if (complete && !input.keepShards) await removeShardFiles(layout);
      return compactSummary(summary);
    },
  };
}

/**
 * The summary of this job's merge, when it already happened and its shard files are gone or going:
 * summary.json is complete and for this listing, and shards/ is no longer there (removal renames it
 * away first, so shards/ is either whole or absent).
 */
async function alreadyMerged(
  layout: BatchLayout,
  prepared: PreparedBatch,
): Promise<Omit<BatchSummary, 'shardTimings'> | undefined> {
  if (await fileExists(layout.shardsDir)) return undefined;
  const file = await readJsonFile<SummaryFile>(layout.summaryFile);
  if (!file?.complete || file.totalItems !== prepared.totalItems || file.modelDigest !== prepared.modelDigest) {
    return undefined;
  }
  return compactSummary(file);
}

/** Removes shards/ and manifest/ (each renamed away first, then deleted). */
async function removeShardFiles(layout: BatchLayout): Promise<void> {
  for (const dir of [layout.shardsDir, layout.manifestDir]) {
    const doomed = `${dir}.removing`;
    if (await fileExists(dir)) {
      await fs.rm(doomed, { recursive: true, force: true });
      await fs.rename(dir, doomed);
    }
    await fs.rm(doomed, { recursive: true, force: true });
  }
}

/** A script job's script, environment file and model, checked before any shard runs; the model's digest. */
async function checkScriptJob(modelPath: string, given: BatchScriptSpec): Promise<string> {
  const script = await withScriptModelCopy(modelPath, given); // an az:// model (a folder of blobs, or one blob)
  await compileEntryScript(await planScript(modelPath, script));
  return scriptModelDigest(modelPath, script);
}

function validate(input: BatchScoreInput): void {
  const problems: string[] = [];
  if (!DEPLOYMENT_NAME_PATTERN.test(input.name)) {
    problems.push(`name "${input.name}" must be 1-40 lowercase letters, digits or '-'`);
  }
  const whole = (v: number, min: number, max: number, what: string) => {
    if (!Number.isInteger(v) || v < min || v > max)
      problems.push(`${what} must be a whole number from ${min} to ${max} (got ${v})`);
  };
  whole(input.shardSize, 1, 1_000_000, 'shard size');
  whole(input.batchSize, 1, 4096, 'batch size');
  whole(input.maxShardsInFlight, 1, 1000, 'concurrency (shards in flight)');
  whole(input.topK, 1, 1000, 'top-k');
  if (input.script) {
    whole(input.script.miniBatchSize, 1, 100_000, 'mini-batch size');
    whole(input.script.miniBatchTimeoutSeconds, 1, 7 * 24 * 3600, 'mini-batch timeout (seconds)');
    if (input.rawOutputs) problems.push('raw outputs (--raw-outputs) are for ONNX models, not scoring scripts');
    if (input.script.outputAction === 'append_row' && isBlobLocation(input.outputDir)) {
      problems.push(
        'the append_row output (predictions.csv) is written to a local --output; on Blob Storage use jsonl',
      );
    }
    if (input.preprocess || input.labelsPath) {
      problems.push('--preprocess and --labels are for ONNX models; a scoring script reads its inputs itself');
    }
  }
  const t = input.errorThreshold;
  if (!(t === -1 || (t >= 0 && t < 1) || (Number.isInteger(t) && t >= 1))) {
    problems.push(`error threshold must be -1 (ignore), a fraction in [0, 1) or a whole count (got ${t})`);
  }
  for (const [what, p] of [
    ['model', input.modelPath],
    ['input', input.inputPath],
    ['output', input.outputDir],
    ['labels', input.labelsPath],
  ] as const) {
    if (p === undefined) continue;
    if (isBlobLocation(p)) {
      try {
        // Refused here, before any client exists: an endpoint that may not receive the workers' credentials.
        assertTrustedEndpoint(parseBlobLocation(p));
      } catch (err) {
        problems.push((err as Error).message.replace(/\.$/, ''));
      }
    } else if (!path.isAbsolute(p)) problems.push(`${what} path must be absolute (got ${p})`);
  }
  if (problems.length > 0)
    throw ApplicationFailure.nonRetryable(`Invalid batch job: ${problems.join('; ')}.`, FailureType.InvalidBatchJob);
}

async function ensureWritable(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    const probe = path.join(dir, `.inferctl-write-test-${process.pid}`);
    await fs.writeFile(probe, '');
    await fs.rm(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const file = code === 'EEXIST' || code === 'ENOTDIR' ? await fileInTheWay(dir) : undefined;
    throw ApplicationFailure.nonRetryable(
      file
        ? `The output ${dir} must be a directory, but ${file === dir ? 'it' : file} is a file. ` +
            'Choose another --output (a directory, created if missing).'
        : `Cannot write to the output directory ${dir} (${code ?? String(err)}). ` +
            'Choose another --output or fix its permissions.',
      FailureType.OutputNotWritable,
    );
  }
}

/** The output path itself or the nearest of its parents that exists, when that is a file (not a directory). */
async function fileInTheWay(dir: string): Promise<string | undefined> {
  for (let p = dir; ; p = path.dirname(p)) {
    const stat = await fs.stat(p).catch(() => undefined);
    if (stat) return stat.isDirectory() ? undefined : p;
    if (path.dirname(p) === p) return undefined;
  }
}

/** The file in a local output directory that says which job (workflow id) it belongs to. */
export const OUTPUT_CLAIM_FILE = '.inferctl-job.json';

interface OutputClaim {
  workflowId: string;
  claimedAt: string;
}

/**
 * Claims `dir` for the job `workflowId`: proceeds when the job already holds it; claims it when it is
 * empty (created exclusively, so two jobs cannot both win); refuses another job's directory, and a
 * non-empty one no job claimed, since everything a job's preparation removes there is someone else's.
 */
async function claimOutput(dir: string, workflowId: string): Promise<void> {
  const file = path.join(dir, OUTPUT_CLAIM_FILE);
  const refuse = (why: string) =>
    ApplicationFailure.nonRetryable(
      `The output directory ${dir} ${why}; this job (${workflowId}) will not overwrite it. ` +
        'Choose an empty or new --output, or remove that directory first if its contents are no longer needed.',
      FailureType.OutputInUse,
    );
  const existing = await readJsonFile<OutputClaim>(file);
  if (existing) {
    if (existing.workflowId === workflowId) return;
    throw refuse(`belongs to another job (${existing.workflowId})`);
  }
  const entries = (await fs.readdir(dir)).filter((e) => !e.startsWith('.inferctl-write-test-'));
  if (entries.length > 0) {
    throw refuse(
      `already holds files no inferctl job claimed (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''})`,
    );
  }
  try {
    await fs.writeFile(
      file,
      JSON.stringify({ workflowId, claimedAt: new Date().toISOString() } satisfies OutputClaim),
      {
        flag: 'wx',
      },
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readJsonFile<OutputClaim>(file);
    if (winner?.workflowId !== workflowId)
      throw refuse(`was just claimed by another job (${winner?.workflowId ?? 'unknown'})`);
  }
  await syncDirectory(dir);
}

function withoutToken({ jobToken: _token, ...prepared }: JobFile): PreparedBatch {
  return prepared;
}
