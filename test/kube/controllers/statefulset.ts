import { Controller, ignoreRace } from './base.ts';
import type { KObject } from '../types.ts';
import { clone, deepEqual } from '../types.ts';
import { recordEvent } from './events.ts';
import { controllerRef, isPodReady, ownedBy, templateHash } from './util.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- workload specs are walked structurally */

/**
 * StatefulSet controller: stable ordinals `<sts>-<i>`, PVCs `<tpl>-<sts>-<i>` from volumeClaimTemplates (kept across
 * pod restarts and scale-down, as with the default Retain policy), OrderedReady (one at a time, in order, waiting for
 * Ready) or Parallel management, RollingUpdate (highest ordinal first, down to partition) or OnDelete updates, and
 * status (replicas, readyReplicas, currentReplicas, updatedReplicas, revisions, observedGeneration).
 */
export class StatefulSetController extends Controller {
  protected override interested(ev: { tk: string }): boolean { return ev.tk === 'apps/statefulsets' || ev.tk === '/pods' || ev.tk === '/persistentvolumeclaims'; }

  protected reconcile(): void {
    const stsT = this.store.type('apps', 'statefulsets')!;
    for (const sts of this.store.list(stsT, undefined).items) {
      if (sts.metadata.deletionTimestamp) continue;
      this.sync(sts);
    }
  }

  private sync(sts: KObject): void {
    const s = this.store;
    const podT = s.type('', 'pods')!;
    const stsT = s.type('apps', 'statefulsets')!;
    const ns = sts.metadata.namespace!;
    const name = sts.metadata.name!;
    const spec = sts.spec;
    const replicas: number = spec.replicas ?? 1;
    const updateRevision = `${name}-${templateHash(spec.template)}`;
    const pods = s.list(podT, ns).items.filter((p) => ownedBy(p, sts));
    const byOrdinal = new Map<number, KObject>();
    for (const p of pods) {
      const m = p.metadata.name!.match(/-(\d+)$/);
      if (m && p.metadata.name === `${name}-${m[1]}`) byOrdinal.set(Number(m[1]), p);
    }
    const parallel = spec.podManagementPolicy === 'Parallel';
    const crT = s.type('apps', 'controllerrevisions')!;
    // Each template revision is kept as a ControllerRevision (data = the pod template), as kube does.
    if (!s.tryGet(crT, ns, updateRevision)) {
      const revs = s.list(crT, ns).items.filter((r) => ownedBy(r, sts));
      ignoreRace(() => s.create(crT, ns, { apiVersion: 'apps/v1', kind: 'ControllerRevision', metadata: { name: updateRevision, labels: { ...(spec.selector?.matchLabels ?? {}), 'controller.kubernetes.io/hash': updateRevision.slice(name.length + 1) }, ownerReferences: [controllerRef(sts)] }, data: clone(spec.template), revision: revs.length + 1 }));
    }
    const revisionOf = (p: KObject) => p.metadata.labels?.['controller-revision-hash'];
    let blocked = false;
    // Failed pods are replaced (deleted; the next pass recreates them).
    for (const p of pods) if (['Failed', 'Succeeded'].includes(p.status?.phase) && !p.metadata.deletionTimestamp) ignoreRace(() => s.delete(podT, ns, p.metadata.name!));
    for (let i = 0; i < replicas; i++) {
      const p = byOrdinal.get(i);
      if (!p) {
        if (blocked && !parallel) break;
        this.ensureClaims(sts, i);
        const currentRev = sts.status?.currentRevision;
        const partition = spec.updateStrategy?.type === 'RollingUpdate' ? (spec.updateStrategy.rollingUpdate?.partition ?? 0) : 0;
        // Below the partition, and under OnDelete, new pods keep the current revision if one is recorded.
        const currentTemplate = currentRev && currentRev !== updateRevision && i < partition ? s.tryGet(crT, ns, currentRev)?.data : undefined;
        const made = ignoreRace(() => s.create(podT, ns, this.podFor(sts, i, currentTemplate ?? spec.template, currentTemplate ? currentRev! : updateRevision)));
        if (made) recordEvent(s, sts, 'Normal', 'SuccessfulCreate', `create Pod ${made.metadata.name} in StatefulSet ${name} successful`, 'statefulset-controller');
        if (!parallel) blocked = true;
        continue;
      }
      // As kube (1.27+): a Pending pod whose claim went away (e.g. deleted to replace a node's disk) gets it recreated.
      if (!p.spec?.nodeName && !p.metadata.deletionTimestamp) this.ensureClaims(sts, i);
      if (!parallel && !isPodReady(p)) blocked = true;
    }
    // Scale down: highest ordinal first; OrderedReady removes one at a time and only when the rest are ready.
    const extra = [...byOrdinal.keys()].filter((i) => i >= replicas).sort((a, b) => b - a);
    if (extra.length) {
      if (parallel) for (const i of extra) { const p = byOrdinal.get(i)!; if (!p.metadata.deletionTimestamp) ignoreRace(() => s.delete(podT, ns, p.metadata.name!)); }
      else {
        const terminating = pods.some((p) => p.metadata.deletionTimestamp);
        const others = [...byOrdinal.entries()].filter(([i]) => i < extra[0]).every(([, p]) => isPodReady(p));
        if (!terminating && others) ignoreRace(() => s.delete(podT, ns, byOrdinal.get(extra[0])!.metadata.name!));
      }
    }
    // Rolling update: highest ordinal ≥ partition with an old revision, only when everything else is ready.
    if (spec.updateStrategy?.type !== 'OnDelete') {
      const partition = spec.updateStrategy?.rollingUpdate?.partition ?? 0;
      const allReady = [...byOrdinal.entries()].filter(([i]) => i < replicas).length === replicas && [...byOrdinal.values()].every((p) => isPodReady(p));
      if (allReady && !pods.some((p) => p.metadata.deletionTimestamp)) {
        const stale = [...byOrdinal.entries()].filter(([i, p]) => i < replicas && i >= partition && revisionOf(p) !== updateRevision).sort((a, b) => b[0] - a[0]);
        if (stale.length) ignoreRace(() => s.delete(podT, ns, stale[0][1].metadata.name!));
      }
    }
    const live = [...byOrdinal.values()].filter((p) => !p.metadata.deletionTimestamp);
    const updated = live.filter((p) => revisionOf(p) === updateRevision).length;
    const prevCurrent = sts.status?.currentRevision ?? updateRevision;
    const currentRevision = updated === replicas && live.length === replicas ? updateRevision : prevCurrent;
    const status = {
      observedGeneration: sts.metadata.generation,
      replicas: live.length,
      readyReplicas: live.filter(isPodReady).length,
      availableReplicas: live.filter(isPodReady).length,
      currentReplicas: live.filter((p) => revisionOf(p) === currentRevision).length,
      updatedReplicas: updated,
      currentRevision,
      updateRevision,
      collisionCount: 0,
    };
    if (!deepEqual(status, sts.status)) ignoreRace(() => s.update(stsT, ns, name, { ...sts, status }, { subresource: 'status' }));
  }

