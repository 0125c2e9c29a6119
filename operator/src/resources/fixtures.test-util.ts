/** Test fixtures: parsed LanceCluster / LanceRestore objects as the controller would hold them. */
import { parseLanceCluster, type LanceClusterSpecInput, type LanceCluster } from '../api/lancecluster.ts';
import { parseLanceRestore, type LanceRestore, type LanceRestoreSpecInput } from '../api/lancerestore.ts';

export function cluster(spec: Partial<LanceClusterSpecInput> = {}, name = 'demo', namespace = 'lance'): LanceCluster {
  return parseLanceCluster({
    apiVersion: 'lance.dev/v1alpha1',
    kind: 'LanceCluster',
    metadata: { name, namespace, uid: `uid-${name}`, generation: 1 },
    spec: { image: 'lance/broker:0.1.0', ...spec },
  });
}

export function restore(spec: LanceRestoreSpecInput, name = 'rs', namespace = 'lance'): LanceRestore {
  return parseLanceRestore({
    apiVersion: 'lance.dev/v1alpha1',
    kind: 'LanceRestore',
    metadata: { name, namespace, uid: `uid-${name}` },
    spec,
  });
}
