/**
 * The per-deployment certificate, read back with Node's own X509Certificate: the SAN is the endpoint's
 * DNS name alone, the validity window brackets now, the key usages are a CA's and a TLS server's, the
 * server certificate is signed by the CA (and by nothing else), and the key matches the certificate.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';

import 'reflect-metadata'; // before @peculiar/x509
import * as x509 from '@peculiar/x509';

import {
  CA_VALIDITY_DAYS,
  certificateFingerprint,
  mintDeploymentCertificate,
  renewServerCertificate,
} from '../../../src/targets/aks/tls-certificate';

const DNS_NAME = 'inferctl-demo-0123abcd.eastus.cloudapp.azure.com';

describe('per-deployment TLS certificate', () => {
  test('a CA and a server certificate for the endpoint name, valid now, with the right usages', async () => {
    const now = new Date('2026-12-01T12:00:00Z');
    const minted = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'demo', validityDays: 30, now });
    const ca = new crypto.X509Certificate(minted.caPem);
    const server = new crypto.X509Certificate(minted.certPem);

    assert.equal(server.subjectAltName, `DNS:${DNS_NAME}`);
    assert.equal(server.checkHost(DNS_NAME), DNS_NAME);
    assert.equal(server.checkHost('inferctl-other-0123abcd.eastus.cloudapp.azure.com'), undefined);
    assert.equal(server.checkIP('127.0.0.1'), undefined, 'no IP address in the SAN');

    for (const cert of [ca, server]) {
      assert.ok(new Date(cert.validFrom) <= now && now < new Date(cert.validTo), `${cert.subject} valid now`);
      assert.ok(new Date(cert.validFrom) > new Date(now.getTime() - 10 * 60_000), 'backdated by minutes only');
    }
    assert.equal(new Date(server.validTo).getTime(), now.getTime() + 30 * 86_400_000);
    assert.equal(new Date(ca.validTo).getTime(), now.getTime() + CA_VALIDITY_DAYS * 86_400_000, 'the CA outlives it');
    assert.equal(ca.ca, true);
    assert.equal(server.ca, false);
    assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: TLS server only');
    assert.match(ca.subject, /inferctl deployment CA demo/);

    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey), 'the CA signed the server certificate');
    const stranger = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'demo' });
    assert.equal(server.verify(new crypto.X509Certificate(stranger.caPem).publicKey), false);
    assert.ok(server.checkPrivateKey(crypto.createPrivateKey(minted.keyPem)), 'the key is the certificate’s');
    assert.notEqual(minted.certPem, stranger.certPem);
    assert.equal(certificateFingerprint(minted.caPem), ca.fingerprint256);
    assert.ok(!minted.caPem.includes('PRIVATE KEY') && !minted.certPem.includes('PRIVATE KEY'));
  });

  test('a renewal: a new key and certificate for the same name, signed by the same CA', async () => {
    const minted = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'demo', validityDays: 1 });
    const ca = new crypto.X509Certificate(minted.caPem);
    const later = new Date(Math.floor(Date.now() / 1000) * 1000 + 12 * 3_600_000); // whole seconds, as X.509 keeps them
    const renewed = await renewServerCertificate({ ...minted, dnsName: DNS_NAME, validityDays: 1, now: later });
    const before = new crypto.X509Certificate(minted.certPem);
    const after = new crypto.X509Certificate(renewed.certPem);
    assert.notEqual(after.fingerprint256, before.fingerprint256, 'a new certificate');
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.ok(after.checkIssued(ca) && after.verify(ca.publicKey), 'signed by the CA clients already trust');
    assert.ok(after.checkPrivateKey(crypto.createPrivateKey(renewed.keyPem)), 'with its own new key');
    assert.equal(after.checkPrivateKey(crypto.createPrivateKey(minted.keyPem)), false);
    assert.equal(after.subjectAltName, `DNS:${DNS_NAME}`);
    assert.equal(new Date(after.validTo).getTime(), later.getTime() + 86_400_000, 'valid a lifetime from the renewal');
    const stranger = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'other' });
    await assert.rejects(
      renewServerCertificate({ caPem: minted.caPem, caKeyPem: stranger.caKeyPem, dnsName: DNS_NAME }).then((r) => {
        if (!new crypto.X509Certificate(r.certPem).verify(ca.publicKey)) throw new Error('not signed by the CA');
      }),
      /not signed by the CA/,
      'another CA’s key makes nothing the pinned CA vouches for',
    );
  });

  test('the key usage bits read back from the DER (CA: keyCertSign, cRLSign; server: digitalSignature)', async () => {
    const minted = await mintDeploymentCertificate({ dnsName: DNS_NAME, deployment: 'demo' });
    // Node exposes no key-usage bits, so read them with the generating library's parser.
    const usages = (pem: string) => new x509.X509Certificate(pem).getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
    assert.equal(usages(minted.caPem), x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(usages(minted.certPem), x509.KeyUsageFlags.digitalSignature);
    const basic = new x509.X509Certificate(minted.caPem).getExtension(x509.BasicConstraintsExtension);
    assert.equal(basic?.pathLength, 0);
  });
});
