import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** A fresh endpoint key: 32 random bytes, base64url. */
export function generateApiKey(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Writes a secret readable only by its owner (0600), atomically, unless it already exists.
 * Returns the secret on disk, so a retried activity keeps the key it generated the first time.
 */
export async function ensureSecretFile(file: string, create: () => string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, create(), { mode: 0o600 });
  await fs.rename(tmp, file);
  return (await fs.readFile(file, 'utf8')).trim();
}
