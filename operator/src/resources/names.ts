/**
 * Names, labels and owner references shared by every builder. One place, so the controller, the builders and the
 * e2e tests agree on `<cluster>-headless`, `data-<cluster>-<ordinal>` and the label keys.
 */
import { createHash } from 'node:crypto';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, SpecError } from '../api/common.ts';
import { LANCECLUSTER_KIND, type LanceCluster } from '../api/lancecluster.ts';
import { LANCERESTORE_KIND, type LanceRestore } from '../api/lancerestore.ts';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** "true" on a pod the operator fenced; the client Service selects only "false". */
export const LABEL_FENCED = 'lance.dev/fenced';
export const LABEL_RESTORE = 'lance.dev/restore';
/** Set by the StatefulSet controller on every pod (Kubernetes ≥ 1.28); the broker's node id comes from it. */
export const LABEL_POD_INDEX = 'apps.kubernetes.io/pod-index';

export const ANNOTATION_CONFIG_HASH = 'lance.dev/config-hash';

export const APP_NAME = 'lance';
export const MANAGED_BY = 'lance-operator';

export const DATA_DIR = '/var/lib/lance';
export const CONFIG_DIR = '/etc/lance';
export const CONFIG_FILE = `${CONFIG_DIR}/lance.yaml`;
/** The ConfigMap's peers.yaml as mounted (the broker reads it through LANCE_PEERS_FILE). */
export const PEERS_FILE = `${CONFIG_DIR}/peers.yaml`;
export const DATA_VOLUME = 'data';

export interface Named {
  name: string;
  namespace: string;
}

/** Namespace and name of a cluster; builders need both (and the uid for owner references). */
export function clusterId(cluster: LanceCluster): Named {
  const { name, namespace } = cluster.metadata;
  if (!namespace) throw new SpecError([{ path: 'metadata.namespace', message: 'is required to build resources', code: 'invalid_type' }], 'LanceCluster');
  return { name, namespace };
}

export const names = {
  statefulSet: (cluster: string) => cluster,
  headlessService: (cluster: string) => `${cluster}-headless`,
  clientService: (cluster: string) => cluster,
  configMap: (cluster: string) => `${cluster}-config`,
  pdb: (cluster: string) => cluster,
  serviceAccount: (cluster: string) => `${cluster}-broker`,
  pod: (cluster: string, ordinal: number) => `${cluster}-${ordinal}`,
  /** The StatefulSet controller names PVCs `<template>-<statefulset>-<ordinal>`. */
  pvc: (cluster: string, ordinal: number) => `${DATA_VOLUME}-${cluster}-${ordinal}`,
  /** Stable DNS name of a pod through the headless Service. */
  podHost: (cluster: string, namespace: string, ordinal: number) => `${cluster}-${ordinal}.${cluster}-headless.${namespace}.svc`,
  restoreJob: (restore: string, ordinal: number) => boundedName(`${restore}-restore-${ordinal}`, 63),
};

/**
 * `name` if it fits in `max` characters, else a prefix plus a short hash of the whole name, so distinct long names
 * stay distinct and the result is still a DNS label.
 */
export function boundedName(name: string, max: number): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, max - 9).replace(/[-.]+$/, '')}-${hash}`;
}

/** Labels that select a cluster's broker pods (immutable in the StatefulSet, so never add to them). */
export function selectorLabels(cluster: string): Record<string, string> {
  return { [LABEL_NAME]: APP_NAME, [LABEL_INSTANCE]: cluster, [LABEL_COMPONENT]: 'broker' };
}

export function commonLabels(cluster: string, component: string): Record<string, string> {
  return { [LABEL_NAME]: APP_NAME, [LABEL_INSTANCE]: cluster, [LABEL_COMPONENT]: component, [LABEL_MANAGED_BY]: MANAGED_BY };
}

/** `a=b,c=d`, the form of `status.selector` (scale subresource) and `kubectl -l`. */
export function selectorString(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function requireUid(uid: string | undefined, kind: string): string {
  if (!uid) throw new SpecError([{ path: 'metadata.uid', message: 'is required for an owner reference (read the object from the apiserver first)', code: 'invalid_type' }], kind);
  return uid;
}

export function clusterOwnerReference(cluster: LanceCluster): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: LANCECLUSTER_KIND,
    name: cluster.metadata.name,
    uid: requireUid(cluster.metadata.uid, LANCECLUSTER_KIND),
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function restoreOwnerReference(restore: LanceRestore): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: LANCERESTORE_KIND,
    name: restore.metadata.name,
    uid: requireUid(restore.metadata.uid, LANCERESTORE_KIND),
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** `status.selector` of a LanceCluster (the scale subresource's labelSelectorPath). */
export function statusSelector(cluster: string): string {
  return selectorString(selectorLabels(cluster));
}
