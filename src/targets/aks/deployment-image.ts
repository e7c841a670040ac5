/**
 * The image a deployment runs, built in the registry (ACR Tasks, registry-build.ts): inferctl's ONNX server
 * with the model (build-context.ts), or a scoring script's image with its environment, bundle and front
 * (script-image.ts). The tag is the build context's digest, so an unchanged deployment reuses its image.
 */
import type { ScriptEnvironment } from '../../script/environment-file';
import { pipFailure } from '../../script/python-env';
import { planScript } from '../../script/script-plan';
import { StepFailedError } from '../../errors';
import { FailureType } from '../../shared/failure-types';
import type { DeploymentSpec, ImageResult } from '../../shared/target-types';
import type { StepProgress } from '../target';
import type { AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { servedWith } from './build-context';
import { buildContextInRegistry, buildImageInRegistry } from './registry-build';
import { scriptBuildContext, scriptImage } from './script-image';

export interface ImageRegistry {
  clients: AzureClients;
  settings: AksSettings;
  repository: string;
}

export async function buildDeploymentImage(
  registry: ImageRegistry,
  spec: DeploymentSpec,
  tls: boolean,
  signal?: AbortSignal,
  progress?: StepProgress,
): Promise<ImageResult> {
  const { clients, settings, repository } = registry;
  if (spec.script) {
    const script = await planScript(spec.modelPath, spec.script);
    const dockerfile = scriptImage(script, { name: spec.name, tls, gpu: spec.script.gpu });
    progress?.(`packing the script's build context (${dockerfile.base})`);
    const context = await scriptBuildContext(script, spec.modelPath, dockerfile, spec.script);
    const built = await buildContextInRegistry(clients, settings, repository, context, signal, progress).catch(
      (err: unknown) => {
        throw scriptBuildFailure(err, script.environment);
      },
    );
    return { imageRef: built.imageRef, digest: built.digest, reused: built.reused };
  }
  const served = await servedWith(spec);
  const image = await buildImageInRegistry(clients, settings, repository, spec.modelPath, served, signal, progress);
  return { imageRef: image.imageRef, digest: image.digest, reused: image.reused };
}

/**
 * A script image's build that failed in its pip step is the user's environment (as locally: the packages pip
 * could not resolve, the end of its output), with the registry's full log named; any other failure as it was.
 */
function scriptBuildFailure(err: unknown, environment: ScriptEnvironment): unknown {
  if (!(err instanceof StepFailedError) || err.type !== FailureType.ImageBuildFailed) return err;
  const pip = pipFailure(environment, err.message.replace(/\nFull log: .*$/s, ''));
  if (!(pip instanceof StepFailedError)) return err;
  const fullLog = /\n(Full log: .*)$/s.exec(err.message)?.[1] ?? '';
  return new StepFailedError(`${pip.message}\n${fullLog}`.trim(), pip.type);
}
