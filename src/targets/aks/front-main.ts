/**
 * Entry of the aks front (front.ts), run from the scoring image on the system pool:
 *   node dist/src/targets/aks/front-main.js --upstream URL --api-key-file FILE [--tls-cert F --tls-key F]
 *     [--hold-ms MS [--max-held N] [--retry-after S]] [--upstream-ca F] [--host 0.0.0.0] [--port 8080]
 *     [--mirror-candidate URL --mirror-id ID --mirror-percent P --mirror-compare JSON]
 * Exits 2 on a bad flag or an unreadable file, 0 on SIGTERM once its connections are answered.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';

import type { MirrorCompare } from '../../shared/mirror-types';
import type { MirrorSettings } from '../local/gateway-mirror';
import { createFront } from './front';

const SERVICE_URL = /^https?:\/\/[^/]+$/;

function fail(message: string): never {
  process.stderr.write(`front: ${message}\n`);
  process.exit(2);
}

function read(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    fail(`cannot read the ${what} ${file} (${err instanceof Error ? err.message : String(err)})`);
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      upstream: { type: 'string' },
      'api-key-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'hold-ms': { type: 'string' },
      'upstream-ca': { type: 'string' },
      'mirror-candidate': { type: 'string' },
      'mirror-id': { type: 'string' },
      'mirror-percent': { type: 'string' },
      'mirror-compare': { type: 'string' },
      'max-held': { type: 'string', default: '100' },
      'retry-after': { type: 'string', default: '10' },
      'max-body-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
      host: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: '8080' },
    },
  });
  const upstream = values.upstream;
  if (!upstream || !SERVICE_URL.test(upstream)) fail('--upstream http(s)://host:port is required');
  if (!values['api-key-file']) fail('--api-key-file is required');
  const hold = values['hold-ms']
    ? {
        timeoutMs: Number(values['hold-ms']),
        maxHeld: Number(values['max-held']),
        retryAfterSeconds: Number(values['retry-after']),
      }
    : undefined;
  if (hold && !(hold.timeoutMs > 0 && hold.maxHeld >= 1 && hold.retryAfterSeconds >= 1)) {
    fail('--hold-ms, --max-held and --retry-after must be positive');
  }
  const mirror = mirrorOf(values, upstream);
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) fail('--tls-cert and --tls-key go together');
  const apiKey = read(values['api-key-file'], 'API key file').toString('utf8').trim();
  if (!apiKey) fail(`the API key file ${values['api-key-file']} is empty`);
  const tls =
    values['tls-cert'] && values['tls-key']
      ? { cert: read(values['tls-cert'], 'TLS certificate'), key: read(values['tls-key'], 'TLS key') }
      : undefined;
  const server = createFront({
    upstream,
    apiKey,
    ...(hold ? { hold } : {}),
    maxBodyBytes: Number(values['max-body-bytes']),
    ...(tls ? { tls } : {}),
    ...(values['upstream-ca'] ? { upstreamCa: read(values['upstream-ca'], 'upstream certificate') } : {}),
    ...(mirror ? { mirror } : {}),
  });
  server.listen(Number(values.port), values.host, () => {
    process.stdout.write(`front: listening on ${values.host}:${values.port}, forwarding to ${upstream}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** The mirror flags, all or none; the candidate is reached with the upstream's scheme. */
function mirrorOf(
  values: Record<string, string | undefined>,
  upstream: string,
): { candidate: string; settings: MirrorSettings } | undefined {
  const candidate = values['mirror-candidate'];
  if (!candidate && !values['mirror-id']) return undefined;
  if (!candidate || !SERVICE_URL.test(candidate) || new URL(candidate).protocol !== new URL(upstream).protocol) {
    fail('--mirror-candidate must be a Service address with the scheme of --upstream');
  }
  const percent = Number(values['mirror-percent']);
  if (!values['mirror-id'] || !(Number.isInteger(percent) && percent >= 1 && percent <= 100)) {
    fail('--mirror-id and --mirror-percent (1-100) go with --mirror-candidate');
  }
  let compare: MirrorCompare;
  try {
    compare = JSON.parse(values['mirror-compare'] ?? '') as MirrorCompare;
  } catch {
    fail('--mirror-compare must be the comparison as JSON');
  }
  if (!(compare?.mode === 'top1' || (compare?.mode === 'tolerance' && compare.tolerance >= 0))) {
    fail('--mirror-compare must be {"mode":"top1"} or {"mode":"tolerance","tolerance":X}');
  }
  return { candidate, settings: { id: values['mirror-id'], percent, compare } };
}

main();
