import { Controller, ignoreRace } from './base.ts';
import { FOREGROUND } from '../store.ts';
import { CR_CLEANUP } from '../schema.ts';
import type { KObject } from '../types.ts';

/**
 * Garbage collector: dependents whose owners are all gone are deleted (background); owners in foreground deletion
 * wait for dependents with blockOwnerDeletion before their `foregroundDeletion` finalizer is removed. Also finishes
 * namespace deletion (deletes contents, then the namespace).
 */
export class GcController extends Controller {
  protected reconcile(): void {
    const s = this.store;
    const liveUids = new Set<string>();
    const all: { t: ReturnType<typeof s.allTypes>[number]; o: KObject }[] = [];
    for (const t of s.allTypes()) {
      for (const o of s.list(t, undefined).items) { liveUids.add(o.metadata.uid!); all.push({ t, o }); }
    }
    for (const { t, o } of all) {
      const refs = o.metadata.ownerReferences ?? [];
      if (refs.length && !o.metadata.deletionTimestamp) {
        const live = refs.filter((r) => liveUids.has(r.uid));
        if (live.length === 0) ignoreRace(() => s.delete(t, o.metadata.namespace, o.metadata.name!, { propagationPolicy: 'Background' }));
        else if (live.length !== refs.length) ignoreRace(() => s.update(t, o.metadata.namespace, o.metadata.name!, { ...o, metadata: { ...o.metadata, ownerReferences: live } }));
      }
      if (o.metadata.deletionTimestamp && o.metadata.finalizers?.includes(FOREGROUND)) {
        const deps = s.dependentsOf(o.metadata.uid!);
        for (const d of deps) if (!d.obj.metadata.deletionTimestamp) ignoreRace(() => s.delete(d.t, d.obj.metadata.namespace, d.obj.metadata.name!, { propagationPolicy: 'Foreground' }));
        const blocking = deps.filter((d) => d.obj.metadata.ownerReferences?.some((r) => r.uid === o.metadata.uid && r.blockOwnerDeletion));
        if (blocking.length === 0) {
          ignoreRace(() => s.update(t, o.metadata.namespace, o.metadata.name!, { ...o, metadata: { ...o.metadata, finalizers: (o.metadata.finalizers ?? []).filter((f) => f !== FOREGROUND) } }));
        }
      }
      if (t.kind === 'CustomResourceDefinition' && o.metadata.deletionTimestamp && o.metadata.finalizers?.includes(CR_CLEANUP)) {
        const crT = s.type(o.spec.group, o.spec.names.plural);
        const crs = crT ? s.list(crT, undefined).items : [];
        for (const cr of crs) if (!cr.metadata.deletionTimestamp) ignoreRace(() => s.delete(crT!, cr.metadata.namespace, cr.metadata.name!, { propagationPolicy: 'Background' }));
        if (crs.length === 0) ignoreRace(() => s.update(t, undefined, o.metadata.name!, { ...o, metadata: { ...o.metadata, finalizers: o.metadata.finalizers!.filter((f) => f !== CR_CLEANUP) } }));
      }
      if (t.kind === 'Namespace' && t.group === '' && o.metadata.deletionTimestamp) {
        const contents = s.objectsInNamespace(o.metadata.name!);
        for (const c of contents) if (!c.obj.metadata.deletionTimestamp) ignoreRace(() => s.delete(c.t, c.obj.metadata.namespace, c.obj.metadata.name!, { propagationPolicy: 'Background' }));
        if (contents.length === 0 && !(o.metadata.finalizers?.length)) s.finalizeDelete(t, undefined, o.metadata.name!);
      }
    }
  }
}
