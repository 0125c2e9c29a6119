/**
 * The brokers' StatefulSet. `updateStrategy: OnDelete` because the operator, not the StatefulSet controller, decides
 * the restart order (followers first, leader last after a leadership transfer); `Parallel` because Raft needs a
 * majority up at once, which OrderedReady would deadlock on after a full outage.
 */
import type {
  V1Affinity,
  V1Container,
  V1EnvVar,
  V1PersistentVolumeClaim,
  V1PodSecurityContext,
  V1Probe,
  V1SecurityContext,
  V1StatefulSet,
  V1Toleration,
} from '@kubernetes/client-node';
import { quantityString, type Quantity } from '../api/common.ts';
import type { LanceCluster } from '../api/lancecluster.ts';
import { brokerSettingsEnv, configHash, configMapData, type PeerOptions } from './configmap.ts';
import {
  ANNOTATION_CONFIG_HASH,
  CONFIG_DIR,
  CONFIG_FILE,
  PEERS_FILE,
  DATA_DIR,
  DATA_VOLUME,
  LABEL_FENCED,
  LABEL_POD_INDEX,
  clusterId,
  clusterOwnerReference,
  commonLabels,
  names,
  selectorLabels,
} from './names.ts';

export const BROKER_CONTAINER = 'lance';
/** UID/GID of the broker image's non-root user. */
export const BROKER_UID = 10001;

export interface StatefulSetOptions extends PeerOptions {
  /**
   * Where the brokers listen. `any` (default): 0.0.0.0, right for a pod network namespace (port-forward and
   * `lnc --server localhost:1992` inside the pod work). `podIP`: only the pod's IP, for environments where pods
   * share one network namespace and differ only by IP (the test/kube stand-in's loopback pod IPs).
   */
  bindAddress?: 'any' | 'podIP';
}

function quantities(list: Record<string, Quantity> | undefined): Record<string, string> | undefined {
  if (!list) return undefined;
  return Object.fromEntries(Object.entries(list).map(([k, v]) => [k, quantityString(v)]));
}

/** Pod-level security: non-root, files group-owned by the broker's group, default seccomp. User values win. */
export function podSecurityContext(cluster: LanceCluster): V1PodSecurityContext {
  const defaults: V1PodSecurityContext = {
    runAsNonRoot: true,
    runAsUser: BROKER_UID,
    runAsGroup: BROKER_UID,
    fsGroup: BROKER_UID,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
  // podTemplate.securityContext is a free-form core/v1 PodSecurityContext; the apiserver validates it on write.
  return { ...defaults, ...(cluster.spec.podTemplate?.securityContext as V1PodSecurityContext | undefined) };
}

export function containerSecurityContext(): V1SecurityContext {
  return {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** S3 credentials from the Secret, in the variables the AWS SDK's default provider chain reads. */
export function credentialEnv(secret: { name: string; accessKeyIdKey: string; secretAccessKeyKey: string } | undefined): V1EnvVar[] {
  if (!secret) return [];
  return [
    { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: secret.name, key: secret.accessKeyIdKey } } },
    { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: secret.name, key: secret.secretAccessKeyKey } } },
  ];
}

function brokerEnv(cluster: LanceCluster, options: StatefulSetOptions): V1EnvVar[] {
  const { name } = clusterId(cluster);
  const bind: V1EnvVar[] =
    options.bindAddress === 'podIP'
      ? ['LANCE_KAFKA_HOST', 'LANCE_ADMIN_HOST', 'LANCE_RAFT_HOST'].map((n) => ({ name: n, value: '$(POD_IP)' }))
      : [];
  return [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    // The ordinal is the node id of a first-generation broker (docs/configuration.md: LANCE_NODE_ID).
    { name: 'LANCE_NODE_ID', valueFrom: { fieldRef: { fieldPath: `metadata.labels['${LABEL_POD_INDEX}']` } } },
    // The pod name selects this broker's entry in peers.yaml, whose nodeId wins over LANCE_NODE_ID: a replaced or
    // scaled-up ordinal gets a new id there (status.nodeIds) without a per-pod template.
    { name: 'LANCE_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // Kafka clients reconnect to the broker by its stable per-pod DNS name ($(VAR) is expanded by the kubelet).
    { name: 'LANCE_ADVERTISED_HOST', value: `$(POD_NAME).${names.headlessService(name)}.$(POD_NAMESPACE).svc` },
    ...bind,
    // More than one broker: cluster mode, founding members from the mounted peers.yaml. An env var, not a
    // lance.yaml key, because a path in env is mapped by whatever maps volume mounts (the test/kube kubelet too).
    ...(cluster.spec.replicas > 1 ? [{ name: 'LANCE_PEERS_FILE', value: PEERS_FILE }] : []),
    ...Object.entries(brokerSettingsEnv(cluster)).map(([k, v]) => ({ name: k, value: v })),
    ...credentialEnv(cluster.spec.objectStore?.credentialsSecret),
  ];
}

function httpProbe(path: string, port: string, periodSeconds: number, failureThreshold: number): V1Probe {
  return { httpGet: { path, port }, periodSeconds, timeoutSeconds: 3, failureThreshold };
}

export function brokerContainer(cluster: LanceCluster, options: StatefulSetOptions = {}): V1Container {
  const { spec } = cluster;
  const resources = spec.resources ? { requests: quantities(spec.resources.requests), limits: quantities(spec.resources.limits) } : undefined;
  return {
    name: BROKER_CONTAINER,
    image: spec.image,
    imagePullPolicy: spec.imagePullPolicy,
    // The image's entrypoint is the `lance` server (bin/lance.js).
    args: ['--config', CONFIG_FILE, '--data-dir', DATA_DIR],
    ports: [
      { name: 'kafka', containerPort: spec.listeners.kafkaPort, protocol: 'TCP' },
      { name: 'admin', containerPort: spec.listeners.adminPort, protocol: 'TCP' },
      { name: 'raft', containerPort: spec.listeners.raftPort, protocol: 'TCP' },
    ],
    env: brokerEnv(cluster, options),
    ...(resources ? { resources } : {}),
    volumeMounts: [
      { name: DATA_VOLUME, mountPath: DATA_DIR },
      { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
      // The root filesystem is read-only; Node and the AWS SDK still want a scratch /tmp.
      { name: 'tmp', mountPath: '/tmp' },
    ],
    // Recovery at start (log replay, cold-start restore) can take minutes: the startup probe holds off liveness.
    startupProbe: httpProbe('/health/live', 'admin', 5, 120),
    livenessProbe: httpProbe('/health/live', 'admin', 10, 6),
    readinessProbe: httpProbe('/health/ready', 'admin', 5, 3),
    securityContext: containerSecurityContext(),
  };
}

/** Spread brokers over nodes unless the user said otherwise: losing a node must not lose a majority. */
function defaultAffinity(cluster: string): V1Affinity {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selectorLabels(cluster) } },
        },
      ],
    },
  };
}

