/**
 * A scoring-server replica process (what the local target starts, and what the AKS image runs):
 *   node dist/src/server/main.js --model PATH --api-key-file PATH [--host 127.0.0.1] [--port 0]
 *        [--ready-file PATH] [--top-k 5] [--max-body-bytes 10485760]
 * Loads the model once (init), listens, then writes the ready file ({pid, port, url, modelDigest}).
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

import { Classifier } from '../scoring/classifier';
import { createScoringServer } from './scoring-server';

function fail(message: string): never {
  process.stderr.write(`scoring server: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      'api-key-file': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'ready-file': { type: 'string' },
      'top-k': { type: 'string', default: '5' },
      'max-body-bytes': { type: 'string', default: String(10 * 1024 * 1024) },
    },
  });
  if (!values.model || !values['api-key-file']) fail('--model and --api-key-file are required');
  const keyFile = values['api-key-file'];
  let mode: number;
  try {
    mode = fs.statSync(keyFile).mode;
  } catch {
    fail(`API key file not found: ${keyFile}`);
  }
  if ((mode & 0o077) !== 0) fail(`API key file ${keyFile} is readable by others; chmod 600 it.`);
  const apiKey = fs.readFileSync(keyFile, 'utf8').trim();
  if (!apiKey) fail(`API key file ${keyFile} is empty`);

  let classifier: Classifier;
  try {
    classifier = await Classifier.load(values.model);
  } catch (err) {
    fail(`cannot load the model: ${err instanceof Error ? err.message : String(err)}`);
  }
  const server = createScoringServer({
    classifier,
    apiKey,
    topK: Number(values['top-k']),
    maxBodyBytes: Number(values['max-body-bytes']),
  });
  server.listen(Number(values.port), values.host, () => {
    const { port } = server.address() as AddressInfo;
    const url = `http://${values.host}:${port}`;
    process.stdout.write(
      `scoring server ready on ${url} (model ${classifier.info.digest.slice(0, 19)}, ${classifier.executionProvider})\n`,
    );
    const readyFile = values['ready-file'];
    if (readyFile) {
      fs.writeFileSync(
        `${readyFile}.tmp`,
        JSON.stringify({ pid: process.pid, port, url, modelDigest: classifier.info.digest }),
      );
      fs.renameSync(`${readyFile}.tmp`, readyFile);
    }
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
