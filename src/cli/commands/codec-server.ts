/** `inferctl codec-server`: the Web UI's window onto encrypted payloads (see src/temporal/codec-server.ts). */
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';

import type { Command } from '@commander-js/extra-typings';

import { createCodecServer } from '../../temporal/codec-server';
import { codecFromEnv } from '../../temporal/payload-codec';
import { CliError } from '../cli-error';
import { int } from '../flag-parsers';

/** `inferctl codec-server`: flags in, `codecServerCommand` out. */
export function addCodecServerCommand(program: Command): void {
  program
    .command('codec-server')
    .description('Decode encrypted payloads for the Web UI (payload encryption: INFERCTL_CODEC_KEYS) until Ctrl-C')
    .option('--port <port>', 'port to listen on', int('--port', 1), 8888)
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .option('--ui-origin <origin...>', 'Web UI origin(s) allowed to call it', [
      'http://localhost:8233',
      'http://127.0.0.1:8233',
    ])
    .option('--host-name <name...>', 'host names (besides --ip) clients reach it by; others are refused', [])
    .action(async (o) => {
      await codecServerCommand({ port: o.port, ip: o.ip, allowedOrigins: o.uiOrigin, hostNames: o.hostName });
    });
}

export async function codecServerCommand(opts: {
  port: number;
  ip: string;
  allowedOrigins: string[];
  /** Host names (besides its address) clients reach it by, for the Host check. */
  hostNames: string[];
}): Promise<void> {
  const codec = codecFromEnv();
  if (!codec) {
    throw new CliError(
      'Payload encryption is off: set INFERCTL_CODEC_KEYS (or INFERCTL_CODEC_KEYS_FILE) to the keys the workers use.',
      2,
    );
  }
  // Whoever reaches the server can decrypt: a token always (a fresh one unless the operator gives one).
  const given = process.env.INFERCTL_CODEC_SERVER_TOKEN || undefined; // empty: unset
  if (given !== undefined && given.length < 16) {
    throw new CliError('INFERCTL_CODEC_SERVER_TOKEN must be at least 16 characters (or unset: one is made).', 2);
  }
  const token = given ?? crypto.randomBytes(24).toString('base64url');
  const hosts: string[] = [];
  const server = createCodecServer({ codec, allowedOrigins: opts.allowedOrigins, token, allowedHosts: hosts });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.ip, resolve);
  });
  const { port } = server.address() as AddressInfo;
  // The Host header a browser or client sends for this server: its address, and the loopback names.
  const loopback = opts.ip === '127.0.0.1' || opts.ip === '::1' || opts.ip === 'localhost';
  const bracketed = opts.ip.includes(':') ? `[${opts.ip}]` : opts.ip;
  hosts.push(`${bracketed}:${port}`, ...(loopback ? [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`] : []));
  hosts.push(...opts.hostNames.map((h) => `${h}:${port}`));
  const url = `http://${bracketed}:${port}/${given ? '<INFERCTL_CODEC_SERVER_TOKEN>' : token}`;
  process.stdout.write(
    `Codec server on ${url} (POST …/encode, …/decode) for ${opts.allowedOrigins.join(', ')}. In the Web UI: ` +
      'Settings → Codec Server → that URL (it carries the token). Ctrl-C stops it.\n',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}
