import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Where `npm run build` writes the bundled workflow code (dist/workflow-bundle.js). */
export const WORKFLOW_BUNDLE_PATH = path.resolve(__dirname, '..', 'workflow-bundle.js');

const PACKAGE_JSON = path.resolve(__dirname, '..', '..', 'package.json');

/** The `workflowBundle` option for Worker.create; fails clearly when the build step was skipped. */
export function workflowBundle(): { codePath: string } {
  if (!fs.existsSync(WORKFLOW_BUNDLE_PATH)) {
    throw new Error(`Workflow bundle missing at ${WORKFLOW_BUNDLE_PATH}. Run \`npm run build\` first.`);
  }
  return { codePath: WORKFLOW_BUNDLE_PATH };
}

/**
 * The build id of this checkout's workflow code: the package version and the first 12 hex digits of the
 * bundle's SHA-256 (`0.1.0-3f2a9c1b7d4e`). Any change to workflows/ (or what they import) changes it; a
 * rebuild of the same code keeps it.
 */
export function workflowBuildId(): string {
  const { version } = JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
  const digest = crypto.createHash('sha256').update(fs.readFileSync(workflowBundle().codePath)).digest('hex');
  return `${version}-${digest.slice(0, 12)}`;
}
