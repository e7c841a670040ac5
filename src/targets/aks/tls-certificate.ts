/**
 * The per-deployment certificate of a public AKS endpoint, made with @peculiar/x509 on Node's webcrypto:
 * a one-use CA (ECDSA P-256, basicConstraints CA:true pathLen 0, keyCertSign + cRLSign) and the server
 * certificate it signs (CA:false, digitalSignature, serverAuth, SAN = the endpoint's DNS name). The CA's
 * private key is kept only to renew the server certificate (`renewServerCertificate`: a new key and
 * certificate for the same name, signed by the same CA, so clients that pinned the CA keep working); the
 * caller keeps it where only this deployment's control plane reads it (tls-secret.ts), never in the pods.
 * The CA outlives the server certificates it signs (CA_VALIDITY_DAYS).
 */
import crypto from 'node:crypto';

import 'reflect-metadata'; // before @peculiar/x509: its dependency injection (tsyringe) needs the Reflect metadata API at import time

import * as x509 from '@peculiar/x509';

const KEY_ALGORITHM: crypto.webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: crypto.webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** Clients whose clock runs a little behind must still accept a certificate made a moment ago. */
const CLOCK_SKEW_MS = 5 * 60_000;
export const DEFAULT_VALIDITY_DAYS = 365;
/** The CA's own lifetime: renewals re-sign under it, so clients trust one CA for the deployment's life. */
export const CA_VALIDITY_DAYS = 3650;

// The library's Crypto type is the DOM's (not in this project's lib); Node's webcrypto implements it.
x509.cryptoProvider.set(crypto.webcrypto as never);

export interface DeploymentCertificate {
  /** The CA certificate (PEM): what clients trust. */
  caPem: string;
  /** The server certificate (PEM), followed by nothing: the CA is the trust anchor, not a chain link. */
  certPem: string;
  /** The server's private key (PKCS#8 PEM): goes into the TLS Secret and nowhere else. */
  keyPem: string;
  /** The CA's private key (PKCS#8 PEM), for renewals: kept apart from what the pods mount. */
  caKeyPem: string;
}

export interface RenewalRequest {
  caPem: string;
  caKeyPem: string;
  dnsName: string;
  validityDays?: number;
  now?: Date;
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
  const caNotAfter = new Date(now.getTime() + CA_VALIDITY_DAYS * 86_400_000);
  const caKeys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const caName = `CN=inferctl deployment CA ${request.deployment}, O=inferctl`;

  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore,
    notAfter: caNotAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false),
    ],
  });
  const server = await serverCertificate(ca, caKeys, request.dnsName, request.validityDays, now);
  return {
    caPem: ca.toString('pem') + '\n',
    ...server,
    caKeyPem: await pemKey(caKeys.privateKey),
  };
}

/** A new server key and certificate for `dnsName`, signed by the deployment's CA (its certificate and key). */
export async function renewServerCertificate(request: RenewalRequest): Promise<{ certPem: string; keyPem: string }> {
  const ca = new x509.X509Certificate(request.caPem);
  const privateKey = await crypto.webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(request.caKeyPem),
    KEY_ALGORITHM,
    false,
    ['sign'],
  );
  // The library types keys as the DOM's CryptoKey (not in this project's lib); they are Node's webcrypto keys.
  const publicKey = (await (ca.publicKey.export as (...args: unknown[]) => Promise<unknown>).call(
    ca.publicKey,
    KEY_ALGORITHM,
    ['verify'],
  )) as crypto.webcrypto.CryptoKey;
  return serverCertificate(ca, { privateKey, publicKey }, request.dnsName, request.validityDays, request.now);
}

async function serverCertificate(
  ca: x509.X509Certificate,
  caKeys: { privateKey: crypto.webcrypto.CryptoKey; publicKey: crypto.webcrypto.CryptoKey },
  dnsName: string,
  validityDays = DEFAULT_VALIDITY_DAYS,
  now = new Date(),
): Promise<{ certPem: string; keyPem: string }> {
  const serverKeys = await crypto.webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const notAfter = new Date(Math.min(now.getTime() + validityDays * 86_400_000, ca.notAfter.getTime()));
  // Backdated for slow clocks, by at most a tenth of its life (a short-lived test certificate stays renewable).
  const skewMs = Math.min(CLOCK_SKEW_MS, (validityDays * 86_400_000) / 10);
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${dnsName}`,
    issuer: ca.subject,
    notBefore: new Date(now.getTime() - skewMs),
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: dnsName }], false),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false),
    ],
  });
  return { certPem: server.toString('pem') + '\n', keyPem: await pemKey(serverKeys.privateKey) };
}

async function pemKey(key: crypto.webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
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
