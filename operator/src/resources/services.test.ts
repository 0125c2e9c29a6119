import { describe, expect, it } from 'vitest';
import type { V1ConfigMap, V1PodDisruptionBudget, V1Service, V1ServiceAccount, V1StatefulSet } from '@kubernetes/client-node';
import { desiredResources } from './desired.ts';
import { cluster } from './fixtures.test-util.ts';
import { selectorString, statusSelector } from './names.ts';
import { podDisruptionBudget, serviceAccount } from './policy.ts';
import { clientService, headlessService } from './services.ts';

const selector = { 'app.kubernetes.io/name': 'lance', 'app.kubernetes.io/instance': 'demo', 'app.kubernetes.io/component': 'broker' };

describe('Services', () => {
  it('headless Service publishes not-ready pods for peer DNS', () => {
    const s = headlessService(cluster());
    expect(s.metadata).toMatchObject({ name: 'demo-headless', namespace: 'lance' });
    expect(s.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector });
    expect(s.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['kafka', 9092, 'kafka'],
      ['admin', 1992, 'admin'],
      ['raft', 1993, 'raft'],
    ]);
    expect(s.metadata?.ownerReferences?.[0].uid).toBe('uid-demo');
  });

  it('client Service selects only unfenced pods and exposes kafka and admin', () => {
    const s = clientService(cluster({ listeners: { kafkaPort: 19092 } }));
    expect(s.metadata?.name).toBe('demo');
    expect(s.spec?.selector).toEqual({ ...selector, 'lance.dev/fenced': 'false' });
    expect(s.spec?.publishNotReadyAddresses).toBeUndefined();
    expect(s.spec?.ports?.map((p) => [p.name, p.port])).toEqual([
      ['kafka', 19092],
      ['admin', 1992],
    ]);
  });
});

describe('PDB and ServiceAccount', () => {
  it('PDB allows one broker down at a time', () => {
    const p = podDisruptionBudget(cluster());
    expect(p.apiVersion).toBe('policy/v1');
    expect(p.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: selector } });
  });

  it('ServiceAccount mounts no token', () => {
    const sa = serviceAccount(cluster());
    expect(sa.metadata?.name).toBe('demo-broker');
    expect(sa.automountServiceAccountToken).toBe(false);
  });
});

describe('desiredResources', () => {
  it('returns every object, dependencies first, all owned by the cluster in its namespace', () => {
    const all = desiredResources(cluster({ replicas: 5 }));
    expect(all.map((r) => `${r.kind}/${r.metadata?.name}`)).toEqual([
      'ServiceAccount/demo-broker',
      'ConfigMap/demo-config',
      'Service/demo-headless',
      'Service/demo',
      'PodDisruptionBudget/demo',
      'StatefulSet/demo',
    ]);
    // each kind with the API group/version a real API server serves it under (a wrong one is a 404 at apply time)
    expect(all.map((r) => r.apiVersion)).toEqual(['v1', 'v1', 'v1', 'v1', 'policy/v1', 'apps/v1']);
    for (const r of all) {
      expect(r.metadata?.namespace).toBe('lance');
      expect(r.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'LanceCluster', uid: 'uid-demo', controller: true })]);
      expect(r.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('lance-operator');
    }
    const sts = all[5] as V1StatefulSet;
    expect(sts.spec?.replicas).toBe(5);
    const cm = all[1] as V1ConfigMap;
    expect(cm.data?.['peers.yaml']).toContain('demo-4.demo-headless.lance.svc');
    // The types the controller applies them with.
    const typed: Array<V1ServiceAccount | V1Service | V1PodDisruptionBudget> = [all[0] as V1ServiceAccount, all[2] as V1Service, all[4] as V1PodDisruptionBudget];
    expect(typed).toHaveLength(3);
  });

  it('takes the controller\'s current scaling step for the StatefulSet and peers', () => {
    const all = desiredResources(cluster({ replicas: 5 }), { replicas: 3 });
    expect((all[5] as V1StatefulSet).spec?.replicas).toBe(3);
    expect((all[1] as V1ConfigMap).data?.['peers.yaml']).not.toContain('demo-3');
  });

  it('formats the status.selector string for the scale subresource', () => {
    expect(selectorString(selector)).toBe('app.kubernetes.io/component=broker,app.kubernetes.io/instance=demo,app.kubernetes.io/name=lance');
    expect(statusSelector('demo')).toBe(selectorString(selector));
  });
});
