/**
 * The deploy activities' Open Inference Protocol (KServe V2) parts. At validate: whether the model is an
 * image classifier or is served on V2 only, the flags that cannot go with that, and the V2 smoke
 * request and expected outputs checked against the model (every problem at once). Once the deployment
 * is ready: the smoke request sent through the endpoint (refused without the key, answered with it) and
 * the answer compared with the expectation. The checks themselves are src/inference-protocol/client/smoke.ts.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { ApplicationFailure, log } from '@temporalio/activity';

import { ModelError } from '../src/errors';
import { readModelInfo, readOverrides } from '../src/model/model-info';
import type { ModelInfo } from '../src/model/model-info';
import { readModelSignature } from '../src/model/model-signature';
import type { ModelSignature } from '../src/model/model-signature';
import {
  compareOutputs,
  decodeInferResponse,
  parseExpectedOutputs,
  requestedOutputs,
  smokeRequestProblems,
} from '../src/inference-protocol/client/smoke';
import { V2_SMOKE_TOLERANCE } from '../src/shared/deploy-types';
import type { DeployInput, V2SmokeResult, V2SmokeSpec } from '../src/shared/deploy-types';
import { FailureType } from '../src/shared/failure-types';
import type { EndpointAccess } from '../src/targets/target';

/** What validate can tell from the input alone about the V2 choices: flags that do not go together. */
export function v2FlagProblems(input: DeployInput): string[] {
  const problems: string[] = [];
  const v2 = input.smokeRequest;
  if (input.protocol !== undefined && input.protocol !== 'classifier' && input.protocol !== 'v2') {
    problems.push(`protocol must be "classifier" or "v2" (got ${String(input.protocol)})`);
  }
  if (input.smoke && v2) problems.push('give either a smoke sample image or a V2 smoke request, not both');
  if (v2 && !path.isAbsolute(v2.requestPath))
    problems.push(`smoke request path must be absolute (got ${v2.requestPath})`);
  if (v2?.expectPath !== undefined && !path.isAbsolute(v2.expectPath)) {
    problems.push(`expected outputs path must be absolute (got ${v2.expectPath})`);
  }
  if (input.protocol === 'v2') problems.push(...classifierOnly(input));
  return problems;
}

/** The flags that only an image classifier can use, for a deployment served on V2 only. */
function classifierOnly(input: DeployInput): string[] {
  const used = [
    input.smoke ? '--smoke-sample' : undefined,
    input.preprocess ? '--preprocess' : undefined,
    input.labelsPath ? '--labels' : undefined,
  ].filter((f) => f !== undefined);
  return used.length === 0
    ? []
    : [`${used.join(', ')} apply to image classifiers only; a V2-only deployment takes --smoke-request instead`];
}

/**
 * The model as the replicas will serve it: an image classifier (its ModelInfo), unless `--protocol v2`
 * says otherwise or, left to decide, the model is not one (several inputs, no image input, no score
 * output): then any model, on the Open Inference Protocol only. Its signature either way.
 */
export async function readServedModel(input: DeployInput): Promise<{ info?: ModelInfo; signature: ModelSignature }> {
  const signature = await readModelSignature(input.modelPath);
  if (input.protocol === 'v2') return { signature };
  try {
    return { info: await readModelInfo(input.modelPath, await readOverrides(input)), signature };
  } catch (err) {
    const notAClassifier = err instanceof ModelError && err.type === FailureType.UnsupportedModel;
    if (input.protocol === 'classifier' || !notAClassifier) throw err;
    const flags = classifierOnly(input);
    if (flags.length > 0) {
      throw new ModelError(`${err.message} (Served on V2 only, it could not use ${flags.join('; ')}.)`, err.type);
    }
    log.info('Not an image classifier: served on the Open Inference Protocol only', { reason: err.message });
    return { signature };
  }
}

