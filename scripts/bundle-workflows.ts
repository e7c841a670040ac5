/**
 * Bundles workflows/ once at build time (part of `npm run build`), so workers start in well under a
 * second instead of running webpack on every start.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { bundleWorkflowCode } from '@temporalio/worker';

import { FAILURE_CONVERTER_PATH, PAYLOAD_CONVERTER_PATH } from '../src/temporal/connection';
import { WORKFLOW_BUNDLE_PATH } from '../worker/workflow-bundle';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    // Failure messages and stack traces as encoded payloads, so payload encryption covers them too.
    failureConverterPath: FAILURE_CONVERTER_PATH,
    // With payload encryption on, an argument that arrived unencrypted is read as refused, and refused.
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
    workflowInterceptorModules: [require.resolve('../workflows/refuse-unencrypted')],
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: console.warn,
      error: console.error,
    },
  });
  await fs.mkdir(path.dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  await fs.writeFile(WORKFLOW_BUNDLE_PATH, code);
  console.log(
    `Workflow bundle written: ${path.relative(process.cwd(), WORKFLOW_BUNDLE_PATH)} (${(code.length / 1024).toFixed(0)} KiB)`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
