import { Controller, ignoreRace } from './base.ts';
import type { KObject } from '../types.ts';
import { clone, deepEqual } from '../types.ts';
import { controllerRef, isPodReady, ownedBy, randomSuffix, templateHash } from './util.ts';

/**
 * Deployment → ReplicaSet (one per template hash; old ones scaled to 0 at once — no surge/unavailability math) and
 * ReplicaSet → pods. Enough for helm charts that ship a Deployment; not a faithful rollout engine.
 */
export class DeploymentController extends Controller {
  protected override interested(ev: { tk: string }): boolean { return ['apps/deployments', 'apps/replicasets'].includes(ev.tk); }

  protected reconcile(): void {
    const s = this.store;
    const dT = s.type('apps', 'deployments')!;
    const rsT = s.type('apps', 'replicasets')!;
    for (const d of s.list(dT, undefined).items) {
      if (d.metadata.deletionTimestamp) continue;
      const ns = d.metadata.namespace!;
      const hash = templateHash(d.spec.template);
      const rsName = `${d.metadata.name}-${hash}`;
      const owned = s.list(rsT, ns).items.filter((r) => ownedBy(r, d));
      let cur = owned.find((r) => r.metadata.name === rsName);
      if (!cur) {
        const t = clone(d.spec.template);
        t.metadata ??= {};
        t.metadata.labels = { ...(t.metadata.labels ?? {}), 'pod-template-hash': hash };
        cur = ignoreRace(() => s.create(rsT, ns, {
          apiVersion: 'apps/v1', kind: 'ReplicaSet',
          metadata: { name: rsName, labels: t.metadata.labels, ownerReferences: [controllerRef(d)] },
          spec: { replicas: d.spec.replicas, selector: { matchLabels: { ...(d.spec.selector?.matchLabels ?? {}), 'pod-template-hash': hash }, ...(d.spec.selector?.matchExpressions ? { matchExpressions: d.spec.selector.matchExpressions } : {}) }, template: t },
        }));
      } else if (cur.spec.replicas !== d.spec.replicas) {
        const c = cur;
        ignoreRace(() => s.update(rsT, ns, c.metadata.name!, { ...c, spec: { ...c.spec, replicas: d.spec.replicas } }));
      }
      for (const old of owned) if (old.metadata.name !== rsName && old.spec.replicas !== 0) ignoreRace(() => s.update(rsT, ns, old.metadata.name!, { ...old, spec: { ...old.spec, replicas: 0 } }));
      const rsNow = s.list(rsT, ns).items.filter((r) => ownedBy(r, d));
      const total = rsNow.reduce((a, r) => a + (r.status?.replicas ?? 0), 0);
      const ready = rsNow.reduce((a, r) => a + (r.status?.readyReplicas ?? 0), 0);
      const updated = cur?.status?.replicas ?? 0;
      const available = ready >= (d.spec.replicas ?? 1);
      const status = {
        observedGeneration: d.metadata.generation, replicas: total, updatedReplicas: updated, readyReplicas: ready, availableReplicas: ready,
        ...(total - ready > 0 ? { unavailableReplicas: total - ready } : {}),
        conditions: [{ type: 'Available', status: available ? 'True' : 'False', reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', message: available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.' }],
      };
      if (!deepEqual(status, d.status)) ignoreRace(() => s.update(dT, ns, d.metadata.name!, { ...d, status }, { subresource: 'status' }));
    }
  }
}

export class ReplicaSetController extends Controller {
  protected override interested(ev: { tk: string }): boolean { return ['apps/replicasets', '/pods'].includes(ev.tk); }

  protected reconcile(): void {
    const s = this.store;
    const rsT = s.type('apps', 'replicasets')!;
    const podT = s.type('', 'pods')!;
    for (const rs of s.list(rsT, undefined).items) {
      if (rs.metadata.deletionTimestamp) continue;
      const ns = rs.metadata.namespace!;
      const pods = s.list(podT, ns).items.filter((p) => ownedBy(p, rs) && !p.metadata.deletionTimestamp && !['Succeeded', 'Failed'].includes(p.status?.phase));
      const want: number = rs.spec.replicas ?? 1;
      for (let i = pods.length; i < want; i++) {
        const t = clone(rs.spec.template ?? {});
        ignoreRace(() => s.create(podT, ns, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${rs.metadata.name}-${randomSuffix()}`, labels: t.metadata?.labels ?? {}, ownerReferences: [controllerRef(rs)] }, spec: t.spec }));
      }
      for (const p of pods.slice(want)) ignoreRace(() => s.delete(podT, ns, p.metadata.name!));
      const status = { replicas: Math.min(pods.length, want), readyReplicas: pods.filter(isPodReady).length, availableReplicas: pods.filter(isPodReady).length, fullyLabeledReplicas: pods.length, observedGeneration: rs.metadata.generation };
      if (!deepEqual(status, rs.status)) ignoreRace(() => s.update(rsT, ns, rs.metadata.name!, { ...rs, status } as KObject, { subresource: 'status' }));
    }
  }
}
