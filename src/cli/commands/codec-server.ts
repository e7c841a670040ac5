/** `inferctl codec-server`: the Web UI's window onto encrypted payloads (see src/temporal/codec-server.ts). */
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
    .action(async (o) => {
      await codecServerCommand({ port: o.port, ip: o.ip, allowedOrigins: o.uiOrigin });
    });
}

export async function codecServerCommand(opts: { port: number; ip: string; allowedOrigins: string[] }): Promise<void> {
  const codec = codecFromEnv();
  if (!codec) {
    throw new CliError(
      'Payload encryption is off: set INFERCTL_CODEC_KEYS (or INFERCTL_CODEC_KEYS_FILE) to the keys the workers use.',
      2,
    );
  }
  const token = process.env.INFERCTL_CODEC_SERVER_TOKEN;
  const server = createCodecServer({ codec, allowedOrigins: opts.allowedOrigins, token });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.ip, resolve);
  });
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `Codec server on http://${opts.ip}:${port} (POST /encode, /decode) for ${opts.allowedOrigins.join(', ')}` +
      `${token ? ', token required' : ''}. In the Web UI: Settings → Codec Server → this URL. Ctrl-C stops it.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}
