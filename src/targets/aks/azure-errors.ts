/**
 * Sorts Azure failures into "retry" and "tell the user what to fix". The SDK's pipeline already retries
 * 429 and 503 honouring Retry-After; what still fails here is retried by the activity (throttling, 5xx,
 * a conflicting operation in progress) unless retrying cannot help (authentication, permission, bad
 * parameters), which becomes an AzureRefusedError and so a non-retryable failure naming the fix.
 */
import { isRestError } from '@azure/core-rest-pipeline';
import { AuthenticationError, CredentialUnavailableError } from '@azure/identity';

import { PermanentError } from '../../errors';
import { FailureType } from '../../shared/failure-types';

export const AKS_ROLES_HINT =
  'The identity needs "Azure Kubernetes Service Contributor" and "Contributor" on the resource group ' +
  '(or "Owner" to create it), "AcrPush" plus "Contributor" on the registry for builds, and "Reader" on the ' +
  'subscription for the quota and SKU checks.';

/** Thrown when Azure refuses a request for a reason another attempt cannot change: sign-in, roles, quota, sizes. */
export class AzureRefusedError extends PermanentError {
  constructor(message: string, type: FailureType) {
    super(message, type);
    this.name = 'AzureRefusedError';
  }
}

/** True when Azure answered 404: for deletes and lookups that means "already gone". */
export function isNotFound(err: unknown): boolean {
  return isRestError(err) && err.statusCode === 404;
}

/** Rethrows `err` as what the activity should do with it; `doing` says what was being attempted. */
export function azureFailure(err: unknown, doing: string): Error {
  if (err instanceof PermanentError) return err;
  if (err instanceof CredentialUnavailableError || err instanceof AuthenticationError) {
    return new AzureRefusedError(
      `No usable Azure credential while ${doing}: ${firstLine(err.message)}. Sign in with \`az login\`, or set ` +
        'AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a managed/workload identity) for the worker.',
      FailureType.AzureAuthenticationFailed,
    );
  }
  if (!isRestError(err)) return err instanceof Error ? err : new Error(String(err));
  const code = err.code ?? '';
  const status = err.statusCode ?? 0;
  const detail = `${doing}: ${status} ${code} ${firstLine(err.message)}`.replace(/\s+/g, ' ');
  if (status === 401) {
    return new AzureRefusedError(
      `Azure rejected the credential while ${detail}. Check the worker's sign-in (az login, or the service principal).`,
      FailureType.AzureAuthenticationFailed,
    );
  }
  if (status === 403 || /AuthorizationFailed|LinkedAuthorizationFailed/.test(code)) {
    return new AzureRefusedError(
      `Permission denied while ${detail}. ${AKS_ROLES_HINT}`,
      FailureType.AzurePermissionDenied,
    );
  }
  if (/QuotaExceeded|InsufficientVCPUQuota|OperationNotAllowed.*quota/i.test(`${code} ${err.message}`)) {
    return new AzureRefusedError(
      `Quota exceeded while ${detail}. Request more vCPU quota for the VM family in the portal ` +
        '(Subscriptions → Usage + quotas) or pick a smaller --gpu-vm-size.',
      FailureType.AzureQuotaExceeded,
    );
  }
  if (status === 400 || status === 422 || /SkuNotAvailable|InvalidParameter|BadRequest/.test(code)) {
    return new AzureRefusedError(`Azure refused the request while ${detail}.`, FailureType.AzureBadRequest);
  }
  // 409 (another operation in progress), 429 and 5xx: worth another attempt.
  return new Error(`Azure failed while ${detail}`);
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}
