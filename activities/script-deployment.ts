/**
 * The deploy activities' parts for a scoring script (`--entry-script`). At validate: every problem with the
 * spec and the smoke query at once, then the files themselves (inside the allowed roots, links resolved),
 * the environment file read and its interpreter chosen, and the entry script compiled with that interpreter,
 * all before anything is created. Once ready: the sample POSTed to /score without the key (401) and with it
 * (the expected status and check).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { ApplicationFailure } from '@temporalio/activity';

import { assertInsideAllowedRoots } from '../src/allowed-roots';
import { treeDigest, walkTree } from '../src/script/model-tree';
import { compileEntryScript, planScript, scriptSpecProblems } from '../src/script/script-plan';
import { describeExpectation, expectationProblem, scriptSmokeProblems } from '../src/script/smoke-expectation';
import type { DeployInput, ScriptSmokeResult, ScriptSmokeSpec } from '../src/shared/deploy-types';
import { FailureType } from '../src/shared/failure-types';
import { endpointRequest } from '../src/targets/endpoint-request';
import { gpuRequirements } from '../src/script/gpu-packages';
import type { EndpointAccess } from '../src/targets/target';
import { assertTrustedEndpoint } from '../src/storage/blob-client';
import { isBlobLocation, parseBlobLocation } from '../src/storage/blob-location';
import { listModelBlobs } from '../src/storage/blob-tree';
import { failingPermanently } from './failures';

export interface ValidatedScript {
  modelName: string;
  modelDigest: string;
  labels: number;
  protocol: 'script';
  /** "score.py, Python 3.11.7, 4 requirements (tensorflow-gpu → tensorflow)". */
  input: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
};

/** What is wrong with --model's form: an absolute path, or for a scoring script an az:// prefix too. */
export function modelPathProblems(input: DeployInput): string[] {
  if (path.isAbsolute(input.modelPath)) return [];
  if (!isBlobLocation(input.modelPath)) return [`model path must be absolute (got ${input.modelPath})`];
  if (!input.script) {
    return [
      `an az:// model is for a scoring script (--entry-script); download the ONNX model first (got ${input.modelPath})`,
    ];
  }
  try {
    // Refused here, before any client exists: an endpoint that may not receive this worker's credentials.
    assertTrustedEndpoint(parseBlobLocation(input.modelPath));
    return [];
  } catch (err) {
    return [(err as Error).message.replace(/\.$/, '')];
  }
}

/** What the input alone says is wrong with a script deployment, every problem; [] when nothing is. */
export function scriptInputProblems(input: DeployInput): string[] {
  const script = input.script!;
  const problems = scriptSpecProblems(input.modelPath, script);
  if (script.modelCopy !== undefined) problems.push('modelCopy is set by the worker, never in a deployment input');
  if (script.gpu && input.target !== 'aks') {
    problems.push('--gpu (a CUDA base image for the script) is for --target aks; locally the script runs as it is');
  }
  const classifierOnly = [
    input.smoke ? '--smoke-sample with an image classifier’s check' : undefined,
    input.smokeRequest ? '--smoke-request' : undefined,
    input.preprocess ? '--preprocess' : undefined,
    input.labelsPath ? '--labels' : undefined,
    input.protocol && input.protocol !== 'script' ? `--protocol ${input.protocol}` : undefined,
  ].filter((f) => f !== undefined);
  if (classifierOnly.length > 0) {
    problems.push(
      `${classifierOnly.join(', ')} do not apply to a scoring script (your script does its own pre- and post-processing)`,
    );
  }
  if (input.scriptSmoke) {
    if (!path.isAbsolute(input.scriptSmoke.samplePath)) {
      problems.push(`smoke sample path must be absolute (got ${input.scriptSmoke.samplePath})`);
    }
    problems.push(...scriptSmokeProblems(input.scriptSmoke));
  }
  return problems;
}

/**
 * Validates the files of a script deployment whose input passed `scriptInputProblems`; throws a
 * non-retryable failure naming the problem (InvalidDeployment, InputNotFound, PathNotAllowed).
 */
