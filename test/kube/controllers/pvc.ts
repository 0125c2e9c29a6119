import fs from 'node:fs';
import path from 'node:path';
import { Controller, ignoreRace } from './base.ts';
import type { Store } from '../store.ts';
import { deepEqual } from '../types.ts';

const PROTECTION = 'kubernetes.io/pvc-protection';

/**
 * Dynamic provisioning: every PVC gets a PV backed by a directory (`<dataDir>/volumes/<ns>/<claim>-<uid8>`) and is
 * Bound at once. PVCs carry the pvc-protection finalizer (deletion waits until no pod uses them). A PV whose claim is
 * gone is deleted with its directory (reclaimPolicy Delete) or Released (Retain).
 */
export class PvcController extends Controller {
  constructor(store: Store, private readonly dataDir: string) { super(store); }

  protected override interested(ev: { tk: string }): boolean { return ['/persistentvolumeclaims', '/persistentvolumes', '/pods'].includes(ev.tk); }

  protected reconcile(): void {
    const s = this.store;
    const pvcT = s.type('', 'persistentvolumeclaims')!;
    const pvT = s.type('', 'persistentvolumes')!;
    const podT = s.type('', 'pods')!;
    const pods = s.list(podT, undefined).items;
    for (const pvc of s.list(pvcT, undefined).items) {
      const ns = pvc.metadata.namespace!;
      const name = pvc.metadata.name!;
      if (pvc.metadata.deletionTimestamp) {
        // As kube's pvc-protection controller: an unscheduled pod does not hold the claim.
        const inUse = pods.some((p) => p.metadata.namespace === ns && p.spec.nodeName && (p.spec.volumes ?? []).some((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName === name) && !['Succeeded', 'Failed'].includes(p.status?.phase));
        if (!inUse && pvc.metadata.finalizers?.includes(PROTECTION)) ignoreRace(() => s.update(pvcT, ns, name, { ...pvc, metadata: { ...pvc.metadata, finalizers: pvc.metadata.finalizers!.filter((f) => f !== PROTECTION) } }));
        continue;
      }
      if (!pvc.metadata.finalizers?.includes(PROTECTION)) {
        ignoreRace(() => s.update(pvcT, ns, name, { ...pvc, metadata: { ...pvc.metadata, finalizers: [...(pvc.metadata.finalizers ?? []), PROTECTION] } }));
        continue;
      }
      if (pvc.status?.phase === 'Bound') continue;
      const pvName = pvc.spec.volumeName || `pvc-${pvc.metadata.uid}`;
      const dir = path.join(this.dataDir, 'volumes', ns, `${name}-${pvc.metadata.uid!.slice(0, 8)}`);
      if (!s.tryGet(pvT, undefined, pvName)) {
        fs.mkdirSync(dir, { recursive: true });
        ignoreRace(() => s.create(pvT, undefined, {
          apiVersion: 'v1', kind: 'PersistentVolume',
          metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': 'lance.dev/kube-standin' } },
          spec: {
            capacity: { storage: pvc.spec.resources?.requests?.storage ?? '1Gi' }, accessModes: pvc.spec.accessModes,
            persistentVolumeReclaimPolicy: 'Delete', storageClassName: pvc.spec.storageClassName ?? 'standard', volumeMode: 'Filesystem',
            hostPath: { path: dir, type: 'DirectoryOrCreate' },
            claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: ns, name, uid: pvc.metadata.uid },
          },
        }));
        const pv = s.tryGet(pvT, undefined, pvName);
        if (pv) ignoreRace(() => s.update(pvT, undefined, pvName, { ...pv, status: { phase: 'Bound' } }, { subresource: 'status' }));
      }
      const bound = ignoreRace(() => s.update(pvcT, ns, name, { ...pvc, spec: { ...pvc.spec, volumeName: pvName, storageClassName: pvc.spec.storageClassName ?? 'standard' } }));
      if (bound) ignoreRace(() => s.update(pvcT, ns, name, { ...bound, status: { phase: 'Bound', accessModes: pvc.spec.accessModes, capacity: { storage: pvc.spec.resources?.requests?.storage ?? '1Gi' } } }, { subresource: 'status' }));
    }
    for (const pv of s.list(pvT, undefined).items) {
      const ref = pv.spec?.claimRef;
      if (!ref) continue;
      const claim = s.tryGet(pvcT, ref.namespace, ref.name);
      if (claim && claim.metadata.uid === ref.uid) continue;
      if (pv.spec.persistentVolumeReclaimPolicy === 'Delete') {
        const p = pv.spec.hostPath?.path;
        if (p && p.startsWith(path.join(this.dataDir, 'volumes'))) fs.rmSync(p, { recursive: true, force: true });
        ignoreRace(() => s.delete(pvT, undefined, pv.metadata.name!));
      } else if (!deepEqual(pv.status, { phase: 'Released' })) ignoreRace(() => s.update(pvT, undefined, pv.metadata.name!, { ...pv, status: { phase: 'Released' } }, { subresource: 'status' }));
    }
  }
}
