/**
 * The workflow inbound interceptor that refuses what arrived unencrypted while payload encryption is on
 * (src/shared/refused-payload.ts): a start fails its workflow task (no step runs), a signal is dropped, an
 * Update is rejected before it is accepted (it never enters history) and a query fails. Only the one message is
 * refused; the workflow answers everyone else as before. Bundled by scripts/bundle-workflows.ts.
 */
import { ApplicationFailure, log } from '@temporalio/workflow';
import type {
  QueryInput,
  SignalInput,
  UpdateInput,
  WorkflowExecuteInput,
  WorkflowInboundCallsInterceptor,
  WorkflowInterceptorsFactory,
  Next,
} from '@temporalio/workflow';

import { FailureType } from '../src/shared/failure-types';
import { refusedArgument, unencryptedRefusal } from '../src/shared/refused-payload';

function refuseUpdate(input: UpdateInput): void {
  const refused = refusedArgument(input.args);
  if (refused) {
    throw ApplicationFailure.create({
      type: FailureType.UnencryptedInput,
      message: unencryptedRefusal(refused.encoding),
      nonRetryable: true,
    });
  }
}

class RefuseUnencrypted implements WorkflowInboundCallsInterceptor {
  execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const refused = refusedArgument(input.args);
    // Not an ApplicationFailure: the workflow task fails and is retried, the workflow never starts a step.
    if (refused) throw new Error(unencryptedRefusal(refused.encoding));
    return next(input);
  }

  handleSignal(input: SignalInput, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>): Promise<void> {
    const refused = refusedArgument(input.args);
    if (refused) {
      log.warn('Refused an unencrypted signal', { signal: input.signalName, encoding: refused.encoding });
      return Promise.resolve();
    }
    return next(input);
  }

  validateUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'validateUpdate'>): void {
    refuseUpdate(input);
    next(input);
  }

  /** For an Update without a validator (validateUpdate does not run then): it fails, having changed nothing. */
  handleUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>): Promise<unknown> {
    refuseUpdate(input);
    return next(input);
  }

  handleQuery(input: QueryInput, next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>): Promise<unknown> {
    const refused = refusedArgument(input.args);
    if (refused) throw new Error(unencryptedRefusal(refused.encoding));
    return next(input);
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ inbound: [new RefuseUnencrypted()] });
