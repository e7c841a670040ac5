/**
 * `inferctl deploy --target aks --dry-run [--json]`: what the deployment would create (the ARM requests
 * and Kubernetes objects in full with --json) and what it costs an hour and for its TTL. Needs neither
 * Temporal nor Azure, and creates nothing.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { PriceTable } from '../../shared/cost-types';
import type { PreprocessConfig } from '../../shared/preprocess-types';
import type { AksDeploymentOptions, TargetKind } from '../../shared/target-types';
import { aksDryRun, formatDryRun } from '../../targets/aks/dry-run';
import type { DryRunReport } from '../../targets/aks/dry-run';
import { CliError } from '../cli-error';
import type { CommandContext } from '../client-context';
import { nameFromModel } from '../deployment-name';

export interface DeployDryRunOptions {
  target: TargetKind;
  modelPath: string;
  name?: string;
  replicas: number;
  /** Priced as well as the hour: what the deployment costs if it serves its whole TTL (none: not priced). */
  ttlSeconds?: number;
  topK: number;
  /** The deployment's own spec and labels, as the image would carry them. */
  preprocess?: PreprocessConfig;
  labelsPath?: string;
  aks: AksDeploymentOptions;
  /** Scale to zero (`--min-replicas 0`): the front's objects are shown too. */
  wakeTimeoutSeconds?: number;
  /** --price-table, read and checked (loadPriceTable). */
  priceTable?: PriceTable;
  budget?: number;
}

export async function deployDryRunCommand(
  ctx: Pick<CommandContext, 'out'>,
  opts: DeployDryRunOptions,
): Promise<DryRunReport> {
  if (opts.target !== 'aks') throw new CliError('--dry-run is for --target aks (local deployments cost nothing).', 2);
  const modelPath = path.resolve(opts.modelPath);
  if (!fs.existsSync(modelPath) || !fs.statSync(modelPath).isFile()) {
    throw new CliError(`Model not found: ${modelPath}. Pass the ONNX file to deploy with --model.`, 2);
  }
  const report = await aksDryRun({
    name: opts.name ?? nameFromModel(modelPath),
    modelPath,
    replicas: opts.replicas,
    ttlSeconds: opts.ttlSeconds,
    topK: opts.topK,
    preprocess: opts.preprocess,
    labelsPath: opts.labelsPath ? path.resolve(opts.labelsPath) : undefined,
    aks: opts.aks,
    wakeTimeoutSeconds: opts.wakeTimeoutSeconds,
    priceTable: opts.priceTable,
    budget: opts.budget,
  });
  ctx.out.line(formatDryRun(report));
  ctx.out.result(report);
  return report;
}