async function readText(what: string, file: string, flag: string): Promise<{ text?: string; problem?: string }> {
  try {
    return { text: await fs.readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { problem: `${what} ${file} cannot be read (${code}): pass an existing JSON file with ${flag}` };
  }
}

/** Every problem with the V2 smoke files for this model, each prefixed with the file it is in. */
export async function v2SmokeProblems(smoke: V2SmokeSpec, model: ModelSignature): Promise<string[]> {
  const problems: string[] = [];
  if (smoke.tolerance !== undefined && !(Number.isFinite(smoke.tolerance) && smoke.tolerance >= 0)) {
    problems.push(`the smoke tolerance must be a number ≥ 0 (got ${smoke.tolerance})`);
  }
  const request = await readText('smoke request', smoke.requestPath, '--smoke-request');
  if (request.problem) problems.push(request.problem);
  else {
    const found = smokeRequestProblems(request.text!, model);
    if (found.length > 0) problems.push(`smoke request ${smoke.requestPath}: ${found.join('; ')}`);
  }
  if (smoke.expectPath) {
    const expect = await readText('expected outputs', smoke.expectPath, '--smoke-expect');
    if (expect.problem) problems.push(expect.problem);
    else {
      const requested = request.text === undefined ? undefined : requestedOutputs(request.text);
      const { problems: found } = parseExpectedOutputs(expect.text!, model, requested);
      if (found.length > 0) problems.push(`expected outputs ${smoke.expectPath}: ${found.join('; ')}`);
    }
  }
  return problems;
}

/**
 * POSTs the request to `/v2/models/{modelName}/infer` without the key (must be 401), then with it
 * (must be 200 with well-formed outputs matching the expectation, when one is given).
 */
export async function v2SmokeQuery(
  { endpoint, apiKey }: EndpointAccess,
  modelName: string,
  smoke: V2SmokeSpec,
  signal: AbortSignal,
): Promise<V2SmokeResult> {
  const body = await fs.readFile(smoke.requestPath);
  const expected = smoke.expectPath
    ? parseExpectedOutputs(await fs.readFile(smoke.expectPath, 'utf8')).expected
    : undefined;
  const url = `${endpoint}/v2/models/${encodeURIComponent(modelName)}/infer`;
  const json = { 'content-type': 'application/json' };

  const anonymous = await fetch(url, { method: 'POST', body, headers: json, signal });
  await anonymous.arrayBuffer();
  if (anonymous.status !== 401) {
    throw ApplicationFailure.nonRetryable(
      `The endpoint answered ${anonymous.status} to a V2 request without a key; it must refuse with 401.`,
      FailureType.EndpointUnprotected,
    );
  }

  const started = Date.now();
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { ...json, authorization: `Bearer ${apiKey}` },
    signal,
  });
  const latencyMs = Date.now() - started;
  const answer = Buffer.from(await res.arrayBuffer());
  if (res.status >= 500)
    throw new Error(`V2 smoke query got ${res.status} from ${url}: ${answer.toString('utf8', 0, 300)}`);
  if (res.status !== 200) {
    throw ApplicationFailure.nonRetryable(
      `V2 smoke query got ${res.status} from ${url}: ${answer.toString('utf8', 0, 300)}`,
      FailureType.SmokeQueryFailed,
    );
  }
  let outputs;
  try {
    outputs = decodeInferResponse(answer, res.headers.get('inference-header-content-length'));
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `V2 smoke answer from ${url} is not well formed (${(err as Error).message}).`,
      FailureType.SmokeQueryFailed,
    );
  }
  const tolerance = smoke.tolerance ?? V2_SMOKE_TOLERANCE;
  const { mismatches, maxDifference } = compareOutputs(outputs, expected ?? [], tolerance);
  if (mismatches.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `V2 smoke answer does not match ${smoke.expectPath} (tolerance ${tolerance}): ${mismatches.join('; ')}. ` +
        'Check the model and the expected outputs.',
      FailureType.SmokeQueryMismatch,
    );
  }
  return {
    modelName,
    outputs: outputs.map((o) => ({
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      ...(maxDifference.has(o.name) ? { maxDifference: maxDifference.get(o.name)! } : {}),
    })),
    latencyMs,
  };
}
