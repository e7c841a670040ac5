/**
 * bench:serve's floor for any front (script-front-bench.ts's `relay` path): the cheapest proxy there can be on
 * the front's own hop, a byte relay in Node. Each client TCP connection on 127.0.0.1 is joined to a new
 * connection to the Python server's Unix socket and the bytes are copied both ways: no HTTP parsing, no key,
 * no limits, no metrics. What the front costs above this is its HTTP parse, key check, limits and counters;
 * what this costs above `direct-unix` is what one more process copying the bytes costs on this machine.
 * A byte relay cannot keep the client's connection open across requests (it would have to find where each
 * message ends: HTTP parsing), so its client reconnects for every request, as on `direct`; the front keeps
 * the client's connection alive. `--http` is therefore the second floor (the `http-relay` path): a bare
 * node:http server forwarding each request with http.request to the same socket, as the front does, without
 * the key check, the limits or the counters: what the front costs above it is those.
 * A bench path, not product code: it checks nothing and must never serve anyone.
 *   node dist/bench/script-relay.js --socket PATH [--http]   prints "relay on 127.0.0.1:PORT" once it listens
 */
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { socket: { type: 'string' }, http: { type: 'boolean', default: false } } });
const socketPath = values.socket;
if (!socketPath) {
  process.stderr.write('script-relay: --socket PATH is required\n');
  process.exit(2);
}

/** Headers of one connection, never forwarded (the front's list). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const strip = (raw: string[]) => {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
};

const httpRelay = http.createServer((req, res) => {
  const upstream = http.request({
    createConnection: () => net.connect(socketPath),
    method: req.method,
    path: req.url,
    headers: [...strip(req.rawHeaders), 'Connection', 'close'],
  });
  upstream.once('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, strip(answer.rawHeaders));
    answer.pipe(res);
  });
  upstream.once('error', () => res.destroy());
  req.pipe(upstream);
});

const byteRelay = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect(socketPath);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  // pipe() ends the other side when one ends: gunicorn's sync worker closes after each answer, so does the client's.
  client.pipe(upstream);
  upstream.pipe(client);
});
const server = values.http ? httpRelay : byteRelay;
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`relay on 127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
