/**
 * The per-deployment certificate of a public AKS endpoint, made with @peculiar/x509 on Node's webcrypto:
 * a one-use CA (ECDSA P-256, basicConstraints CA:true pathLen 0, keyCertSign + cRLSign) and the server
 * certificate it signs (CA:false, digitalSignature, serverAuth, SAN = the endpoint's DNS name). The CA's
 * private key is dropped as soon as the server certificate is signed, so trusting this CA trusts exactly
 * this one server certificate: pinning the CA is pinning the endpoint.
 */
import crypto from 'node:crypto';

import 'reflect-metadata'; // before @peculiar/x509: its dependency injection (tsyringe) needs the Reflect metadata API at import time

import * as x509 from '@peculiar/x509';

const KEY_ALGORITHM: crypto.webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: crypto.webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** Clients whose clock runs a little behind must still accept a certificate made a moment ago. */
const CLOCK_SKEW_MS = 5 * 60_000;
export const DEFAULT_VALIDITY_DAYS = 365;

// The library's Crypto type is the DOM's (not in this project's lib); Node's webcrypto implements it.
x509.cryptoProvider.set(crypto.webcrypto as never);

export interface DeploymentCertificate {
  /** The CA certificate (PEM): what clients trust. */
  caPem: string;
  /** The server certificate (PEM), followed by nothing: the CA is the trust anchor, not a chain link. */
  certPem: string;
  /** The server's private key (PKCS#8 PEM): goes into the TLS Secret and nowhere else. */
  keyPem: string;
}

export interface CertificateRequest {
  /** The endpoint's DNS name: the server certificate's only subject alternative name. */
  dnsName: string;
  /** Who the CA says it is, e.g. the deployment name. */
  deployment: string;
  validityDays?: number;
  now?: Date;
}

export async function mintDeploymentCertificate(request: CertificateRequest): Promise<DeploymentCertificate> {
  const webcrypto = crypto.webcrypto;
  const now = request.now ?? new Date();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(now.getTime() + (request.validityDays ?? DEFAULT_VALIDITY_DAYS) * 86_400_000);
  const caKeys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, false, ['sign', 'verify']);
  const serverKeys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const caName = `CN=inferctl deployment CA ${request.deployment}, O=inferctl`;

  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false),
    ],
  });
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${request.dnsName}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: request.dnsName }], false),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  return {
    caPem: ca.toString('pem') + '\n',
    certPem: server.toString('pem') + '\n',
    keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n',
  };
}

/** SHA-256 over the first certificate of a PEM, as OpenSSL prints it (AB:CD:…). */
export function certificateFingerprint(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}

/** A positive 128-bit serial (the top bit cleared so DER keeps it positive without padding). */
function serial(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}
