/**
 * LanceCluster (lance.dev/v1alpha1): the schema of its spec and status. The CRD (crds/lanceclusters.yaml) is
 * generated from these schemas by scripts/gen-crds.ts; every zod refinement below has a CEL twin in the schema's
 * `x-kubernetes-validations` meta so the apiserver rejects the same objects the operator would.
 */
import { z } from 'zod';
import {
  API_VERSION,
  conditionListMeta,
  conditionSchema,
  credentialsSecret,
  dnsLabel,
  dnsSubdomain,
  duration,
  endpointUrl,
  freeFormObject,
  image,
  objectMeta,
  parseWith,
  port,
  quantity,
  safeParseWith,
  stringMap,
  timestamp,
  type ParseResult,
} from './common.ts';

export const LANCECLUSTER_KIND = 'LanceCluster';
export const LANCECLUSTER_PLURAL = 'lanceclusters';
export const LANCECLUSTER_SINGULAR = 'lancecluster';
export const LANCECLUSTER_SHORT_NAMES = ['lc'] as const;

export const DEFAULT_PORTS = { kafkaPort: 9092, adminPort: 1992, raftPort: 1993 } as const;

/**
 * Broker config paths (docs/configuration.md) the operator renders itself from other fields; `additionalConfig`
 * must not set them (or anything under them), because which one wins would be a surprise.
 */
export const MANAGED_CONFIG_PATHS = [
  'nodeId',
  'clusterId',
  'dataDir',
  'standalone',
  'readOnly',
  'listeners',
  'peers',
  // peersFile, bootstrapVoters, join: membership is the operator's.
  'cluster',
  // objectStore tuning keys (partConcurrency, listDelimiter, ...) may be set; what spec.objectStore renders and the
  // credentials (which never go into a ConfigMap) may not.
  'objectStore.backend',
  'objectStore.prefix',
  'objectStore.path',
  'objectStore.bucket',
  'objectStore.endpoint',
  'objectStore.region',
  'objectStore.forcePathStyle',
  'objectStore.accessKeyId',
  'objectStore.secretAccessKey',
  'objectStore.sessionToken',
] as const;

/** Broker config paths that a typed field of spec.config renders; additionalConfig must use the typed field. */
export const TYPED_CONFIG_PATHS: Record<string, string> = {
  'storage.segmentBytes': 'segmentBytes',
  'storage.segmentMs': 'segmentMs',
  'storage.retentionMs': 'retentionMs',
  'storage.retentionBytes': 'retentionBytes',
  'storage.flushMode': 'flush.mode',
  'storage.flushIntervalMs': 'flush.intervalMs',
  'storage.flushBytes': 'flush.bytes',
  'topics.defaultPartitions': 'defaultPartitions',
  'topics.autoCreate': 'autoCreateTopics',
  'log.level': 'logLevel',
};

/** The broker accepts camelCase and snake_case keys; compare additionalConfig keys in camelCase. */
export function camelConfigPath(path: string): string {
  return path
    .split('.')
    .map((seg) => seg.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()))
    .join('.');
}

const resourceList = z
  .record(z.string().min(1).max(253), quantity)
  .refine((r) => Object.keys(r).length <= 32, { message: 'must have at most 32 entries' })
  // Bounds the apiserver's CEL cost estimate for the per-quantity rule.
  .meta({ maxProperties: 32 })
  .describe('Resource name (cpu, memory, ephemeral-storage, ...) to quantity.');

export const resources = z
  .strictObject({
    requests: resourceList.optional(),
    limits: resourceList.optional(),
  })
  .describe('Compute resources of the broker container.');

export const storage = z
  .strictObject({
    size: quantity.default('10Gi').describe('Size of each broker PersistentVolumeClaim.'),
    storageClassName: dnsSubdomain
      .optional()
      .describe('StorageClass of the PVCs; the cluster default when unset. Immutable once set.'),
    onDelete: z
      .enum(['Retain', 'Delete'])
      .default('Retain')
      .describe('What happens to the PVCs when the LanceCluster is deleted: Retain keeps the data, Delete removes it.'),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '!has(oldSelf.storageClassName) || (has(self.storageClassName) && self.storageClassName == oldSelf.storageClassName)',
        message: 'storageClassName is immutable once set',
        fieldPath: '.storageClassName',
        reason: 'FieldValueForbidden',
      },
    ],
  })
  .describe('Persistent storage of each broker.');

