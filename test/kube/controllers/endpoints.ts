import { Controller, ignoreRace } from './base.ts';
import type { KObject } from '../types.ts';
import { deepEqual } from '../types.ts';
import { matchLabels, selectorFromObject } from '../selectors.ts';
import { isPodReady } from './util.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- service/pod specs are walked structurally */

/** Endpoints and EndpointSlices for Services with a selector, from pods' IPs (ready → addresses, else notReady). */
export class EndpointsController extends Controller {
  protected override interested(ev: { tk: string }): boolean { return ['/services', '/pods'].includes(ev.tk); }

  protected reconcile(): void {
    const s = this.store;
    const svcT = s.type('', 'services')!;
    const podT = s.type('', 'pods')!;
    const epT = s.type('', 'endpoints')!;
    const slT = s.type('discovery.k8s.io', 'endpointslices')!;
    const services = s.list(svcT, undefined).items;
    for (const svc of services) {
      if (!svc.spec?.selector || svc.metadata.deletionTimestamp) continue;
      const ns = svc.metadata.namespace!;
      const reqs = selectorFromObject({ matchLabels: svc.spec.selector });
      const pods = s.list(podT, ns).items.filter((p) => matchLabels(reqs, p.metadata.labels) && p.status?.podIP);
      const publishNotReady = !!svc.spec.publishNotReadyAddresses;
      const portFor = (sp: any, pod: KObject): number | undefined => {
        if (typeof sp.targetPort === 'number') return sp.targetPort;
        for (const c of pod.spec.containers ?? []) for (const p of c.ports ?? []) if (p.name === sp.targetPort) return p.containerPort;
        return typeof sp.targetPort === 'string' ? undefined : sp.port;
      };
      const addr = (p: KObject) => ({ ip: p.status.podIP, nodeName: p.spec.nodeName, ...(p.spec.hostname ? { hostname: p.spec.hostname } : {}), targetRef: { kind: 'Pod', namespace: ns, name: p.metadata.name, uid: p.metadata.uid } });
      const live = pods.filter((p) => !p.metadata.deletionTimestamp);
      const ready = live.filter((p) => publishNotReady || isPodReady(p));
      const notReady = live.filter((p) => !(publishNotReady || isPodReady(p)));
      const ports = (svc.spec.ports ?? []).map((sp: any) => ({ ...(sp.name ? { name: sp.name } : {}), port: live[0] ? (portFor(sp, live[0]) ?? sp.port) : (typeof sp.targetPort === 'number' ? sp.targetPort : sp.port), protocol: sp.protocol ?? 'TCP' }));
      const subsets = live.length ? [{ ...(ready.length ? { addresses: ready.map(addr) } : {}), ...(notReady.length ? { notReadyAddresses: notReady.map(addr) } : {}), ports }] : [];
      const ep = s.tryGet(epT, ns, svc.metadata.name!);
      const epBody: KObject = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: svc.metadata.name!, ...(svc.metadata.labels ? { labels: svc.metadata.labels } : {}) }, subsets };
      if (!ep) ignoreRace(() => s.create(epT, ns, epBody));
      else if (!deepEqual(ep.subsets ?? [], subsets)) ignoreRace(() => s.update(epT, ns, ep.metadata.name!, { ...ep, subsets }));
      const sliceName = `${svc.metadata.name}-standin`;
      const endpoints = pods.map((p) => ({
        addresses: [p.status.podIP],
        conditions: { ready: !p.metadata.deletionTimestamp && (publishNotReady || isPodReady(p)), serving: isPodReady(p) || publishNotReady, terminating: !!p.metadata.deletionTimestamp },
        ...(p.spec.hostname ? { hostname: p.spec.hostname } : {}), nodeName: p.spec.nodeName,
        targetRef: { kind: 'Pod', namespace: ns, name: p.metadata.name, uid: p.metadata.uid },
      }));
      const sl = s.tryGet(slT, ns, sliceName);
      const slBody: KObject = {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
        metadata: { name: sliceName, labels: { 'kubernetes.io/service-name': svc.metadata.name!, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc.metadata.name!, uid: svc.metadata.uid!, controller: true, blockOwnerDeletion: true }] },
        addressType: 'IPv4', endpoints, ports,
      };
      if (!sl) ignoreRace(() => s.create(slT, ns, slBody));
      else if (!deepEqual(sl.endpoints, endpoints) || !deepEqual(sl.ports, ports)) ignoreRace(() => s.update(slT, ns, sliceName, { ...sl, endpoints, ports }));
    }
    // Endpoints have no ownerReference in kube; the controller removes them with their Service.
    for (const ep of s.list(epT, undefined).items) {
      if (!s.tryGet(svcT, ep.metadata.namespace, ep.metadata.name!)) ignoreRace(() => s.delete(epT, ep.metadata.namespace, ep.metadata.name!));
    }
  }
}