export function volumeClaimTemplate(cluster: LanceCluster): V1PersistentVolumeClaim {
  const { name } = clusterId(cluster);
  const { storage } = cluster.spec;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: DATA_VOLUME, labels: selectorLabels(name) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: quantityString(storage.size) } },
      ...(storage.storageClassName !== undefined ? { storageClassName: storage.storageClassName } : {}),
    },
  };
}

export function statefulSet(cluster: LanceCluster, options: StatefulSetOptions = {}): V1StatefulSet {
  const { name, namespace } = clusterId(cluster);
  const { spec } = cluster;
  const overrides = spec.podTemplate ?? {};
  const replicas = options.replicas ?? spec.replicas;
  // peers.yaml is not part of the hash; lance.yaml (with the founders) is.
  const hash = configHash(configMapData(cluster, options), brokerSettingsEnv(cluster));
  const selector = selectorLabels(name);
  const podLabels = {
    ...(overrides.labels ?? {}),
    ...commonLabels(name, 'broker'),
    // New pods start unfenced; the operator flips this label on a pod it fences.
    [LABEL_FENCED]: 'false',
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: names.statefulSet(name),
      namespace,
      labels: commonLabels(name, 'broker'),
      ownerReferences: [clusterOwnerReference(cluster)],
    },
    spec: {
      replicas,
      serviceName: names.headlessService(name),
      selector: { matchLabels: selector },
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      persistentVolumeClaimRetentionPolicy: {
        whenDeleted: spec.storage.onDelete,
        // The operator removes a member from Raft before it scales down, so the removed broker's disk is never
        // needed again; a later scale-up starts that ordinal fresh (a new node id joining as a learner).
        whenScaled: 'Delete',
      },
      template: {
        metadata: {
          labels: podLabels,
          annotations: { ...(overrides.annotations ?? {}), [ANNOTATION_CONFIG_HASH]: hash },
        },
        spec: {
          serviceAccountName: names.serviceAccount(name),
          // Brokers never call the Kubernetes API.
          automountServiceAccountToken: false,
          // Service links would inject e.g. LANCE_ADMIN_PORT=tcp://... for a Service called "lance-admin", and the
          // broker reads LANCE_* variables as config.
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 60,
          securityContext: podSecurityContext(cluster),
          containers: [brokerContainer(cluster, options)],
          volumes: [
            { name: 'config', configMap: { name: names.configMap(name) } },
            { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
          ],
          affinity: (overrides.affinity as V1Affinity | undefined) ?? defaultAffinity(name),
          ...(overrides.tolerations ? { tolerations: overrides.tolerations as V1Toleration[] } : {}),
          ...(overrides.nodeSelector ? { nodeSelector: overrides.nodeSelector } : {}),
          ...(overrides.priorityClassName ? { priorityClassName: overrides.priorityClassName } : {}),
        },
      },
      volumeClaimTemplates: [volumeClaimTemplate(cluster)],
    },
  };
}

/** A PVC exactly as the StatefulSet would create it for `ordinal`, for restores that fill PVCs before pods start. */
export function brokerPvc(cluster: LanceCluster, ordinal: number): V1PersistentVolumeClaim {
  const { name, namespace } = clusterId(cluster);
  const template = volumeClaimTemplate(cluster);
  return {
    ...template,
    // No owner: like the StatefulSet's own PVCs, the data outlives the objects that created it.
    metadata: { name: names.pvc(name, ordinal), namespace, labels: selectorLabels(name) },
  };
}
