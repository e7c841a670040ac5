/**
 * Every `ApplicationFailure.type` inferctl raises, in one table. Workflows, activities, the CLI and tests
 * name a failure through this table, never as a string literal, so a type is spelled once and stays
 * stable (it is what a user's retry policy or alert would match on). Workflow-safe: plain data.
 */
export const FailureType = {
  // Bad input: a flag, a file, a config value that cannot be used. Fix the input and run again.
  InvalidInput: 'InvalidInput',
  InvalidDeployment: 'InvalidDeployment',
  InvalidBatchJob: 'InvalidBatchJob',
  InvalidManifest: 'InvalidManifest',
  /** A preprocessing spec (flag, sidecar) that is malformed or cannot produce the model's input. */
  InvalidPreprocess: 'InvalidPreprocess',
  InvalidTemporalConfig: 'InvalidTemporalConfig',
  InputNotFound: 'InputNotFound',
  EmptyInput: 'EmptyInput',
  PathNotAllowed: 'PathNotAllowed',
  OutputNotWritable: 'OutputNotWritable',
  /** A batch job's --output holds another job's output, or files no inferctl job claimed. */
  OutputInUse: 'OutputInUse',
  /** A blob location names an endpoint the operator did not name: no credential is sent there. */
  BlobEndpointNotAllowed: 'BlobEndpointNotAllowed',
  DeploymentNameInUse: 'DeploymentNameInUse',
  /** A signal or Update sent without the payload key to workers that hold it (payload encryption on). */
  UnencryptedInput: 'UnencryptedInput',
  // Bad model: missing, corrupt, or not something inferctl can serve.
  ModelNotFound: 'ModelNotFound',
  InvalidModel: 'InvalidModel',
  UnsupportedModel: 'UnsupportedModel',
  MissingLabels: 'MissingLabels',
  // The worker cannot do it: its configuration or hardware does not allow it.
  TargetUnavailable: 'TargetUnavailable',
  CudaUnavailable: 'CudaUnavailable',
  AksNotConfigured: 'AksNotConfigured',
  // Azure refused: sign-in, roles, quota, sizes, names. Retrying the same request cannot help.
  AzureAuthenticationFailed: 'AzureAuthenticationFailed',
  AzurePermissionDenied: 'AzurePermissionDenied',
  AzureQuotaExceeded: 'AzureQuotaExceeded',
  AzureSkuNotAvailable: 'AzureSkuNotAvailable',
  AzureBadRequest: 'AzureBadRequest',
  AzureResourceGroupMissing: 'AzureResourceGroupMissing',
  AksClusterNotFound: 'AksClusterNotFound',
  AksClusterNameInUse: 'AksClusterNameInUse',
  /** The deployment's Kubernetes namespace exists and belongs to another owner (workflow or installation). */
  AksNamespaceInUse: 'AksNamespaceInUse',
  /** An object a rollout must make in the deployment's namespace (a mirror's front) exists and is someone else's. */
  AksObjectInUse: 'AksObjectInUse',
  AksNoGpuPool: 'AksNoGpuPool',
  /** An existing cluster's kubelet identity holds no AcrPull on the registry. */
  AksAcrPullMissing: 'AksAcrPullMissing',
  NotEnoughGpus: 'NotEnoughGpus',
  // Azure Blob Storage refused a batch job's input, output or model location.
  StorageNotConfigured: 'StorageNotConfigured',
  StorageAccessDenied: 'StorageAccessDenied',
  StorageAccountNotFound: 'StorageAccountNotFound',
  StorageContainerNotFound: 'StorageContainerNotFound',
  // The cluster's Kubernetes API refused: credentials, RBAC, an object it will not accept.
  KubernetesUnauthorized: 'KubernetesUnauthorized',
  KubernetesForbidden: 'KubernetesForbidden',
  KubernetesInvalidObject: 'KubernetesInvalidObject',
  // A deployment step ran and its outcome is final.
  AksProvisioningStuck: 'AksProvisioningStuck',
  ImageBuildFailed: 'ImageBuildFailed',
  /** pip could not install the scoring script's environment (a package or version that does not exist). */
  ScriptEnvironmentFailed: 'ScriptEnvironmentFailed',
  /** A batch job's scoring script raised in init() (or on import): no shard can be scored. */
  ScriptInitFailed: 'ScriptInitFailed',
  DeploymentNotReady: 'DeploymentNotReady',
  /** The endpoint's certificate cannot be renewed by inferctl (no per-deployment CA key in its Secret). */
  CertificateNotRenewable: 'CertificateNotRenewable',
  EndpointUnprotected: 'EndpointUnprotected',
  SmokeQueryFailed: 'SmokeQueryFailed',
  SmokeQueryMismatch: 'SmokeQueryMismatch',
  BatchOutputsInconsistent: 'BatchOutputsInconsistent',
  /** A rollout's candidate answered more errors during its bake than the threshold allows. */
  CanaryErrorRate: 'CanaryErrorRate',
  /** A mirror rollout's candidate agreed with the serving version on too few pairs (or too few were compared). */
  MirrorDisagreement: 'MirrorDisagreement',
  // What a workflow fails with, wrapping the step's failure as its cause.
  DeploymentFailed: 'DeploymentFailed',
  /** What a rollout Update fails with once it has rolled back, wrapping the step's failure. */
  RolloutFailed: 'RolloutFailed',
  ShardFailed: 'ShardFailed',
  ErrorThresholdExceeded: 'ErrorThresholdExceeded',
  /** What a batch job on its own AKS GPU pool fails with (after removing the pool), wrapping the cause. */
  GpuPoolJobFailed: 'GpuPoolJobFailed',
} as const;

export type FailureType = (typeof FailureType)[keyof typeof FailureType];
