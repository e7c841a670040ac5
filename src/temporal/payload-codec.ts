/**
 * Optional payload encryption: every workflow input, result, heartbeat and query answer is sealed with
 * AES-256-GCM before it reaches the Temporal server, so history holds ciphertext only. Keys have ids;
 * the first configured key encrypts, every configured key decrypts (rotation: put the new key first
 * and keep the old one until no history needs it). Client and workers use it when configured:
 *   INFERCTL_CODEC_KEYS="2026-11=<base64 32 bytes>,2026-10=<base64 32 bytes>"
 *   or INFERCTL_CODEC_KEYS_FILE=/path/keys.json  ({"current": "2026-11", "keys": {"2026-11": "<base64>"}})
 * A worker's codec never passes on a payload that is not encrypted: it keeps only a marker that says so
 * (src/shared/refused-payload.ts), which the workflow refuses, so whoever can reach the namespace but holds
 * no key cannot start a workflow, or send a signal or an Update, that a worker acts on, and the refusal is
 * that message's alone (the workflow task goes on). INFERCTL_CODEC_ACCEPT_PLAINTEXT=1 lets workers read them
 * while histories from before encryption run out.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

import { InvalidInputError } from '../errors';
import { REFUSED_ENCODING } from '../shared/refused-payload';

const encode = (text: string): Uint8Array => Buffer.from(text);

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';

/** Thrown when a payload was sealed with a key this process does not have. */
export class CodecKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`A payload is encrypted with key "${keyId}", which is not configured here. Add it to INFERCTL_CODEC_KEYS.`);
    this.name = 'CodecKeyError';
  }
}

/** Who uses the codec: a worker refuses unencrypted payloads (marks them refused), a client reads them. */
export type CodecRole = 'client' | 'worker';

export class AesGcmCodec implements PayloadCodec {
  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
    private readonly acceptPlaintext = true,
  ) {
    for (const [id, key] of keys) {
      if (key.length !== 32) throw new InvalidInputError(`Codec key "${id}" is ${key.length} bytes; AES-256 needs 32.`);
    }
    if (!keys.has(currentKeyId))
      throw new InvalidInputError(`Codec key "${currentKeyId}" is not among the configured keys.`);
  }

  /** The current key alone, as INFERCTL_CODEC_KEYS spells it (`id=<base64>`): what a job's GPU workers get. */
  currentKeySetting(): string {
    return `${this.currentKeyId}=${this.keys.get(this.currentKeyId)!.toString('base64')}`;
  }

  /** A key for another purpose (`info` names it), derived from the current key with HKDF-SHA-256. */
  derivedKey(info: string): Buffer {
    return Buffer.from(crypto.hkdfSync('sha256', this.keys.get(this.currentKeyId)!, Buffer.alloc(0), info, 32));
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId)!;
    return Promise.resolve().then(() =>
      payloads.map((payload) => {
        const plain = temporal.api.common.v1.Payload.encode(payload).finish();
        const iv = crypto.randomBytes(12);
        const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
        const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID]: Buffer.from(this.currentKeyId) },
          data: sealed,
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    // A failure (unknown key, tampered data) rejects rather than throws.
    return Promise.resolve().then(() =>
      payloads.map((payload) => {
        const encoding = payload.metadata?.encoding ? Buffer.from(payload.metadata.encoding).toString() : undefined;
        if (encoding !== ENCRYPTED_ENCODING) {
          if (this.acceptPlaintext) return payload;
          return { metadata: { encoding: encode(REFUSED_ENCODING), 'refused-encoding': encode(encoding ?? '') } };
        }
        const keyId = Buffer.from(payload.metadata?.[KEY_ID] ?? []).toString();
        const key = this.keys.get(keyId);
        if (!key) throw new CodecKeyError(keyId);
        const sealed = Buffer.from(payload.data ?? []);
        const decipher = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
        decipher.setAuthTag(sealed.subarray(sealed.length - 16));
        const plain = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
        return temporal.api.common.v1.Payload.decode(plain);
      }),
    );
  }
}

/** The codec the environment configures, or undefined when encryption is off. */
export function codecFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  role: CodecRole = 'client',
): AesGcmCodec | undefined {
  let entries: Array<[string, string]>;
  let current: string | undefined;
  if (env.INFERCTL_CODEC_KEYS_FILE) {
    let parsed: { current?: string; keys?: Record<string, string> };
    try {
      parsed = JSON.parse(fs.readFileSync(env.INFERCTL_CODEC_KEYS_FILE, 'utf8')) as typeof parsed;
    } catch (err) {
      throw new InvalidInputError(
        `Cannot read INFERCTL_CODEC_KEYS_FILE ${env.INFERCTL_CODEC_KEYS_FILE}: ${(err as Error).message}`,
      );
    }
    entries = Object.entries(parsed.keys ?? {});
    current = parsed.current ?? entries[0]?.[0];
  } else if (env.INFERCTL_CODEC_KEYS) {
    entries = env.INFERCTL_CODEC_KEYS.split(',').map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new InvalidInputError('INFERCTL_CODEC_KEYS must look like "id=<base64 key>,id2=<base64 key>".');
      return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
    });
    current = entries[0]?.[0];
  } else {
    return undefined;
  }
  if (!current || entries.length === 0) throw new InvalidInputError('The codec configuration names no key.');
  const acceptPlaintext = role === 'client' || env.INFERCTL_CODEC_ACCEPT_PLAINTEXT === '1';
  return new AesGcmCodec(
    new Map(entries.map(([id, b64]) => [id, Buffer.from(b64, 'base64')])),
    current,
    acceptPlaintext,
  );
}
