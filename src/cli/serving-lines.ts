/**
 * `inferctl status` lines about what keeps a serving endpoint up: its certificate's renewal (aks) and its
 * gateway's restarts (local: the serving loop's gateway watch).
 */
import type { CertificateStatus } from '../shared/deploy-types';
import type { GatewayWatchStatus } from '../shared/gateway-watch-types';

/** The serving certificate: its expiry, and when inferctl renews it (or that it is the user's to renew). */
export function certificateLine(c: CertificateStatus): string {
  const last = c.lastRenewedAt ? `, last renewed ${c.lastRenewedAt}` : '';
  if (c.renewedBy === 'you') return `certificate (your own) expires ${c.expiresAt}: inferctl does not renew it`;
  if (c.note) return `certificate expires ${c.expiresAt}, not renewed: ${c.note}`;
  return `certificate expires ${c.expiresAt}, renewed at ${c.renewAt ?? '?'}${last}`;
}

/** The gateway watch: restarts of a local gateway found gone while serving, and a restart that fails. */
export function gatewayLines(g: GatewayWatchStatus | undefined, running: boolean): string[] {
  const lines: string[] = [];
  if (g?.restarts) {
    const last = `last at ${g.lastRestartAt} (pid ${g.gonePid} gone, pid ${g.pid} started)`;
    lines.push(`  gateway found gone and started again on its address: ${g.restarts} time(s), ${last}`);
  }
  if (running && g?.failing) lines.push(`  gateway gone, not started again yet (retried): ${g.failing}`);
  return lines;
}
