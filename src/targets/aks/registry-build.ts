/**
 * Builds the scoring image (the model, served with `served`: its resolved spec and labels) in Azure
 * Container Registry with ACR Tasks: upload the build context to the
 * registry's source upload URL (a SAS blob URL, written with @azure/storage-blob), schedule a Docker build
 * run, poll it, and on failure fetch the run log's tail. The tag is the context's digest, so when a
 * succeeded run already pushed that tag nothing is built.
 *
 * ACR Tasks (runs, scheduleRun) are in @azure/arm-containerregistry 11; version 12 dropped them.
 */
import type { DockerBuildRequest, Run } from '@azure/arm-containerregistry';
import { isRestError } from '@azure/core-rest-pipeline';
import { BlockBlobClient } from '@azure/storage-blob';

import { formatDuration } from '../../shared/duration';
import { StepFailedError } from '../../errors';
import type { StepProgress } from '../target';
import type { AksSettings } from './aks-config';
import type { AzureClients } from './azure-clients';
import { azureFailure } from './azure-errors';
import { buildContext } from './build-context';
import type { BuildContext, ServedWith } from './build-context';
import { registryTagExists } from './registry-images';
import { FailureType } from '../../shared/failure-types';

export interface RegistryImage {
  imageRef: string;
  /** `sha256:<hex>` of the build context. */
  digest: string;
  reused: boolean;
  runId?: string;
}

const FINISHED = ['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout'];

/** The ACR Tasks run that builds and pushes `repository:tag` from the uploaded context. */
export function dockerBuildRequest(sourceLocation: string, repository: string, tag: string): DockerBuildRequest {
  return {
    type: 'DockerBuildRequest',
    sourceLocation,
    dockerFilePath: 'Dockerfile',
    imageNames: [`${repository}:${tag}`],
    isPushEnabled: true,
    platform: { os: 'Linux', architecture: 'amd64' },
    timeout: 3600,
  };
}

export async function buildImageInRegistry(
  clients: AzureClients,
  settings: AksSettings,
  repository: string,
  modelPath: string,
  served: ServedWith,
  signal?: AbortSignal,
  progress: StepProgress = () => undefined,
): Promise<RegistryImage> {
  const context = await buildContext(modelPath, served);
  return buildContextInRegistry(clients, settings, repository, context, signal, progress);
}

/** Builds `repository:<context digest>` from a build context (any image's), or reuses the tag a run pushed. */
export async function buildContextInRegistry(
  clients: AzureClients,
  settings: AksSettings,
  repository: string,
  context: BuildContext,
  signal?: AbortSignal,
  progress: StepProgress = () => undefined,
): Promise<RegistryImage> {
  const { registryResourceGroup: rg, registryName: registry } = settings;
  const tag = context.digest;
  const imageRef = `${registry.toLowerCase()}.azurecr.io/${repository}:${tag}`;
  const digest = `sha256:${context.digest}`;

  try {
    const filter = `Status eq 'Succeeded' and OutputImageManifests eq '${repository}:${tag}'`;
    for await (const run of clients.registry.runs.list(rg, registry, { filter, top: 1, abortSignal: signal })) {
      // The run history outlives the image (the janitor deletes unused ones): reuse only what is still there.
      if (pushed(run, repository, tag) && (await registryTagExists(settings, repository, tag, signal))) {
        progress(`image ${repository}:${tag.slice(0, 12)} was built by run ${run.runId}; reusing it`);
        return { imageRef, digest, reused: true, runId: run.runId };
      }
    }
  } catch (err) {
    throw azureFailure(err, `listing builds in registry ${registry}`);
  }

  let runId: string | undefined;
  try {
    const upload = await clients.registry.registries.getBuildSourceUploadUrl(rg, registry, { abortSignal: signal });
    if (!upload.uploadUrl || !upload.relativePath) throw new Error('the registry returned no upload URL');
    progress(`uploading the build context (${(context.archive.length / 1e6).toFixed(1)} MB) to registry ${registry}`);
    await uploadContext(upload.uploadUrl, context.archive, signal);

    const request = dockerBuildRequest(upload.relativePath, repository, tag);
    const poller = await clients.registry.registries.beginScheduleRun(rg, registry, request, {
      abortSignal: signal,
      updateIntervalInMs: settings.pollIntervalMs,
    });
    const scheduled = await poller.pollUntilDone();
    runId = scheduled.runId;
    if (!runId) throw new Error('the registry scheduled a run without an id');

    const started = Date.now();
    for (;;) {
      const run = await clients.registry.runs.get(rg, registry, runId, { abortSignal: signal });
      progress(`build run ${runId} in registry ${registry}: ${run.status}, ${formatDuration(Date.now() - started)}`);
      if (run.status && FINISHED.includes(run.status)) {
        if (run.status === 'Succeeded') return { imageRef, digest, reused: false, runId };
        const log = await runLogTail(clients, settings, runId, signal);
        throw new StepFailedError(
          `Image build ${runId} in registry ${registry} ended ${run.status}:\n${log}\n` +
            `Full log: az acr task logs -r ${registry} --run-id ${runId}`,
          FailureType.ImageBuildFailed,
        );
      }
      await new Promise((r) => setTimeout(r, settings.pollIntervalMs));
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    }
  } catch (err) {
    throw azureFailure(err, `building image ${repository}:${tag.slice(0, 12)} in registry ${registry}`);
  }
}

/**
 * Puts the context at the registry's SAS URL as a block blob. A refusal (an expired SAS, say) is thrown
 * plainly, so the attempt is retried with a fresh upload URL, rather than read as the worker's own
 * permission problem.
 */
async function uploadContext(sasUrl: string, archive: Buffer, signal?: AbortSignal): Promise<void> {
  try {
    await new BlockBlobClient(sasUrl).uploadData(archive, {
      abortSignal: signal,
      blobHTTPHeaders: { blobContentType: 'application/gzip' },
    });
  } catch (err) {
    if (!isRestError(err)) throw err;
    throw new Error(
      `uploading the build context failed: ${err.statusCode ?? 'no answer'} ${err.code ?? ''} ${err.message.split('\n')[0]}`,
    );
  }
}

function pushed(run: Run, repository: string, tag: string): boolean {
  return (run.outputImages ?? []).some((i) => i.repository === repository && i.tag === tag);
}

async function runLogTail(clients: AzureClients, settings: AksSettings, runId: string, signal?: AbortSignal) {
  try {
    const { logLink } = await clients.registry.runs.getLogSasUrl(
      settings.registryResourceGroup,
      settings.registryName,
      runId,
      { abortSignal: signal },
    );
    if (!logLink) return '(no log link)';
    const text = await (await fetch(logLink, { signal })).text();
    return text.trimEnd().split('\n').slice(-20).join('\n');
  } catch (err) {
    return `(log unavailable: ${err instanceof Error ? err.message : String(err)})`;
  }
}