export const brokerConfig = z
  .strictObject({
    segmentBytes: z.int().min(1_048_576).max(2 ** 40).optional().describe('storage.segmentBytes: roll a segment at this size (bytes).'),
    segmentMs: z.int().nonnegative().optional().describe('storage.segmentMs: roll a segment at this age (ms); 0 = never by age.'),
    retentionMs: z.int().nonnegative().optional().describe('storage.retentionMs: default topic retention by age (ms); 0 = unlimited.'),
    retentionBytes: z.int().nonnegative().optional().describe('storage.retentionBytes: default per-partition retention by size; 0 = unlimited.'),
    flush: z
      .strictObject({
        mode: z.enum(['interval', 'every-entry', 'bytes']).optional().describe('storage.flushMode.'),
        intervalMs: z.int().nonnegative().max(1000).optional().describe('storage.flushIntervalMs: group-commit window.'),
        bytes: z.int().positive().optional().describe('storage.flushBytes: bytes mode threshold.'),
      })
      .optional()
      .describe('Group-commit policy. Writes are always fsynced before they are acknowledged; this only tunes batching.'),
    defaultPartitions: z.int().min(1).max(10_000).optional().describe('topics.defaultPartitions: partitions of auto-created topics.'),
    autoCreateTopics: z.boolean().optional().describe('topics.autoCreate: create unknown topics on Metadata requests.'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().describe('log.level.'),
    additionalConfig: z
      .record(z.string().min(1).max(253).regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'must be a dotted config path such as storage.indexIntervalBytes'), z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .describe('Further broker config keys as dotted paths (e.g. storage.indexIntervalBytes: 8192), scalars only; see docs/configuration.md.'),
  })
  .superRefine((c, ctx) => {
    for (const key of Object.keys(c.additionalConfig ?? {})) {
      const path = camelConfigPath(key);
      const managed = MANAGED_CONFIG_PATHS.find((m) => path === m || path.startsWith(`${m}.`));
      if (managed !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['additionalConfig', key], message: `"${managed}" is set by the operator; it cannot be overridden here` });
      } else if (TYPED_CONFIG_PATHS[path] !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['additionalConfig', key], message: `use spec.config.${TYPED_CONFIG_PATHS[path]} instead` });
      }
    }
  })
  .describe('Broker configuration rendered into the ConfigMap (lance.yaml); names follow docs/configuration.md.');

export const objectStore = z
  .strictObject({
    backend: z.enum(['s3', 'file']).default('s3').describe('s3: any S3-compatible endpoint; file: a directory visible to every pod.'),
    bucket: z.string().min(3).max(63).regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'must be an S3 bucket name').optional().describe('Bucket (backend s3).'),
    path: z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path').optional().describe('Directory (backend file).'),
    prefix: z.string().max(1024).default('').describe('Key prefix under which this cluster writes; lets clusters share a bucket.'),
    endpoint: endpointUrl.optional().describe('S3 endpoint URL; AWS when unset.'),
    region: z.string().min(1).max(64).default('us-east-1'),
    forcePathStyle: z.boolean().default(false).describe('Use path-style addressing (MinIO, s3rver, most on-prem stores).'),
    credentialsSecret: credentialsSecret.optional(),
    metadataUploadInterval: duration.default('10s').describe('How often the controller uploads metadata snapshots; bounds the RPO of metadata.'),
  })
  .superRefine((o, ctx) => {
    if (o.backend === 's3' && o.bucket === undefined) ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'is required when backend is s3' });
    if (o.backend === 'file' && o.path === undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'is required when backend is file' });
  })
  .meta({
    'x-kubernetes-validations': [
      { rule: "self.backend != 's3' || has(self.bucket)", message: 'bucket is required when backend is s3', fieldPath: '.bucket' },
      { rule: "self.backend != 'file' || has(self.path)", message: 'path is required when backend is file', fieldPath: '.path' },
    ],
  })
  .describe('Object store for tiered segments and disaster-recovery restore points.');

export const listeners = z
  .strictObject({
    kafkaPort: port.default(DEFAULT_PORTS.kafkaPort).describe('Kafka protocol port.'),
    adminPort: port.default(DEFAULT_PORTS.adminPort).describe('Admin/health/metrics HTTP port.'),
    raftPort: port.default(DEFAULT_PORTS.raftPort).describe('Inter-broker (Raft) port.'),
  })
  .superRefine((l, ctx) => {
    if (l.adminPort === l.kafkaPort) ctx.addIssue({ code: 'custom', path: ['adminPort'], message: 'must differ from kafkaPort' });
    if (l.raftPort === l.kafkaPort || l.raftPort === l.adminPort) ctx.addIssue({ code: 'custom', path: ['raftPort'], message: 'must differ from kafkaPort and adminPort' });
  })
  .meta({
    'x-kubernetes-validations': [
      { rule: 'self.adminPort != self.kafkaPort', message: 'adminPort must differ from kafkaPort', fieldPath: '.adminPort' },
      {
        rule: 'self.raftPort != self.kafkaPort && self.raftPort != self.adminPort',
        message: 'raftPort must differ from kafkaPort and adminPort',
        fieldPath: '.raftPort',
      },
    ],
  });

