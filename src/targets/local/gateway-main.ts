/**
 * Entry of the local gateway process:
 *   node dist/src/targets/local/gateway-main.js --replicas-dir DIR --replicas N --ready-file FILE [--routes-file FILE]
 *     [--port 0]
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
    },
  });
  const replicasDir = values['replicas-dir'];
  const readyFile = values['ready-file'];
  const replicas = Number(values.replicas);
  if (!replicasDir || !readyFile || !Number.isInteger(replicas) || replicas < 1) {
    process.stderr.write('gateway: --replicas-dir, --replicas (>= 1) and --ready-file are required\n');
    process.exit(2);
  }
  const server = createGateway({
    replicasDir,
    replicas,
    maxBodyBytes: Number(values['max-body-bytes']),
    ...(values['routes-file'] ? { routesFile: values['routes-file'] } : {}),
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
