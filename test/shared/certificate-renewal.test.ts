/**
 * The renewal point of a per-deployment certificate: a third of its lifetime left, whatever the lifetime;
 * a certificate whose start is unknown is taken to last a year; a real certificate (365 days, and a
 * 90-second test one) is renewed well before it expires, and the renewed one is not due again at once.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';

import { RENEW_WHEN_LEFT, renewalDue, renewalPoint } from '../../src/shared/certificate-renewal';
import { mintDeploymentCertificate, renewServerCertificate } from '../../src/targets/aks/tls-certificate';

const DAY = 86_400_000;

test('a certificate is renewed once a third of its lifetime is left', () => {
  const from = '2026-01-01T00:00:00.000Z';
  const to = '2026-01-31T00:00:00.000Z'; // 30 days
  assert.equal(RENEW_WHEN_LEFT, 1 / 3);
  assert.equal(new Date(renewalPoint(to, from)).toISOString(), '2026-01-21T00:00:00.000Z', '10 of 30 days left');
  assert.equal(renewalDue(Date.parse('2026-01-20T23:59:59.999Z'), to, from), false, 'not a moment before');
  assert.equal(renewalDue(Date.parse('2026-01-21T00:00:00.000Z'), to, from), true);
  assert.equal(renewalDue(Date.parse('2026-02-10T00:00:00.000Z'), to, from), true, 'an expired one is due');
  // Without its start (a status recorded before notBefore was kept): a year's certificate, renewed 121.67 days ahead.
  assert.equal(renewalPoint(to), Date.parse(to) - (365 * DAY) / 3);
  // A certificate whose window is empty or inverted is due at its end, not later.
  assert.equal(renewalPoint(from, to), Date.parse(from));
});

test('a minted certificate is renewed months before it expires, and its renewal is not due again', async () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const dnsName = 'inferctl-demo-0123abcd.eastus.cloudapp.azure.com';
  const minted = await mintDeploymentCertificate({ dnsName, deployment: 'demo', now });
  const leaf = new crypto.X509Certificate(minted.certPem);
  const at = renewalPoint(new Date(leaf.validTo).toISOString(), new Date(leaf.validFrom).toISOString());
  assert.ok(Date.parse(leaf.validTo) - at > 120 * DAY, 'more than 120 days of retries before expiry');
  assert.ok(at - now.getTime() > 240 * DAY, 'not renewed before day 240');

  const later = new Date(at + 1000);
  const renewed = await renewServerCertificate({ ...minted, dnsName, now: later });
  const next = new crypto.X509Certificate(renewed.certPem);
  const due = (t: number) =>
    renewalDue(t, new Date(next.validTo).toISOString(), new Date(next.validFrom).toISOString());
  assert.equal(due(later.getTime()), false, 'a retry right after a renewal finds the new certificate current');
  assert.ok(Date.parse(next.validTo) > Date.parse(leaf.validTo), 'a later expiry');

  // A 90-second test certificate is backdated by a tenth of its life, not five minutes: renewable after a minute.
  const short = await mintDeploymentCertificate({ dnsName, deployment: 'demo', validityDays: 90 / 86_400, now });
  const s = new crypto.X509Certificate(short.certPem);
  const sAt = renewalPoint(new Date(s.validTo).toISOString(), new Date(s.validFrom).toISOString());
  assert.equal(Date.parse(s.validTo) - now.getTime(), 90_000);
  assert.ok(sAt - now.getTime() >= 55_000 && sAt - now.getTime() <= 60_000, `renewed ${sAt - now.getTime()}ms in`);
});
