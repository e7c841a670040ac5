/**
 * When a per-deployment server certificate is renewed: once a third of its lifetime is left (a 365-day
 * certificate at about day 243), early enough that a failed renewal has months of retries before clients see
 * an expired certificate. Workflow-safe: the deploy workflow sets its timer with it, the renewal activity
 * checks the served certificate against the same rule (so a retry after a renewal finds it current).
 */

/** The share of a certificate's lifetime left when it is renewed. */
export const RENEW_WHEN_LEFT = 1 / 3;
/** A certificate whose start is unknown (a status recorded before notBefore was kept) is taken to last this long. */
const ASSUMED_LIFETIME_MS = 365 * 86_400_000;

/** The renewal point (ms since the epoch) of a certificate valid from `notBefore` to `notAfter` (ISO 8601). */
export function renewalPoint(notAfter: string, notBefore?: string): number {
  const end = Date.parse(notAfter);
  const start = notBefore === undefined ? end - ASSUMED_LIFETIME_MS : Date.parse(notBefore);
  return end - Math.max(0, end - start) * RENEW_WHEN_LEFT;
}

/** Whether a certificate is due for renewal at `now` (ms since the epoch). */
export function renewalDue(now: number, notAfter: string, notBefore?: string): boolean {
  return now >= renewalPoint(notAfter, notBefore);
}

/** The serving certificate's life (workflows/deploy/certificate.ts). */
export interface CertificateStatus {
  /** When the certificate that serves now expires (ISO 8601). */
  expiresAt: string;
  /** inferctl renews its per-deployment certificate; your own (--tls-cert, --tls-secret) is yours to renew. */
  renewedBy: 'inferctl' | 'you';
  /** When it is renewed next (a third of its lifetime left). */
  renewAt?: string;
  renewals: number;
  lastRenewedAt?: string;
  /** Why it is not renewed (a Secret without the CA key: a deployment made before it was kept). */
  note?: string;
}
