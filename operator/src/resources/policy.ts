/** PodDisruptionBudget and ServiceAccount of the brokers. */
import type { V1PodDisruptionBudget, V1ServiceAccount } from '@kubernetes/client-node';
import type { LanceCluster } from '../api/lancecluster.ts';
import { clusterId, clusterOwnerReference, commonLabels, names, selectorLabels } from './names.ts';

/** At most one broker voluntarily down at a time: with 3 brokers a majority stays up through a node drain. */
export function podDisruptionBudget(cluster: LanceCluster): V1PodDisruptionBudget {
  const { name, namespace } = clusterId(cluster);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: names.pdb(name), namespace, labels: commonLabels(name, 'broker'), ownerReferences: [clusterOwnerReference(cluster)] },
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(name) } },
  };
}

/** A dedicated account with no token mounted: brokers need no Kubernetes API access. */
export function serviceAccount(cluster: LanceCluster): V1ServiceAccount {
  const { name, namespace } = clusterId(cluster);
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: names.serviceAccount(name),
      namespace,
      labels: commonLabels(name, 'broker'),
      ownerReferences: [clusterOwnerReference(cluster)],
    },
    automountServiceAccountToken: false,
  };
}
