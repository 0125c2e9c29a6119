/** Everything a LanceCluster should have in the cluster, in the order to apply it (dependencies first). */
import type { V1ConfigMap, V1PodDisruptionBudget, V1Service, V1ServiceAccount, V1StatefulSet } from '@kubernetes/client-node';
import type { LanceCluster } from '../api/lancecluster.ts';
import { configMap } from './configmap.ts';
import { podDisruptionBudget, serviceAccount } from './policy.ts';
import { clientService, headlessService } from './services.ts';
import { statefulSet, type StatefulSetOptions } from './statefulset.ts';

export type DesiredResource = V1ServiceAccount | V1ConfigMap | V1Service | V1PodDisruptionBudget | V1StatefulSet;

export function desiredResources(cluster: LanceCluster, options: StatefulSetOptions = {}): DesiredResource[] {
  return [
    serviceAccount(cluster),
    configMap(cluster, options),
    headlessService(cluster),
    clientService(cluster),
    podDisruptionBudget(cluster),
    statefulSet(cluster, options),
  ];
}
