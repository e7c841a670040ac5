/**
 * The image a deployment runs, built in the registry (ACR Tasks, registry-build.ts): inferctl's ONNX server
 * with the model (build-context.ts), or a scoring script's image with its environment, bundle and front
 * (script-image.ts). The tag is the build context's digest, so an unchanged deployment reuses its image.
 */
import { planScript } from '../../script/script-plan';
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
    const context = await scriptBuildContext(script, spec.modelPath, dockerfile);
    const built = await buildContextInRegistry(clients, settings, repository, context, signal, progress);
    return { imageRef: built.imageRef, digest: built.digest, reused: built.reused };
  }
  const served = await servedWith(spec);
  const image = await buildImageInRegistry(clients, settings, repository, spec.modelPath, served, signal, progress);
  return { imageRef: image.imageRef, digest: image.digest, reused: image.reused };
}