export const podTemplate = z
  .strictObject({
    annotations: stringMap.optional().describe('Extra pod annotations.'),
    labels: stringMap.optional().describe('Extra pod labels (the operator\'s own labels win).'),
    nodeSelector: stringMap.optional(),
    affinity: freeFormObject.optional().meta({ 'x-kubernetes-preserve-unknown-fields': true }).describe('core/v1 Affinity.'),
    tolerations: z
      .array(freeFormObject.meta({ 'x-kubernetes-preserve-unknown-fields': true }))
      .max(64)
      .optional()
      .describe('core/v1 Tolerations.'),
    securityContext: freeFormObject
      .optional()
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .describe('core/v1 PodSecurityContext, merged over the operator\'s non-root defaults.'),
    priorityClassName: dnsSubdomain.optional(),
  })
  .describe('Overrides merged into the broker pod template.');

export const updateStrategy = z
  .strictObject({
    type: z
      .enum(['Auto', 'Manual'])
      .default('Auto')
      .describe('Auto: the operator restarts pods one at a time (followers first, leader last) when the image or config changes. Manual: pods are restarted only when the user deletes them.'),
  })
  .describe('How image and config changes reach running pods.');

export const lanceClusterSpec = z
  .strictObject({
    replicas: z
      .int()
      .min(1)
      .max(99)
      .default(3)
      .refine((n) => n % 2 === 1, { message: 'must be odd (a Raft majority needs an odd member count)' })
      .meta({ 'x-kubernetes-validations': [{ rule: 'self % 2 == 1', message: 'replicas must be odd', reason: 'FieldValueInvalid' }] })
      .describe('Number of brokers; odd, so a majority survives the loss of (replicas-1)/2 of them.'),
    image: image.describe('Broker image.'),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    resources: resources.optional(),
    storage: storage.default({ size: '10Gi', onDelete: 'Retain' }),
    config: brokerConfig.default({}),
    objectStore: objectStore.optional(),
    listeners: listeners.default(DEFAULT_PORTS),
    readOnly: z.boolean().default(false).describe('Serve reads only; produce requests are refused (e.g. while inspecting a restored cluster).'),
    podTemplate: podTemplate.optional(),
    updateStrategy: updateStrategy.default({ type: 'Auto' }),
  })
  .superRefine((s, ctx) => {
    // An objectStore section with tuning keys but no backend would stop the broker at start.
    // (Not mirrored in CEL: iterating a free-form map has an unbounded cost estimate.)
    if (s.objectStore !== undefined) return;
    for (const key of Object.keys(s.config.additionalConfig ?? {})) {
      if (camelConfigPath(key).startsWith('objectStore.')) {
        ctx.addIssue({ code: 'custom', path: ['config', 'additionalConfig', key], message: 'needs spec.objectStore' });
      }
    }
  })
  .describe('Desired state of a Lance broker cluster.');

export type LanceClusterSpec = z.output<typeof lanceClusterSpec>;
export type LanceClusterSpecInput = z.input<typeof lanceClusterSpec>;
export type ObjectStoreSpec = z.output<typeof objectStore>;
export type BrokerConfigSpec = z.output<typeof brokerConfig>;

// ---- Status ----

export const LANCECLUSTER_PHASES = ['Pending', 'Creating', 'Running', 'Updating', 'Scaling', 'Degraded', 'Failed'] as const;
export type LanceClusterPhase = (typeof LANCECLUSTER_PHASES)[number];

export const LANCECLUSTER_CONDITION_TYPES = ['Ready', 'Progressing', 'Degraded', 'SplitBrain', 'Fenced'] as const;
export type LanceClusterConditionType = (typeof LANCECLUSTER_CONDITION_TYPES)[number];

export const lanceClusterCondition = conditionSchema(LANCECLUSTER_CONDITION_TYPES);
export type LanceClusterCondition = z.output<typeof lanceClusterCondition>;

export const MEMBER_ROLES = ['Leader', 'Follower', 'Candidate', 'Learner', 'Unknown'] as const;

export const member = z.object({
  ordinal: z.int().nonnegative(),
  pod: z.string().min(1),
  nodeId: z.int().nonnegative().optional().describe('Broker node id (never reused for a different disk).'),
  role: z.enum(MEMBER_ROLES).default('Unknown').describe('Role in the metadata (controller) Raft group.'),
  term: z.int().nonnegative().optional(),
  lag: z.int().nonnegative().optional().describe('Metadata log entries behind the leader.'),
  fenced: z.boolean().default(false),
  ready: z.boolean().default(false),
});
export type Member = z.output<typeof member>;

export const restorePoint = z.object({
  id: z.string().min(1),
  time: timestamp,
});
export type RestorePoint = z.output<typeof restorePoint>;

