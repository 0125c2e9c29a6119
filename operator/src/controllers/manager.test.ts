import { describe, expect, it } from 'vitest';
import { clusterKeyOf } from './manager.ts';

describe('clusterKeyOf: owned objects map to their LanceCluster', () => {
  it('the cluster itself, a controller owner reference, or the broker instance label', () => {
    expect(clusterKeyOf('LanceCluster', { metadata: { name: 'demo', namespace: 'ns' } })).toBe('ns/demo');
    expect(clusterKeyOf('Service', { metadata: { name: 'demo-headless', namespace: 'ns', ownerReferences: [{ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', name: 'demo', uid: 'u', controller: true }] } })).toBe('ns/demo');
    expect(clusterKeyOf('Pod', { metadata: { name: 'demo-0', namespace: 'ns', labels: { 'app.kubernetes.io/name': 'lance', 'app.kubernetes.io/instance': 'demo' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'demo', uid: 'u', controller: true }] } })).toBe('ns/demo');
    expect(clusterKeyOf('Pod', { metadata: { name: 'x', namespace: 'ns', labels: { 'app.kubernetes.io/instance': 'demo' } } })).toBeUndefined();
    expect(clusterKeyOf('ConfigMap', { metadata: { name: 'x' } })).toBeUndefined();
  });
});
