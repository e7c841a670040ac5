/**
 * Reading a deployment's answers in the smoke query and the rollout bake: the classifier's predictions,
 * and whether a TLS failure is the certificate's (no retry fixes it) rather than the network's.
 */
import type { Prediction } from '../src/shared/deploy-types';

/** A TLS handshake refused because of the certificate (not a network error, which a retry may fix). */
export function isCertificateRejection(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_\w+|UNABLE_TO_GET_ISSUER_CERT\w*)$/.test(
      code,
    )
  );
}

export function parsePredictions(text: string): Prediction[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const predictions = (parsed as { predictions?: unknown }).predictions;
  if (!Array.isArray(predictions) || predictions.length === 0) return undefined;
  const wellFormed = predictions.every(
    (p: unknown) =>
      typeof (p as Prediction).label === 'string' &&
      typeof (p as Prediction).score === 'number' &&
      (p as Prediction).score >= 0 &&
      (p as Prediction).score <= 1,
  );
  return wellFormed ? (predictions as Prediction[]) : undefined;
}
