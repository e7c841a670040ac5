/**
 * `inferctl deploy`'s Open Inference Protocol (KServe V2) flags, together: `--protocol`, and the V2 smoke
 * query (`--smoke-request`, `--smoke-expect`, `--smoke-tolerance`), checked here for what goes with what
 * and made into the deploy input; validate checks the files against the model. Also how a V2 smoke
 * answer and a V2-only endpoint are printed.
 */
import path from 'node:path';

import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import type { Command, OptionValues } from '@commander-js/extra-typings';

import { V2_SMOKE_TOLERANCE } from '../shared/deploy-types';
import type { DeployInput, DeployProtocol, DeployStatus } from '../shared/deploy-types';
import { CliError } from './cli-error';
import type { Output } from './output';

export interface V2SmokeFlags {
  /** --protocol; left out, validate decides from the model. */
  protocol?: DeployProtocol;
  /** --smoke-request and --smoke-expect as typed (made absolute here), and --smoke-tolerance. */
  smokeRequest?: string;
  smokeExpect?: string;
  smokeTolerance?: number;
}

function nonNegative(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new InvalidArgumentError(`${flag} must be a number ≥ 0, e.g. 1e-4.`);
    }
    return n;
  };
}

/** Adds the V2 flags to `deploy`, in one group. */
export function addV2SmokeOptions<Args extends unknown[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return cmd
    .addOption(
      new Option(
        '--protocol <protocol>',
        'classifier: an image classifier (/score, and V2 next to it); v2: any ONNX model, on the Open Inference ' +
          'Protocol only (default: decided from the model)',
      ).choices(['classifier', 'v2'] as const),
    )
    .option('--smoke-request <file.json>', 'KServe V2 inference request (JSON) to POST to /v2/models/{name}/infer')
    .option(
      '--smoke-expect <file.json>',
      'fail (and tear down) unless the V2 answer has these outputs: {"outputs":[{"name","data"[,"datatype","shape"]}]}',
    )
    .option(
      '--smoke-tolerance <x>',
      `a floating-point output element passes when |answer − expected| ≤ x · max(1, |expected|) (default ${V2_SMOKE_TOLERANCE})`,
      nonNegative('--smoke-tolerance'),
    );
}

/** The deploy input's `protocol` and `smokeRequest` from the flags; a flag without the one it needs is exit 2. */
export function v2SmokeInput(flags: V2SmokeFlags): Pick<DeployInput, 'protocol' | 'smokeRequest'> {
  if ((flags.smokeExpect || flags.smokeTolerance !== undefined) && !flags.smokeRequest) {
    throw new CliError('--smoke-expect and --smoke-tolerance need --smoke-request: they check its answer.', 2);
  }
  return {
    ...(flags.protocol ? { protocol: flags.protocol } : {}),
    ...(flags.smokeRequest
      ? {
          smokeRequest: {
            requestPath: path.resolve(flags.smokeRequest),
            ...(flags.smokeExpect ? { expectPath: path.resolve(flags.smokeExpect) } : {}),
            ...(flags.smokeTolerance !== undefined ? { tolerance: flags.smokeTolerance } : {}),
          },
        }
      : {}),
  };
}

/** The V2 smoke answer's line, and the endpoint's when the deployment is V2 only; false when neither applies. */
export function printV2Serving(status: DeployStatus, out: Output): boolean {
  if (status.v2Smoke) {
    const outputs = status.v2Smoke.outputs
      .map(
        (o) =>
          `${o.name} ${o.datatype} [${o.shape.join(', ')}]` +
          (o.maxDifference !== undefined ? ` (max difference ${Number(o.maxDifference.toPrecision(3))})` : ''),
      )
      .join(', ');
    out.line(`Smoke answer (V2): ${outputs} (${status.v2Smoke.latencyMs} ms)`);
  }
  if (!status.endpoint || status.protocol !== 'v2') return false;
  out.line(
    `Endpoint: POST ${status.endpoint}/v2/models/${status.v2ModelName ?? '{name}'}/infer  ` +
      `(Open Inference Protocol only; key: ${status.apiKeyRef ?? 'see target'})`,
  );
  return true;
}
