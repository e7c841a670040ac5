/**
 * Microsoft.Compute for the local ARM endpoint: the resource SKUs (VM sizes, with GPU counts and
 * restrictions) and the regional vCPU usage (quota) the aks target checks before it creates a cluster.
 */
import type { Send } from './arm-protocol';

export interface VmSku {
  name: string;
  family: string;
  vCPUs: number;
  gpus: number;
  /** Set when the size is not offered to this subscription in `location`. */
  restricted?: boolean;
}

export type Quotas = Record<string, { limit: number; used: number }>;

export const DEFAULT_SKUS: VmSku[] = [
  { name: 'Standard_D2s_v3', family: 'standardDSv3Family', vCPUs: 2, gpus: 0 },
  // What eastus offers today: NCv3 (Standard_NC6s_v3 …) was retired on 2025-09-30 and is not listed.
  { name: 'Standard_NC4as_T4_v3', family: 'standardNCASv3_T4Family', vCPUs: 4, gpus: 1 },
  { name: 'Standard_NC24ads_A100_v4', family: 'standardNCADSA100v4Family', vCPUs: 24, gpus: 1 },
  { name: 'Standard_NC40ads_H100_v5', family: 'standardNCadsH100v5Family', vCPUs: 40, gpus: 1 },
];

export function defaultQuotas(): Quotas {
  return {
    cores: { limit: 100, used: 4 },
    standardDSv3Family: { limit: 50, used: 0 },
    standardNCASv3_T4Family: { limit: 16, used: 0 },
    standardNCADSA100v4Family: { limit: 48, used: 0 },
    standardNCadsH100v5Family: { limit: 80, used: 0 },
  };
}

export class Compute {
  /** `skus` and `quotas` are live: a test may restrict a size or use quota up. */
  constructor(
    private readonly location: string,
    private readonly skus: VmSku[],
    private readonly quotas: Quotas,
  ) {}

  /** Serves the Compute routes under /subscriptions/{id}; false when `rest` is not one of them. */
  route(rest: string, send: Send): boolean {
    if (/^\/providers\/Microsoft\.Compute\/skus$/i.test(rest)) {
      send(200, { value: this.skuList() });
      return true;
    }
    if (/^\/providers\/Microsoft\.Compute\/locations\/([^/]+)\/usages$/i.test(rest)) {
      send(200, { value: this.usageList() });
      return true;
    }
    return false;
  }

  private skuList(): unknown[] {
    const loc = this.location;
    return this.skus.map((s) => ({
      resourceType: 'virtualMachines',
      name: s.name,
      tier: 'Standard',
      size: s.name.replace(/^Standard_/, ''),
      family: s.family,
      locations: [loc],
      locationInfo: [{ location: loc, zones: ['1', '2', '3'] }],
      capabilities: [
        { name: 'vCPUs', value: String(s.vCPUs) },
        { name: 'GPUs', value: String(s.gpus) },
      ],
      restrictions: s.restricted
        ? [
            {
              type: 'Location',
              values: [loc],
              restrictionInfo: { locations: [loc] },
              reasonCode: 'NotAvailableForSubscription',
            },
          ]
        : [],
    }));
  }

  private usageList(): unknown[] {
    return Object.entries(this.quotas).map(([family, q]) => ({
      unit: 'Count',
      currentValue: q.used,
      limit: q.limit,
      name: { value: family, localizedValue: family === 'cores' ? 'Total Regional vCPUs' : `${family} vCPUs` },
    }));
  }
}
