/**
 * One request to a deployment's endpoint, the way the smoke query makes it: over HTTPS, trusting only the
 * anchors the target names (the deployment's own CA, or the user's certificate itself) and checking the
 * certificate's name as any client would; and connecting, when the target says so, to the load balancer's
 * address rather than resolving the endpoint's name (a new Azure DNS label may take a while to resolve,
 * and the certificate carries the name, not the address). Plain HTTP only for an `http://` endpoint.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

import type { EndpointAccess } from './target';

export interface EndpointRequest {
  method: string;
  headers?: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
}

export interface EndpointResponse {
  status: number;
  text: string;
}

export function endpointRequest(
  access: Pick<EndpointAccess, 'endpoint' | 'connectTo' | 'tls'>,
  pathname: string,
  init: EndpointRequest,
): Promise<EndpointResponse> {
  const url = new URL(pathname, access.endpoint);
  const secure = url.protocol === 'https:';
  if (access.tls && !secure) {
    return Promise.reject(new Error(`${access.endpoint} is not HTTPS, but the deployment has a certificate`));
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const options: https.RequestOptions = {
    host: access.connectTo ?? hostname,
    port: url.port || (secure ? 443 : 80),
    path: `${url.pathname}${url.search}`,
    method: init.method,
    headers: { host: url.host, ...init.headers, ...(init.body ? { 'content-length': String(init.body.length) } : {}) },
    signal: init.signal,
    agent: false,
  };
  if (secure) {
    const servername = access.tls?.servername ?? hostname;
    if (net.isIP(servername) === 0) options.servername = servername;
    if (access.tls) {
      options.ca = access.tls.ca;
      options.allowPartialTrustChain = Boolean(access.tls.partialChain);
    }
  }
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(init.body);
  });
}