export const lanceClusterStatus = z
  .object({
    phase: z.enum(LANCECLUSTER_PHASES).optional(),
    conditions: z.array(lanceClusterCondition).max(16).optional().meta(conditionListMeta),
    observedGeneration: z.int().nonnegative().optional(),
    replicas: z.int().nonnegative().optional().describe('Pods that exist (scale subresource).'),
    readyReplicas: z.int().nonnegative().optional(),
    ready: z.string().max(32).optional().describe('readyReplicas/replicas, for `kubectl get`.'),
    selector: z.string().max(1024).optional().describe('Label selector of the broker pods (scale subresource).'),
    members: z.array(member).max(99).optional(),
    leader: z.string().max(253).optional().describe('Pod of the metadata-group leader (the controller).'),
    controllerTerm: z.int().nonnegative().optional().describe('Raft term of the metadata group.'),
    bootstrapVoters: z.array(z.int().nonnegative()).max(99).optional().describe('Node ids that founded the Raft cluster (the brokers\' cluster.bootstrapVoters); recorded once, never changed: later brokers join.'),
    nodeIds: z.record(z.string(), z.int().nonnegative()).optional()
      .describe('Node id of the broker at each ordinal ("0": 0, "1": 3, ...): the brokers read it from peers.yaml by pod name. A replaced or scaled-up ordinal gets a new id; ids are never reused.'),
    nextNodeId: z.int().nonnegative().optional()
      .describe('Lowest node id never handed out; written (resourceVersion-guarded) before a pod using a new id is created.'),
    replacement: z
      .object({
        pod: z.string().min(1).max(253),
        ordinal: z.int().nonnegative(),
        podUid: z.string().max(64).describe('UID of the pod being replaced (its successor has another).'),
        oldNodeId: z.int().nonnegative(),
        newNodeId: z.int().nonnegative(),
        reason: z.enum(['annotation', 'pvc-lost', 'node-lost']),
        phase: z.enum(['removing', 'joining']).describe('removing: the old id leaves every group; joining: the new pod is added as a learner, catches up, is promoted.'),
      })
      .optional()
      .describe('Node replacement in progress; kept in status so an operator restart resumes it.'),
    lastRestorePoint: restorePoint.optional().describe('Newest complete restore point in the object store.'),
    restorePointAgeSeconds: z.int().nonnegative().optional().describe('Age of lastRestorePoint when status was written.'),
    currentImage: z.string().max(512).optional().describe('Image every pod runs once a rollout is complete.'),
    targetImage: z.string().max(512).optional(),
    currentConfigHash: z.string().max(128).optional(),
    targetConfigHash: z.string().max(128).optional(),
    rollout: z
      .object({
        podsPending: z.array(z.string().max(253)).max(99).default([]).describe('Pods still to be restarted, in order.'),
        order: z.array(z.string().max(253)).max(99).default([]).describe('Pods restarted so far, in order.'),
      })
      .optional()
      .describe('Progress of a rolling update; kept in status so an operator restart resumes it.'),
  })
  .describe('Observed state, written by the operator.');

export type LanceClusterStatus = z.output<typeof lanceClusterStatus>;

export const lanceCluster = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(LANCECLUSTER_KIND),
  metadata: objectMeta.extend({ name: dnsLabel.max(52, 'must be at most 52 characters (pod and Service names are derived from it)') }),
  spec: lanceClusterSpec,
  status: lanceClusterStatus.optional(),
});
export type LanceCluster = z.output<typeof lanceCluster>;
export type LanceClusterInput = z.input<typeof lanceCluster>;

/** Parses a LanceCluster spec; errors name the field as `spec.<path>`. */
export function safeParseLanceClusterSpec(input: unknown): ParseResult<LanceClusterSpec> {
  return safeParseWith(lanceClusterSpec, input, 'spec', 'LanceCluster spec');
}

export function parseLanceClusterSpec(input: unknown): LanceClusterSpec {
  return parseWith(lanceClusterSpec, input, 'spec', 'LanceCluster spec');
}

/** Parses a whole LanceCluster object (as read from the apiserver or a YAML file). */
export function safeParseLanceCluster(input: unknown): ParseResult<LanceCluster> {
  return safeParseWith(lanceCluster, input, '', 'LanceCluster');
}

export function parseLanceCluster(input: unknown): LanceCluster {
  return parseWith(lanceCluster, input, '', 'LanceCluster');
}

export function parseLanceClusterStatus(input: unknown): LanceClusterStatus {
  return parseWith(lanceClusterStatus, input, 'status', 'LanceCluster status');
}

/** The `status.ready` text shown by `kubectl get lc`. */
export function readyText(readyReplicas: number, replicas: number): string {
  return `${readyReplicas}/${replicas}`;
}
