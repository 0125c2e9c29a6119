/**
 * Restore Jobs: one per target PVC, each running `lnc restore` into that PVC before the target's brokers start.
 * Owned by the LanceRestore, so deleting the restore cleans them up, and labelled so a restarted operator finds
 * (adopts) the Jobs it created.
 */
import type { V1EnvVar, V1Job, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { API_VERSION, SpecError } from '../api/common.ts';
import { LANCECLUSTER_KIND, type LanceCluster, type ObjectStoreSpec } from '../api/lancecluster.ts';
import type { LanceRestore, RestoreSource } from '../api/lancerestore.ts';
import { clusterIdFor } from './configmap.ts';
import { DATA_DIR, DATA_VOLUME, LABEL_RESTORE, commonLabels, names, restoreOwnerReference } from './names.ts';
import { brokerPvc, containerSecurityContext, credentialEnv, BROKER_UID } from './statefulset.ts';

/** Object-store settings a restore reads from: the restore's own `source`, or a referenced cluster's objectStore. */
export type ResolvedSource = Pick<RestoreSource, 'backend' | 'bucket' | 'path' | 'prefix' | 'endpoint' | 'region' | 'forcePathStyle' | 'credentialsSecret'>;

/**
 * Where a restore reads from. With `clusterRef`, pass the referenced LanceCluster (the controller reads it); the
 * error names `spec.clusterRef` when it is missing or has no object store.
 */
export function resolveRestoreSource(restore: LanceRestore, referenced?: LanceCluster): ResolvedSource {
  const { spec } = restore;
  if (spec.source) return spec.source;
  const ref = spec.clusterRef?.name ?? '';
  if (!referenced || referenced.metadata.name !== ref) {
    throw new SpecError([{ path: 'spec.clusterRef.name', message: `LanceCluster "${ref}" was not found`, code: 'custom' }], 'LanceRestore');
  }
  const store: ObjectStoreSpec | undefined = referenced.spec.objectStore;
  if (!store) {
    throw new SpecError([{ path: 'spec.clusterRef.name', message: `LanceCluster "${ref}" has no spec.objectStore to restore from`, code: 'custom' }], 'LanceRestore');
  }
  return store;
}

/**
 * The `--from` of `lnc restore` (broker/src/tiering/config.ts objectStoreConfigFromUrl): `file:///path/prefix`, or
 * `s3://bucket/prefix` with the connection settings as query parameters (endpoint, region, forcePathStyle).
 */
export function sourceUrl(source: ResolvedSource): string {
  const prefix = source.prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  if (source.backend === 'file') {
    const base = (source.path ?? '/').replace(/\/+$/, '');
    return `file://${base}${prefix ? `/${prefix}` : ''}`;
  }
  const params = new URLSearchParams();
  if (source.endpoint !== undefined) params.set('endpoint', source.endpoint);
  params.set('region', source.region);
  if (source.forcePathStyle) params.set('forcePathStyle', 'true');
  const path = prefix ? `/${prefix.split('/').map(encodeURIComponent).join('/')}` : '';
  return `s3://${source.bucket ?? ''}${path}?${params.toString()}`;
}

export interface RestoreJobInput {
  restore: LanceRestore;
  source: ResolvedSource;
  /** Ordinal of the target broker whose PVC (`data-<target>-<ordinal>`) is filled. */
  ordinal: number;
  /** Broker image of the target cluster (it contains lnc). */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Retries of a failed restore pod before the Job fails (and the restore turns Failed). */
  backoffLimit?: number;
}

/** The `lnc restore` command line for one PVC. */
export function restoreCommand(input: Pick<RestoreJobInput, 'restore' | 'source' | 'ordinal'>): string[] {
  const { restore, source, ordinal } = input;
  const namespace = restore.metadata.namespace ?? '';
  const target = restore.spec.target.clusterName;
  const cmd = ['lnc', 'restore', '--from', sourceUrl(source), '--data-dir', DATA_DIR];
  // The restored node.json must carry the target's identity, or its broker refuses the data dir at start.
  cmd.push('--cluster-id', clusterIdFor(namespace, target), '--node-id', String(ordinal));
  if (restore.spec.pointInTime !== undefined) cmd.push('--time', restore.spec.pointInTime);
  if (restore.spec.topics !== undefined && restore.spec.topics.length > 0) cmd.push('--topics', restore.spec.topics.join(','));
  // The report (restore point, topics, bytes) as JSON on stdout: the controller copies it into the restore's status.
  cmd.push('--json');
  return cmd;
}

export function restoreJob(input: RestoreJobInput): V1Job {
  const { restore, source, ordinal } = input;
  const namespace = restore.metadata.namespace;
  if (!namespace) throw new SpecError([{ path: 'metadata.namespace', message: 'is required to build resources', code: 'invalid_type' }], 'LanceRestore');
  const target = restore.spec.target.clusterName;
  const labels = { ...commonLabels(target, 'restore'), [LABEL_RESTORE]: restore.metadata.name };
  const env: V1EnvVar[] = credentialEnv(source.credentialsSecret);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: names.restoreJob(restore.metadata.name, ordinal),
      namespace,
      labels: { ...labels, 'lance.dev/ordinal': String(ordinal) },
      ownerReferences: [restoreOwnerReference(restore)],
    },
    spec: {
      backoffLimit: input.backoffLimit ?? 3,
      template: {
        metadata: { labels: { ...labels, 'lance.dev/ordinal': String(ordinal) } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: BROKER_UID,
            runAsGroup: BROKER_UID,
            fsGroup: BROKER_UID,
            fsGroupChangePolicy: 'OnRootMismatch',
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'restore',
              image: input.image,
              imagePullPolicy: input.imagePullPolicy ?? 'IfNotPresent',
              command: restoreCommand(input),
              env,
              volumeMounts: [
                { name: DATA_VOLUME, mountPath: DATA_DIR },
                { name: 'tmp', mountPath: '/tmp' },
              ],
              securityContext: containerSecurityContext(),
              // A failed restore's last output lines become the container's termination message, which the
              // controller copies into the LanceRestore's Failed condition.
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
          volumes: [
            { name: DATA_VOLUME, persistentVolumeClaim: { claimName: names.pvc(target, ordinal) } },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

export const ANNOTATION_RESTORED_BY = 'lance.dev/restored-by';
/** On PVCs a restore created: the uid of that LanceRestore (a re-created restore of the same name is another one). */
export const ANNOTATION_RESTORE_UID = 'lance.dev/restore-uid';

/**
 * The PVC a restore fills for one target broker: exactly the one the target's StatefulSet will adopt (same name and
 * spec), plus the restore's label and uid so the controller knows it made it. Not owned by the restore: the restored
 * cluster keeps its data when the LanceRestore is deleted.
 */
export function restorePvc(restore: LanceRestore, target: LanceCluster, ordinal: number): V1PersistentVolumeClaim {
  const pvc = brokerPvc(target, ordinal);
  return {
    ...pvc,
    metadata: {
      ...pvc.metadata,
      labels: { ...pvc.metadata?.labels, [LABEL_RESTORE]: restore.metadata.name },
      annotations: { ...pvc.metadata?.annotations, [ANNOTATION_RESTORE_UID]: restore.metadata.uid ?? '' },
    },
  };
}

/**
 * The LanceCluster a restore creates (target.spec), or undefined for `existing: true`. Not owned by the restore:
 * deleting a finished LanceRestore must not delete the cluster it brought back.
 */
export function restoreTargetCluster(restore: LanceRestore): LanceCluster | undefined {
  const { target } = restore.spec;
  if (!target.spec) return undefined;
  const namespace = restore.metadata.namespace;
  if (!namespace) throw new SpecError([{ path: 'metadata.namespace', message: 'is required to build resources', code: 'invalid_type' }], 'LanceRestore');
  return {
    apiVersion: API_VERSION,
    kind: LANCECLUSTER_KIND,
    metadata: { name: target.clusterName, namespace, annotations: { [ANNOTATION_RESTORED_BY]: restore.metadata.name } },
    spec: target.spec,
  };
}

/**
 * Everything a restore runs before the target's brokers start: the PVCs the target's StatefulSet will adopt
 * (`data-<target>-<ordinal>`, created first so the Jobs can mount them) and one restore Job per PVC.
 */
export function restoreResources(input: {
  restore: LanceRestore;
  source: ResolvedSource;
  /** The target cluster: restoreTargetCluster(restore) for a new one, or the existing LanceCluster. */
  target: LanceCluster;
  backoffLimit?: number;
}): { pvcs: V1PersistentVolumeClaim[]; jobs: V1Job[] } {
  const { restore, source, target } = input;
  if (target.metadata.name !== restore.spec.target.clusterName) {
    throw new SpecError([{ path: 'spec.target.clusterName', message: `does not name the target cluster "${target.metadata.name}"`, code: 'custom' }], 'LanceRestore');
  }
  const ordinals = Array.from({ length: target.spec.replicas }, (_, i) => i);
  return {
    pvcs: ordinals.map((o) => restorePvc(restore, target, o)),
    jobs: ordinals.map((ordinal) =>
      restoreJob({
        restore,
        source,
        ordinal,
        image: target.spec.image,
        imagePullPolicy: target.spec.imagePullPolicy,
        ...(input.backoffLimit !== undefined ? { backoffLimit: input.backoffLimit } : {}),
      }),
    ),
  };
}