  private ensureClaims(sts: KObject, i: number): void {
    const s = this.store;
    const pvcT = s.type('', 'persistentvolumeclaims')!;
    const ns = sts.metadata.namespace!;
    for (const t of sts.spec.volumeClaimTemplates ?? []) {
      const claim = `${t.metadata.name}-${sts.metadata.name}-${i}`;
      if (s.tryGet(pvcT, ns, claim)) continue;
      const whenDeleted = sts.spec.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Delete';
      ignoreRace(() => s.create(pvcT, ns, {
        apiVersion: 'v1', kind: 'PersistentVolumeClaim',
        metadata: { name: claim, labels: { ...(t.metadata.labels ?? {}), ...(sts.spec.selector?.matchLabels ?? {}) }, ...(whenDeleted ? { ownerReferences: [controllerRef(sts)] } : {}) },
        spec: clone(t.spec),
      }));
    }
  }

  private podFor(sts: KObject, i: number, template: any, revision: string): KObject {
    const name = `${sts.metadata.name}-${i}`;
    const t = clone(template ?? {});
    const spec = clone(t.spec ?? {});
    spec.hostname = name;
    if (sts.spec.serviceName) spec.subdomain = sts.spec.serviceName;
    const vols = (spec.volumes ?? []).filter((v: any) => !(sts.spec.volumeClaimTemplates ?? []).some((c: any) => c.metadata.name === v.name));
    for (const c of sts.spec.volumeClaimTemplates ?? []) vols.push({ name: c.metadata.name, persistentVolumeClaim: { claimName: `${c.metadata.name}-${sts.metadata.name}-${i}` } });
    spec.volumes = vols;
    return {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        name,
        labels: { ...(t.metadata?.labels ?? {}), 'controller-revision-hash': revision, 'statefulset.kubernetes.io/pod-name': name, 'apps.kubernetes.io/pod-index': String(i) },
        ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
        ownerReferences: [controllerRef(sts)],
      },
      spec,
    };
  }
}
