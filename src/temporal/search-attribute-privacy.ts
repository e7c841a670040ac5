/**
 * Search attributes are indexed by the Temporal server and so are never encrypted: the payload codec does not
 * see them. inferctl sets `DeploymentName` and `ModelName` (the model's file name) in clear by default.
 * With INFERCTL_HASH_SEARCH_ATTRIBUTES=1 (and payload encryption on) they hold a keyed hash instead,
 * `h:<16 hex>`: HMAC-SHA-256 under a key derived from the current payload key, so equal names still group
 * together in the Web UI and `inferctl list`, but the server cannot read them or try names against them.
 * A new current key gives new hashes. The workflow ids (`deploy-<name>`, `score-<name>`) stay in clear.
 */
import crypto from 'node:crypto';

import { InvalidInputError } from '../errors';
import { codecFromEnv } from './payload-codec';

/** The value to store for a name-like search attribute: the name, or its keyed hash when asked for. */
export function searchAttributeText(value: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.INFERCTL_HASH_SEARCH_ATTRIBUTES !== '1') return value;
  const codec = codecFromEnv(env);
  if (!codec) {
    throw new InvalidInputError(
      'INFERCTL_HASH_SEARCH_ATTRIBUTES=1 hashes names with a key derived from the payload key: set ' +
        'INFERCTL_CODEC_KEYS (or INFERCTL_CODEC_KEYS_FILE) too, or unset INFERCTL_HASH_SEARCH_ATTRIBUTES.',
    );
  }
  return `h:${crypto.createHmac('sha256', codec.derivedKey('inferctl search attributes')).update(value).digest('hex').slice(0, 16)}`;
}