export async function validateScriptDeployment(input: DeployInput): Promise<ValidatedScript> {
  const script = input.script!;
  return failingPermanently(async () => {
    const plan = await planScript(input.modelPath, script);
    await compileEntryScript(plan);
    const model = isBlobLocation(input.modelPath) ? await listModelBlobs(input.modelPath) : undefined;
    const files = model ? [] : await walkTree('model', input.modelPath);
    await walkTree('source folder', plan.sourceDir, { skipCaches: true });
    if (input.scriptSmoke) {
      assertInsideAllowedRoots('smoke sample', input.scriptSmoke.samplePath);
      try {
        await fs.access(input.scriptSmoke.samplePath);
      } catch {
        throw ApplicationFailure.nonRetryable(
          `Smoke sample not found: ${input.scriptSmoke.samplePath}. Pass an existing file with --smoke-sample.`,
          FailureType.InvalidDeployment,
        );
      }
    }
    const renamed = plan.environment.renamed.length > 0 ? ` (${plan.environment.renamed.join(', ')})` : '';
    const cpuOnly =
      script.gpu && gpuRequirements(plan.environment.requirements).length === 0
        ? '; warning: --gpu, but nothing in the environment uses a GPU (add onnxruntime-gpu, torch, …)'
        : '';
    return {
      modelName: plan.modelName,
      // A blob model's digest is its listing's (names, sizes, ETags): it is downloaded by the image step.
      modelDigest: model ? model.digest : await treeDigest(files),
      labels: 0,
      protocol: 'script' as const,
      input:
        `${plan.entryRelative} on Python ${plan.interpreter.version}, ` +
        `${plan.environment.requirements.length} requirement(s)${renamed}; model ${plan.modelDirRelative}/${plan.modelEntry}` +
        (model ? ` from ${model.blobs.length} blob(s), ${model.bytes} bytes` : '') +
        cpuOnly,
    };
  });
}

/**
 * The script's smoke query: the sample POSTed to /score without the key (must be 401), then with it (must
 * answer the expected status, and meet the expectation). The script's own answer is final (non-retryable);
 * a front that cannot reach its Python server yet (502-504) is retried.
 */
export async function scriptSmokeQuery(
  access: EndpointAccess,
  smoke: ScriptSmokeSpec,
  signal: AbortSignal,
  who = 'The endpoint',
): Promise<ScriptSmokeResult> {
  const body = await fs.readFile(smoke.samplePath);
  const contentType =
    smoke.contentType ?? CONTENT_TYPES[path.extname(smoke.samplePath).toLowerCase()] ?? 'application/octet-stream';
  const post = (headers: Record<string, string>) =>
    endpointRequest(access, '/score', {
      method: 'POST',
      body,
      headers: { 'content-type': contentType, ...headers },
      signal,
    });
  const anonymous = await post({});
  if (anonymous.status !== 401) {
    throw ApplicationFailure.nonRetryable(
      `${who} answered ${anonymous.status} to a request without a key; it must refuse with 401.`,
      FailureType.EndpointUnprotected,
    );
  }
  const started = Date.now();
  const res = await post({ authorization: `Bearer ${access.apiKey}` });
  const latencyMs = Date.now() - started;
  const excerpt = res.text.slice(0, 200);
  const expected = smoke.expectStatus ?? 200;
  if (res.status !== expected) {
    const message = `${who === 'The endpoint' ? 'Smoke query' : `${who}'s smoke query`} got ${res.status} from ${access.endpoint}/score, expected ${expected}: ${res.text.slice(0, 300)}`;
    if (res.status >= 502 && res.status <= 504) throw new Error(message);
    throw ApplicationFailure.nonRetryable(message, FailureType.SmokeQueryFailed);
  }
  const problem = expectationProblem(smoke, res.text);
  if (problem) {
    throw ApplicationFailure.nonRetryable(
      `${who === 'The endpoint' ? 'Smoke query' : `${who}'s smoke query`} answer does not meet the expectation: ${problem}. The answer: ${res.text.slice(0, 300)}`,
      FailureType.SmokeQueryMismatch,
    );
  }
  const checked = describeExpectation(smoke);
  return { status: res.status, latencyMs, excerpt, ...(checked ? { checked } : {}) };
}
