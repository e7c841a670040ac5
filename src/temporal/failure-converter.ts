/**
 * The failure converter client and workers share (the workflow bundle takes it by path, see
 * scripts/bundle-workflows.ts): a failure's message and stack trace travel as an encoded payload
 * (`encodedAttributes`), not as plain fields, so the payload codec encrypts them with everything else when
 * payload encryption is on. Without encryption they are a plain JSON payload the Web UI shows as before.
 * Workflow-safe: the SDK's common package only.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
