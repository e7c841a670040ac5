import fs from 'node:fs';
import path from 'node:path';

/** Where `npm run build` writes the bundled workflow code (dist/workflow-bundle.js). */
export const WORKFLOW_BUNDLE_PATH = path.resolve(__dirname, '..', 'workflow-bundle.js');

/** The `workflowBundle` option for Worker.create; fails clearly when the build step was skipped. */
export function workflowBundle(): { codePath: string } {
  if (!fs.existsSync(WORKFLOW_BUNDLE_PATH)) {
    throw new Error(`Workflow bundle missing at ${WORKFLOW_BUNDLE_PATH}. Run \`npm run build\` first.`);
  }
  return { codePath: WORKFLOW_BUNDLE_PATH };
}
