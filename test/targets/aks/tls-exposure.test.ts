/**
 * The exposure decision and what it puts in the manifests: a public endpoint is HTTPS unless
 * --insecure-http says otherwise; --internal is the internal load balancer; contradictory options are
 * all named at once; the Service carries Azure's annotations and the pod mounts and serves the TLS Secret.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { KubernetesObject } from '@kubernetes/client-node';

import { InvalidInputError } from '../../../src/errors';
import { scoringManifests } from '../../../src/targets/aks/kubernetes-manifests';
import {
  DNS_LABEL_ANNOTATION,
  DNS_LABEL_PATTERN,
  INTERNAL_LB_ANNOTATION,
  dnsLabelFor,
  endpointExposure,
  endpointUrl,
} from '../../../src/targets/aks/tls-exposure';

const scope = { name: 'demo', subscriptionId: 'sub-1', resourceGroup: 'rg', location: 'westeurope' };

describe('AKS endpoint exposure', () => {
  test('public is HTTPS on 443 with a per-deployment CA, named by a DNS label; HTTP only when asked', () => {
    const https = endpointExposure(scope);
    assert.equal(https.tls?.source, 'deployment-ca');
    assert.equal(https.port, 443);
    assert.match(https.fqdn ?? '', /^inferctl-demo-[0-9a-f]{8}\.westeurope\.cloudapp\.azure\.com$/);
    assert.equal(endpointUrl(https, '20.1.2.3'), `https://${https.fqdn}`);

    const plain = endpointExposure(scope, { insecureHttp: true });
    assert.equal(plain.tls, undefined);
    assert.equal(plain.port, 80);
    assert.equal(endpointUrl(plain, '20.1.2.3'), 'http://20.1.2.3');

    const internal = endpointExposure({ ...scope, servicePort: 8080 }, { internal: true });
    assert.deepEqual([internal.internal, internal.tls, internal.dnsLabel], [true, undefined, undefined]);
    assert.equal(endpointUrl(internal, '10.224.0.4'), 'http://10.224.0.4:8080');
    const internalTls = endpointExposure(scope, { internal: true, tlsSecret: 'mine', cluster: 'team' });
    assert.deepEqual(internalTls.tls, { source: 'user-secret', secretName: 'mine' });
  });

  test('the DNS label is valid, stable, and differs across subscriptions and resource groups', () => {
    const longest = { ...scope, name: 'a'.repeat(40) };
    assert.match(dnsLabelFor(longest), DNS_LABEL_PATTERN);
    assert.equal(dnsLabelFor(scope), dnsLabelFor({ ...scope }));
    assert.notEqual(dnsLabelFor(scope), dnsLabelFor({ ...scope, subscriptionId: 'sub-2' }));
    assert.notEqual(dnsLabelFor(scope), dnsLabelFor({ ...scope, resourceGroup: 'rg2' }));
  });

  test('contradictory options are refused, every one named', () => {
    assert.throws(
      () =>
        endpointExposure(scope, {
          insecureHttp: true,
          tlsSecret: 'Not_A_Name',
          tlsCertPath: 'relative.crt',
        }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidInputError);
        for (const problem of [
          /--tls-secret or --tls-cert\/--tls-key, not both/,
          /--tls-cert and --tls-key go together/,
          /must be absolute/,
          /is not a Kubernetes Secret name/,
          /--tls-secret needs --cluster/,
          /--insecure-http and a certificate contradict/,
        ]) {
          assert.match(err.message, problem);
        }
        return true;
      },
    );
  });

  test('the manifests: Azure annotations on the Service, the TLS Secret mounted and served, HTTPS probes', () => {
    const manifests = (exposure: ReturnType<typeof endpointExposure>) => {
      const objects = scoringManifests({
        namespace: 'inferctl-demo',
        name: 'demo',
        ownerId: 'deploy-demo',
        image: 'r.azurecr.io/s:1',
        replicas: 1,
        topK: 5,
        servicePort: exposure.port,
        exposure,
      });
      type Pod = {
        spec: {
          template: {
            spec: {
              containers: { args: string[]; readinessProbe: { httpGet: { scheme?: string } } }[];
              volumes: { secret: { secretName: string } }[];
            };
          };
        };
      };
      const deployment = objects.find((o) => o.kind === 'Deployment') as KubernetesObject & Pod;
      const service = objects.find((o) => o.kind === 'Service') as KubernetesObject & {
        spec: { ports: { name: string; port: number; protocol: string }[] };
      };
      return { pod: deployment.spec.template.spec, service };
    };
    const https = manifests(endpointExposure(scope));
    assert.equal(https.service.metadata?.annotations?.[DNS_LABEL_ANNOTATION], dnsLabelFor(scope));
    assert.equal(https.service.metadata?.annotations?.[INTERNAL_LB_ANNOTATION], undefined);
    assert.deepEqual(https.service.spec.ports[0], { name: 'https', protocol: 'TCP', port: 443, targetPort: 5001 });
    const args = https.pod.containers[0]!.args.join(' ');
    assert.match(args, /--tls-cert \/etc\/inferctl-tls\/tls\.crt --tls-key \/etc\/inferctl-tls\/tls\.key/);
    assert.ok(https.pod.volumes.some((v) => v.secret?.secretName === 'demo-tls'));
    assert.equal(https.pod.containers[0]!.readinessProbe.httpGet.scheme, 'HTTPS');

    const internal = manifests(endpointExposure(scope, { internal: true }));
    assert.equal(internal.service.metadata?.annotations?.[INTERNAL_LB_ANNOTATION], 'true');
    assert.equal(internal.service.metadata?.annotations?.[DNS_LABEL_ANNOTATION], undefined);
    assert.doesNotMatch(internal.pod.containers[0]!.args.join(' '), /--tls-/);
    assert.equal(internal.pod.containers[0]!.readinessProbe.httpGet.scheme, undefined);
  });
});
