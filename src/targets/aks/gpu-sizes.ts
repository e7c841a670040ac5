/**
 * GPU VM sizes for inference on AKS: the default, the documented alternatives, and the sizes Azure has
 * retired (a retired size is no longer offered, so a request for one would fail at Azure; inferctl
 * refuses it first, naming what to use instead).
 */
import { InvalidInputError } from '../../errors';
import { FailureType } from '../../shared/failure-types';

/** One NVIDIA T4 (16 GB) per node: the NCasT4_v3 family, the inference size Azure recommends. */
export const DEFAULT_GPU_VM_SIZE = 'Standard_NC4as_T4_v3';

/** Sizes the README documents, one GPU each, smallest first. */
export const GPU_VM_SIZES = [
  { size: 'Standard_NC4as_T4_v3', gpu: '1× T4 16 GB', family: 'NCasT4_v3' },
  { size: 'Standard_NC24ads_A100_v4', gpu: '1× A100 80 GB', family: 'NC A100 v4' },
  { size: 'Standard_NC40ads_H100_v5', gpu: '1× H100 NVL 94 GB', family: 'NC H100 v5' },
] as const;

/** Retired sizes and when: the NCv3 series (V100) was retired on 30 September 2025. */
const RETIRED: Record<string, string> = {
  standard_nc6s_v3: '2025-09-30',
  standard_nc12s_v3: '2025-09-30',
  standard_nc24s_v3: '2025-09-30',
  standard_nc24rs_v3: '2025-09-30',
};

/** Throws an InvalidInputError when `vmSize` has been retired, naming the current sizes. */
export function assertNotRetired(vmSize: string): void {
  const retiredOn = RETIRED[vmSize.toLowerCase()];
  if (!retiredOn) return;
  throw new InvalidInputError(
    `VM size ${vmSize} was retired by Azure on ${retiredOn} and can no longer be created. Use --gpu-vm-size ` +
      GPU_VM_SIZES.map((s) => `${s.size} (${s.gpu})`).join(', ') +
      ` (default ${DEFAULT_GPU_VM_SIZE}).`,
    FailureType.AzureSkuNotAvailable,
  );
}
