import { Controller, ignoreRace } from './base.ts';

/** Every active namespace gets a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap, as in kube. */
export class ServiceAccountController extends Controller {
  protected reconcile(): void {
    const s = this.store;
    const nsT = s.type('', 'namespaces')!;
    const saT = s.type('', 'serviceaccounts')!;
    const cmT = s.type('', 'configmaps')!;
    for (const ns of s.list(nsT, undefined).items) {
      if (ns.metadata.deletionTimestamp) continue;
      const n = ns.metadata.name!;
      if (!s.tryGet(saT, n, 'default')) ignoreRace(() => s.create(saT, n, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }));
      if (!s.tryGet(cmT, n, 'kube-root-ca.crt')) ignoreRace(() => s.create(cmT, n, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': '# lance kube stand-in: plain HTTP, no CA\n' } }));
    }
  }

  protected override interested(ev: { tk: string }): boolean { return ev.tk === '/namespaces'; }
}
