/**
 * What a Temporal Cloud endpoint is to a client, in front of the local dev server (which serves plain gRPC
 * only: `temporal server start-dev` has no TLS flags): an HTTP/2 server over TLS that forwards every gRPC
 * call to the dev server. It presents the certificate it is given, and optionally
 * requires a client certificate signed by a CA (mTLS: the handshake fails without one) and an API key
 * (`authorization: Bearer <key>` on every call, as Temporal Cloud checks it: gRPC status 16 UNAUTHENTICATED
 * otherwise).
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface GatewayOptions {
  /** The dev server's gRPC address, host:port. */
  target: string;
  key: Buffer;
  cert: Buffer;
  /** Require a client certificate signed by this CA. */
  clientCa?: Buffer;
  /** Require this API key on every call. */
  apiKey?: string;
}

export interface Gateway {
  address: string;
  /** Calls refused for a missing or wrong API key. */
  refusedCalls: () => number;
  /** Calls forwarded. */
  forwardedCalls: () => number;
  stop: () => Promise<void>;
}

/** Headers HTTP/2 forbids forwarding as they are, and the pseudo-headers set per hop. */
function forwardable(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(':') || k === 'connection' || k === 'host') continue;
    out[k] = v;
  }
  return out;
}

export async function startTemporalGateway(opts: GatewayOptions): Promise<Gateway> {
  const upstream = http2.connect(`http://${opts.target}`);
  upstream.on('error', () => undefined);
  let refused = 0;
  let forwarded = 0;
  const server = http2.createSecureServer({
    key: opts.key,
    cert: opts.cert,
    ALPNProtocols: ['h2'],
    ...(opts.clientCa ? { ca: opts.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (opts.apiKey && headers.authorization !== `Bearer ${opts.apiKey}`) {
      refused++;
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '16',
          'grpc-message': 'Request unauthorized: missing or wrong API key',
        },
        { endStream: true },
      );
      return;
    }
    forwarded++;
    const req = upstream.request({
      ':method': headers[':method'],
      ':path': headers[':path'],
      ':authority': opts.target,
      ...forwardable(headers),
    });
    req.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('close', () => {
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    });
    let trailers: http2.OutgoingHttpHeaders = {};
    req.on('trailers', (t: http2.IncomingHttpHeaders) => (trailers = forwardable(t)));
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) {
        // Trailers-only: the answer is all in the headers.
        stream.respond({ ':status': h[':status'], ...forwardable(h) }, { endStream: true });
        req.resume();
        return;
      }
      stream.respond({ ':status': h[':status'], ...forwardable(h) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      req.pipe(stream);
    });
    stream.pipe(req);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    refusedCalls: () => refused,
    forwardedCalls: () => forwarded,
    stop: async () => {
      for (const s of sessions) s.destroy(); // workers' long polls would hold the server open
      upstream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
