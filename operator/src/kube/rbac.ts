/**
 * The Kubernetes API permissions the operator needs — the one source of truth the Helm chart's RBAC
 * (charts/lance-operator/templates/rbac.yaml) is checked against by test/chart/. Derived from the calls in
 * controllers/ and kube/: informers list+watch, createOrUpdate get+create+update, status PUT = update on
 * <plural>/status, merge patch = patch, deletes, Events (create, patch to bump count), Lease (get, create, update).
 * When the operator starts calling something new, add it here; the chart test then fails until the chart follows.
 */
export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Per-namespace (or cluster-wide when every namespace is watched) rules for the reconciled objects. */
export const OPERATOR_RULES: RbacRule[] = [
  { apiGroups: ['lance.dev'], resources: ['lanceclusters'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['lance.dev'], resources: ['lanceclusters/status'], verbs: ['update'] },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['list', 'watch', 'delete'] },
  { apiGroups: [''], resources: ['services', 'configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'create', 'update'] },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list', 'watch', 'create', 'update'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  // LanceRestore controller (controllers/restore-controller.ts): creates the target LanceCluster or pauses/resumes an
  // existing one (patch), creates the target's PVCs (get: adoption) and restore Jobs, reads a restore pod's log,
  // deletes an existing empty target's StatefulSet.
  { apiGroups: ['lance.dev'], resources: ['lancerestores'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['lance.dev'], resources: ['lancerestores/status'], verbs: ['update'] },
  { apiGroups: ['lance.dev'], resources: ['lanceclusters'], verbs: ['create', 'patch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch', 'create'] },
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'create'] },
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['delete'] },
];

/** Leader election, only in the operator's own namespace. */
export const LEADER_ELECTION_RULES: RbacRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];
