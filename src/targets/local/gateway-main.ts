/**
 * Entry of the local gateway process:
 *   node dist/src/targets/local/gateway-main.js --replicas-dir DIR --replicas N --ready-file FILE [--routes-file FILE]
 *     [--port 0] [--hold-ms MS --max-held N --retry-after S]
 * With --hold-ms (scale to zero) it may start with --replicas 0 and holds requests while no replica runs.
 * Writes FILE ({pid, port, url}) once it listens; exits on SIGTERM.
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

import { createGateway } from './gateway';

function main(): void {
  const { values } = parseArgs({
    options: {
      'replicas-dir': { type: 'string' },
      replicas: { type: 'string' },
      'ready-file': { type: 'string' },
      'routes-file': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'max-body-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
      'hold-ms': { type: 'string' },
      'max-held': { type: 'string', default: '100' },
      'retry-after': { type: 'string', default: '10' },
    },
  });
  const replicasDir = values['replicas-dir'];
  const readyFile = values['ready-file'];
  const replicas = Number(values.replicas);
  const holdMs = values['hold-ms'] === undefined ? undefined : Number(values['hold-ms']);
  const hold =
    holdMs === undefined
      ? undefined
      : { timeoutMs: holdMs, maxHeld: Number(values['max-held']), retryAfterSeconds: Number(values['retry-after']) };
  const badHold = hold && !(hold.timeoutMs > 0 && hold.maxHeld >= 1 && hold.retryAfterSeconds >= 1);
  if (!replicasDir || !readyFile || !Number.isInteger(replicas) || replicas < (hold ? 0 : 1) || badHold) {
    process.stderr.write(
      'gateway: --replicas-dir, --replicas (>= 1, or >= 0 with --hold-ms) and --ready-file are required; ' +
        '--hold-ms, --max-held and --retry-after must be positive\n',
    );
    process.exit(2);
  }
  const server = createGateway({
    replicasDir,
    replicas,
    maxBodyBytes: Number(values['max-body-bytes']),
    ...(hold ? { hold } : {}),
    ...(values['routes-file'] ? { routesFile: values['routes-file'] } : {}),
  });
  // A port another process holds (a restart on the gateway's old address): one line in the log, then exit.
  server.once('error', (err) => {
    process.stderr.write(`gateway: cannot listen on ${values.host}:${values.port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(Number(values.port), values.host, () => {
    const { port } = server.address() as AddressInfo;
    const tmp = `${readyFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ pid: process.pid, port, url: `http://${values.host}:${port}` }));
    fs.renameSync(tmp, readyFile);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
