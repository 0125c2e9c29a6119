/**
 * The manifests the builders produce are accepted by the test/kube API stand-in's validation of built-in kinds
 * (the e2e suites apply them there), and the CRDs are accepted as CustomResourceDefinitions.
 */
import { describe, expect, it } from 'vitest';
import { builtinResources } from '../../../test/kube/resources.ts';
import { Store } from '../../../test/kube/store.ts';
import type { KObject } from '../../../test/kube/types.ts';
import { admit } from '../../../test/kube/validate.ts';
import { lanceClusterCrd, lanceRestoreCrd } from '../api/crd.ts';
import { desiredResources } from './desired.ts';
import { cluster, restore } from './fixtures.test-util.ts';
import { resolveRestoreSource, restoreResources, restoreTargetCluster } from './restore-job.ts';

function newStore(): { store: Store; create: (obj: { kind?: string }) => string } {
  const store = new Store();
  store.admit = admit;
  const types = builtinResources();
  const create = (obj: { kind?: string }): string => {
    const t = types.find((x) => x.kind === obj.kind);
    if (!t) throw new Error(`no type ${obj.kind}`);
    try {
      store.create(t, t.namespaced ? 'lance' : undefined, JSON.parse(JSON.stringify(obj)) as KObject);
      return 'ok';
    } catch (e) {
      return (e as Error).message;
    }
  };
  create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lance' } } as { kind: string });
  return { store, create };
}

describe('test/kube stand-in accepts the built manifests', () => {
  it('accepts every resource of a fully configured cluster', () => {
    const { create } = newStore();
    const c = cluster({
      replicas: 5,
      resources: { requests: { cpu: '500m', memory: 1073741824 }, limits: { memory: '2Gi' } },
      storage: { size: '20Gi', storageClassName: 'fast', onDelete: 'Delete' },
      objectStore: { bucket: 'bkt', endpoint: 'http://127.0.0.1:4568', forcePathStyle: true, credentialsSecret: { name: 's3' } },
      listeners: { kafkaPort: 19092, adminPort: 11992, raftPort: 11993 },
      podTemplate: {
        labels: { team: 'data' },
        annotations: { a: 'b' },
        nodeSelector: { disk: 'ssd' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'lance', effect: 'NoSchedule' }],
        priorityClassName: 'high',
      },
    });
    for (const r of desiredResources(c)) expect(create(r), `${r.kind}/${r.metadata?.name}`).toBe('ok');
  });

  it('accepts the restore plan (PVCs and Jobs)', () => {
    const { create } = newStore();
    const r = restore({ source: { bucket: 'bkt', endpoint: 'http://127.0.0.1:4568', credentialsSecret: { name: 's3' } }, pointInTime: '2026-11-22T09:00:00Z', topics: ['a'], target: { clusterName: 'restored', spec: { image: 'lance/broker:0.1.0' } } });
    const plan = restoreResources({ restore: r, source: resolveRestoreSource(r), target: restoreTargetCluster(r)! });
    for (const o of [...plan.pvcs, ...plan.jobs]) expect(create(o), `${o.kind}/${o.metadata?.name}`).toBe('ok');
  });

  it('accepts the CRDs, and its validation is live (a broken manifest is refused)', () => {
    const { create } = newStore();
    expect(create(lanceClusterCrd())).toBe('ok');
    expect(create(lanceRestoreCrd())).toBe('ok');
    const sts = desiredResources(cluster()).find((r) => r.kind === 'StatefulSet')!;
    const broken = JSON.parse(JSON.stringify(sts)) as { spec: { template: { spec: { containers: Array<{ name: string }> } } } };
    broken.spec.template.spec.containers[0].name = 'Not_A_DNS_Label';
    expect(create(broken as { kind?: string })).not.toBe('ok');
  });
});
