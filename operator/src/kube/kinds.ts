/** The kinds the operator reads and writes (REST coordinates). */
import { GROUP, VERSION } from '../api/common.ts';
import { LANCECLUSTER_KIND, LANCECLUSTER_PLURAL } from '../api/lancecluster.ts';
import { LanceError } from '../../../broker/src/common/errors.ts';
import type { Kind } from './rest.ts';

export const KINDS = {
  LanceCluster: { group: GROUP, version: VERSION, plural: LANCECLUSTER_PLURAL, kind: LANCECLUSTER_KIND, namespaced: true },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet', namespaced: true },
  Pod: { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  PersistentVolumeClaim: { group: '', version: 'v1', plural: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true },
  Service: { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true },
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  ServiceAccount: { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  PodDisruptionBudget: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', namespaced: true },
  Event: { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
} as const satisfies Record<string, Kind>;

export function kindOf(kind: string): Kind {
  const k = (KINDS as Record<string, Kind>)[kind];
  if (!k) throw new LanceError('INVALID_ARGUMENT', `unknown kind ${kind}`);
  return k;
}
