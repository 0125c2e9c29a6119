/** The headless Service (peer DNS) and the client Service (Kafka bootstrap + admin, unfenced ready pods only). */
import type { V1Service } from '@kubernetes/client-node';
import type { LanceCluster } from '../api/lancecluster.ts';
import { LABEL_FENCED, clusterId, clusterOwnerReference, commonLabels, names, selectorLabels } from './names.ts';

/**
 * Gives every pod `<pod>.<cluster>-headless.<ns>.svc`. Not-ready pods are published too: a broker must reach its
 * peers (Raft, catch-up) before it can report ready.
 */
export function headlessService(cluster: LanceCluster): V1Service {
  const { name, namespace } = clusterId(cluster);
  const l = cluster.spec.listeners;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: names.headlessService(name),
      namespace,
      labels: commonLabels(name, 'broker'),
      ownerReferences: [clusterOwnerReference(cluster)],
    },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: selectorLabels(name),
      ports: [
        { name: 'kafka', port: l.kafkaPort, targetPort: 'kafka', protocol: 'TCP' },
        { name: 'admin', port: l.adminPort, targetPort: 'admin', protocol: 'TCP' },
        { name: 'raft', port: l.raftPort, targetPort: 'raft', protocol: 'TCP' },
      ],
    },
  };
}

/** What clients connect to. Selecting `lance.dev/fenced: "false"` drops a fenced pod from the endpoints at once. */
export function clientService(cluster: LanceCluster): V1Service {
  const { name, namespace } = clusterId(cluster);
  const l = cluster.spec.listeners;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: names.clientService(name),
      namespace,
      labels: commonLabels(name, 'broker'),
      ownerReferences: [clusterOwnerReference(cluster)],
    },
    spec: {
      type: 'ClusterIP',
      selector: { ...selectorLabels(name), [LABEL_FENCED]: 'false' },
      ports: [
        { name: 'kafka', port: l.kafkaPort, targetPort: 'kafka', protocol: 'TCP' },
        { name: 'admin', port: l.adminPort, targetPort: 'admin', protocol: 'TCP' },
      ],
    },
  };
}
