/**
 * Reads the local gateway's own counters (GET /gateway/metrics, Prometheus text): the requests it received
 * and holds. No key is sent or needed; the counters carry no request content.
 */
import type { GatewayCounts } from '../target';
import { GATEWAY_METRICS_PATH } from './gateway';

export async function readGatewayCounts(url: string, signal?: AbortSignal): Promise<GatewayCounts> {
  const timeout = AbortSignal.timeout(2000);
  const res = await fetch(`${url}${GATEWAY_METRICS_PATH}`, {
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`The gateway at ${url} answered ${res.status} for its counters.`);
  return parseGatewayCounts(text);
}

export function parseGatewayCounts(text: string): GatewayCounts {
  const value = (name: string): number => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return {
    scoringTotal: value('inferctl_gateway_scoring_requests_total'),
    inFlight: value('inferctl_gateway_in_flight'),
    held: value('inferctl_gateway_held'),
    heldTotal: value('inferctl_gateway_held_total'),
    heldAnsweredTotal: value('inferctl_gateway_held_answered_total'),
    heldRefusedTotal: value('inferctl_gateway_held_refused_total'),
  };
}
