import type { JsonObject } from './types.ts';

export interface PrinterColumn { name: string; type: string; jsonPath: string; description?: string; priority?: number; format?: string }

/** One servable resource (a group + plural). CRDs register one of these per CRD, serving all its served versions. */
export interface ResourceType {
  group: string;
  /** Served versions, preferred (storage) first. No conversion: objects are identical across versions (strategy None). */
  versions: string[];
  kind: string;
  plural: string;
  singular: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  statusSubresource: boolean;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  /** `kubectl get` columns after NAME (AGE is appended unless a column named Age exists). */
  printerColumns: PrinterColumn[];
  /** True for built-in kinds: strategic-merge-patch is accepted (CRs reject it with 415, as a real server does). */
  builtin: boolean;
  /** Kinds whose generation is maintained (those with a spec). */
  hasGeneration: boolean;
  /** For CRs: per-version schema (openAPIV3Schema) used for validation, defaulting and pruning. */
  schemas?: Record<string, JsonObject | undefined>;
  /** Only the pods subresources log; all kinds may get status/scale. */
  verbs: string[];
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function rt(p: Partial<ResourceType> & Pick<ResourceType, 'group' | 'kind' | 'plural' | 'namespaced'> & { version: string }): ResourceType {
  return {
    versions: [p.version],
    singular: p.kind.toLowerCase(),
    listKind: `${p.kind}List`,
    shortNames: [],
    categories: [],
    statusSubresource: false,
    printerColumns: [],
    builtin: true,
    hasGeneration: false,
    verbs: ALL_VERBS,
    ...p,
  };
}

const replicasScale = { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' };

/** Built-in kinds served from the start. Printer columns mirror kube-apiserver's defaults for the columns tests read. */
export function builtinResources(): ResourceType[] {
  return [
    rt({ group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, shortNames: ['ns'], statusSubresource: true,
      printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }] }),
    rt({ group: '', version: 'v1', kind: 'Node', plural: 'nodes', namespaced: false, shortNames: ['no'], statusSubresource: true,
      printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' }] }),
    rt({ group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true, shortNames: ['po'], categories: ['all'], statusSubresource: true, hasGeneration: true,
      printerColumns: [
        { name: 'Ready', type: 'string', jsonPath: '$podReady' },
        { name: 'Status', type: 'string', jsonPath: '$podStatus' },
        { name: 'Restarts', type: 'integer', jsonPath: '$podRestarts' },
        { name: 'IP', type: 'string', jsonPath: '.status.podIP', priority: 1 },
        { name: 'Node', type: 'string', jsonPath: '.spec.nodeName', priority: 1 },
      ] }),
    rt({ group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, shortNames: ['svc'], categories: ['all'], statusSubresource: true,
      printerColumns: [{ name: 'Type', type: 'string', jsonPath: '.spec.type' }, { name: 'Cluster-IP', type: 'string', jsonPath: '.spec.clusterIP' }] }),
    rt({ group: '', version: 'v1', kind: 'Endpoints', plural: 'endpoints', namespaced: true, shortNames: ['ep'], listKind: 'EndpointsList', singular: 'endpoints' }),
    rt({ group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'],
      printerColumns: [{ name: 'Data', type: 'integer', jsonPath: '$dataCount' }] }),
    rt({ group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true,
      printerColumns: [{ name: 'Type', type: 'string', jsonPath: '.type' }, { name: 'Data', type: 'integer', jsonPath: '$dataCount' }] }),
    rt({ group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true, shortNames: ['sa'] }),
    rt({ group: '', version: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims', namespaced: true, shortNames: ['pvc'], statusSubresource: true,
      printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, { name: 'Volume', type: 'string', jsonPath: '.spec.volumeName' }] }),
    rt({ group: '', version: 'v1', kind: 'PersistentVolume', plural: 'persistentvolumes', namespaced: false, shortNames: ['pv'], statusSubresource: true,
      printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }] }),
    rt({ group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'],
      printerColumns: [{ name: 'Type', type: 'string', jsonPath: '.type' }, { name: 'Reason', type: 'string', jsonPath: '.reason' }, { name: 'Message', type: 'string', jsonPath: '.message' }] }),
    rt({ group: 'events.k8s.io', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'] }),
    rt({ group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true,
      printerColumns: [{ name: 'Holder', type: 'string', jsonPath: '.spec.holderIdentity' }] }),
    rt({ group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', plural: 'endpointslices', namespaced: true }),
    rt({ group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets', namespaced: true, shortNames: ['sts'], categories: ['all'], statusSubresource: true, hasGeneration: true, scale: replicasScale,
      printerColumns: [{ name: 'Ready', type: 'string', jsonPath: '$readyOfReplicas' }] }),
    rt({ group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true, shortNames: ['deploy'], categories: ['all'], statusSubresource: true, hasGeneration: true, scale: replicasScale,
      printerColumns: [{ name: 'Ready', type: 'string', jsonPath: '$readyOfReplicas' }, { name: 'Up-to-date', type: 'integer', jsonPath: '.status.updatedReplicas' }, { name: 'Available', type: 'integer', jsonPath: '.status.availableReplicas' }] }),
    rt({ group: 'apps', version: 'v1', kind: 'ReplicaSet', plural: 'replicasets', namespaced: true, shortNames: ['rs'], categories: ['all'], statusSubresource: true, hasGeneration: true, scale: replicasScale,
      printerColumns: [{ name: 'Desired', type: 'integer', jsonPath: '.spec.replicas' }, { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' }] }),
    rt({ group: 'apps', version: 'v1', kind: 'ControllerRevision', plural: 'controllerrevisions', namespaced: true }),
    rt({ group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true, categories: ['all'], statusSubresource: true, hasGeneration: true,
      printerColumns: [{ name: 'Status', type: 'string', jsonPath: '$jobStatus' }, { name: 'Completions', type: 'string', jsonPath: '$jobCompletions' }] }),
    rt({ group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', namespaced: true, shortNames: ['pdb'], statusSubresource: true, hasGeneration: true,
      printerColumns: [{ name: 'Min Available', type: 'string', jsonPath: '.spec.minAvailable' }, { name: 'Max Unavailable', type: 'string', jsonPath: '.spec.maxUnavailable' }] }),
    rt({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles', namespaced: true }),
    rt({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings', namespaced: true }),
    rt({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles', namespaced: false }),
    rt({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', namespaced: false }),
    rt({ group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition', plural: 'customresourcedefinitions', namespaced: false, shortNames: ['crd', 'crds'], statusSubresource: true, hasGeneration: true,
      printerColumns: [{ name: 'Created At', type: 'string', jsonPath: '.metadata.creationTimestamp' }] }),
  ];
}

export function typeKey(group: string, plural: string): string {
  return `${group}/${plural}`;
}

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}
