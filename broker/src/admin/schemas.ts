/**
 * The admin API's wire types (port 1992), as zod schemas. Shared by the server (broker/src/admin/server.ts), the
 * typed client (./client.ts, used by lnc and the operator) and tests. Imports nothing but zod.
 */
import { z } from 'zod';

export const ErrorBodySchema = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const LiveSchema = z.object({ status: z.literal('ok') });

export const ReadySchema = z.object({
  status: z.enum(['ready', 'not-ready']),
  checks: z.object({ storage: z.boolean(), kafka: z.boolean() }),
});
export type Ready = z.infer<typeof ReadySchema>;

export const TopicConfigSchema = z.object({
  /** 0 = unlimited */
  retentionMs: z.number().int().nonnegative(),
  /** per partition; 0 = unlimited */
  retentionBytes: z.number().int().nonnegative(),
  segmentBytes: z.number().int().positive(),
});
export type TopicConfig = z.infer<typeof TopicConfigSchema>;

/** One element of `GET /v1/topics` (and of `lnc list-topics`: the runbook pipes it to `jq -r '.[] .id'`). */
export const TopicSummarySchema = z.object({
  /** small integer, the data dir's topic_<id> */
  id: z.number().int().positive(),
  name: z.string(),
  partitions: z.number().int().positive(),
  /** Kafka topic UUID */
  topicId: z.string(),
  config: TopicConfigSchema,
  /** cluster mode: the topic's replication factor (target replicas per partition) */
  replicationFactor: z.number().int().positive().optional(),
});
export type TopicSummary = z.infer<typeof TopicSummarySchema>;
export const TopicListSchema = z.array(TopicSummarySchema);

export const PartitionStateSchema = z.object({
  partition: z.number().int().nonnegative(),
  leader: z.number().int(),
  logStartOffset: z.number().int().nonnegative(),
  /** next offset to be written (includes not-yet-fsynced data) */
  logEndOffset: z.number().int().nonnegative(),
  /** consumers see offsets below this: the durable (fsynced) end in standalone mode */
  highWatermark: z.number().int().nonnegative(),
  sizeBytes: z.number().int().nonnegative(),
  segments: z.number().int().nonnegative(),
});
export type PartitionState = z.infer<typeof PartitionStateSchema>;

export const TopicDetailSchema = TopicSummarySchema.extend({
  partitionStates: z.array(PartitionStateSchema),
});
export type TopicDetail = z.infer<typeof TopicDetailSchema>;

const topicName = z.string()
  .min(1, { error: 'topic name must not be empty' })
  .max(249, { error: 'topic name must be at most 249 characters' })
  .regex(/^[A-Za-z0-9._-]+$/, { error: 'topic name may contain only [A-Za-z0-9._-]' })
  .refine((s) => s !== '.' && s !== '..', { error: 'topic name must not be "." or ".."' });

export const CreateTopicRequestSchema = z.strictObject({
  name: topicName,
  /** default: the server's topics.defaultPartitions */
  partitions: z.number().int().min(1).max(10_000).optional(),
  config: TopicConfigSchema.partial().strict().optional(),
});
export type CreateTopicRequest = z.infer<typeof CreateTopicRequestSchema>;

export const DeleteTopicResponseSchema = z.object({ deleted: z.string(), id: z.number().int().positive() });

export const ENCODINGS = ['utf8', 'base64'] as const;
export const EncodingSchema = z.enum(ENCODINGS);
export type Encoding = z.infer<typeof EncodingSchema>;

/** Limits that keep the record endpoints simple and bounded. */
export const RECORD_LIMITS = {
  maxRecordsPerProduce: 10_000,
  maxBodyBytes: 16 * 1024 * 1024,
  maxRecordsPerFetch: 10_000,
  maxFetchBytes: 8 * 1024 * 1024,
  maxWaitMs: 30_000,
} as const;

export const ProduceRecordSchema = z.strictObject({
  /** default: murmur2(key) like Kafka's default partitioner, else round robin */
  partition: z.number().int().nonnegative().optional(),
  key: z.string().nullable().optional(),
  value: z.string().nullable(),
  headers: z.record(z.string(), z.string()).optional(),
  /** ms since epoch; default: now */
  timestamp: z.number().int().nonnegative().optional(),
});
export type ProduceRecord = z.infer<typeof ProduceRecordSchema>;

export const ProduceRequestSchema = z.strictObject({
  /** how key, value and header values are encoded in this JSON (default utf8) */
  encoding: EncodingSchema.optional(),
  records: z.array(ProduceRecordSchema).min(1, { error: 'records must not be empty' })
    .max(RECORD_LIMITS.maxRecordsPerProduce, { error: `at most ${RECORD_LIMITS.maxRecordsPerProduce} records per request` }),
});
export type ProduceRequest = z.infer<typeof ProduceRequestSchema>;

export const ProduceResponseSchema = z.object({
  topic: z.string(),
  /** one entry per partition written, with the offsets assigned; answered after fsync (acks=1 semantics) */
  partitions: z.array(z.object({
    partition: z.number().int().nonnegative(),
    baseOffset: z.number().int().nonnegative(),
    count: z.number().int().positive(),
  })),
});
export type ProduceResponse = z.infer<typeof ProduceResponseSchema>;

/** Query of `GET /v1/topics/:t/partitions/:p/records` (strings on the wire). */
export const FetchQuerySchema = z.strictObject({
  /** default: the log start offset */
  offset: z.coerce.number().int().nonnegative().optional(),
  max: z.coerce.number().int().min(1).max(RECORD_LIMITS.maxRecordsPerFetch).default(1000),
  maxBytes: z.coerce.number().int().min(1).max(RECORD_LIMITS.maxFetchBytes).default(1024 * 1024),
  /** wait up to this long for data at `offset` when there is none yet */
  waitMs: z.coerce.number().int().min(0).max(RECORD_LIMITS.maxWaitMs).default(0),
  encoding: EncodingSchema.default('utf8'),
});
export type FetchQuery = z.infer<typeof FetchQuerySchema>;

export const ConsumedRecordSchema = z.object({
  offset: z.number().int().nonnegative(),
  timestamp: z.number().int(),
  key: z.string().nullable(),
  value: z.string().nullable(),
  headers: z.record(z.string(), z.string()),
});
export type ConsumedRecord = z.infer<typeof ConsumedRecordSchema>;

export const FetchResponseSchema = z.object({
  topic: z.string(),
  partition: z.number().int().nonnegative(),
  encoding: EncodingSchema,
  logStartOffset: z.number().int().nonnegative(),
  highWatermark: z.number().int().nonnegative(),
  /** where to continue reading */
  nextOffset: z.number().int().nonnegative(),
  records: z.array(ConsumedRecordSchema),
});
export type FetchResponse = z.infer<typeof FetchResponseSchema>;

export const EndpointSchema = z.object({ host: z.string(), port: z.number().int().nonnegative() });

/** One Raft group as `GET /v1/cluster` reports it (cluster mode). followers: leader only. */
export const ClusterGroupSchema = z.object({
  group: z.string(),
  topic: z.string().nullable(),
  partition: z.number().int().nonnegative().nullable(),
  role: z.enum(['follower', 'precandidate', 'candidate', 'leader']),
  term: z.number().int().nonnegative(),
  leader: z.number().int().nullable(),
  commitIndex: z.number().int().nonnegative(),
  lastIndex: z.number().int().nonnegative(),
  voters: z.array(z.number().int().nonnegative()),
  learners: z.array(z.number().int().nonnegative()),
  followers: z.array(z.object({ nodeId: z.number().int().nonnegative(), voter: z.boolean(), matchIndex: z.number().int().nonnegative(), lag: z.number().int() })),
});
export type ClusterGroup = z.infer<typeof ClusterGroupSchema>;

/** `GET /v1/cluster`: this node's view. */
export const ClusterViewSchema = z.object({
  clusterId: z.string(),
  nodeId: z.number().int().nonnegative(),
  role: z.enum(['standalone', 'leader', 'follower', 'learner']),
  readOnly: z.boolean(),
  version: z.string(),
  startedAt: z.string(),
  listeners: z.object({
    /** the advertised Kafka endpoint clients bootstrap from */
    kafka: EndpointSchema,
    admin: EndpointSchema,
  }),
  brokers: z.array(z.object({ nodeId: z.number().int().nonnegative(), host: z.string(), port: z.number().int().nonnegative() })),
  topics: z.array(z.object({
    id: z.number().int().positive(),
    name: z.string(),
    topicId: z.string(),
    partitions: z.array(PartitionStateSchema),
  })),
  /** cluster mode only: the metadata group's leader (-1 unknown) */
  controllerId: z.number().int().optional(),
  /** cluster mode only: this node is fenced (serves no client traffic, votes for no leader) */
  fenced: z.boolean().optional(),
  /** cluster mode only: every Raft group on this node ("__meta" and one per local partition replica) */
  groups: z.array(ClusterGroupSchema).optional(),
});
export type ClusterView = z.infer<typeof ClusterViewSchema>;

/** `POST /v1/members`: single-server membership change, applied to the metadata group and (default) every partition group led here. */
export const MembersRequestSchema = z.strictObject({
  action: z.enum(['add-learner', 'promote', 'remove']),
  nodeId: z.number().int().nonnegative(),
  /** one group only (default: "__meta") */
  group: z.string().min(1).optional(),
});
export type MembersRequest = z.infer<typeof MembersRequestSchema>;

const memberPort = (name: string) => z.number({ error: `${name}: expected a port number 1-65535` }).int({ error: `${name}: expected a port number 1-65535` })
  .min(1, { error: `${name}: expected a port number 1-65535` }).max(65535, { error: `${name}: expected a port number 1-65535` });

/**
 * `PUT /v1/members/{nodeId}`: make a broker a member (idempotent): register its endpoints in the metadata, add it to
 * the metadata group as a learner → promote once caught up, and give it replicas of under-replicated partitions.
 */
export const MemberEndpointsSchema = z.strictObject({
  host: z.string({ error: 'host: expected a host name or IP address' }).min(1, { error: 'host: expected a host name or IP address' }),
  kafkaPort: memberPort('kafkaPort'),
  adminPort: memberPort('adminPort'),
  raftPort: memberPort('raftPort'),
});
export type MemberEndpoints = z.infer<typeof MemberEndpointsSchema>;

/**
 * One broker as `GET /v1/members` reports it. `state`: `joining` (registered; not yet a voter of the metadata group
 * and of every partition assigned to it), `active`, `removing` (removed; still in some group's membership),
 * `removed` (gone from every group). `role`: its role in the metadata group's membership.
 */
export const MemberSchema = z.object({
  nodeId: z.number().int().nonnegative(),
  host: z.string(),
  kafkaPort: z.number().int().nonnegative(),
  adminPort: z.number().int().nonnegative(),
  raftPort: z.number().int().nonnegative(),
  role: z.enum(['voter', 'learner', 'none']),
  state: z.enum(['joining', 'active', 'removing', 'removed']),
  controller: z.boolean(),
  /** partitions assigned to it (target), and in how many leader-reported memberships it is a voter / learner */
  partitions: z.object({ assigned: z.number().int().nonnegative(), voter: z.number().int().nonnegative(), learner: z.number().int().nonnegative() }),
});
export type Member = z.infer<typeof MemberSchema>;

export const MembersListSchema = z.object({ controllerId: z.number().int(), members: z.array(MemberSchema) });
export type MembersList = z.infer<typeof MembersListSchema>;

/** `PUT`/`DELETE /v1/members/{nodeId}` answer: what was decided (the moves run asynchronously; poll GET /v1/members) */
export const MemberActionResponseSchema = z.object({ ok: z.literal(true), message: z.string(), changed: z.boolean() });
export type MemberActionResponse = z.infer<typeof MemberActionResponseSchema>;

/** `POST /v1/transfer-leader` */
export const TransferLeaderRequestSchema = z.strictObject({
  /** default: "__meta" (the controller) */
  group: z.string().min(1).optional(),
  to: z.number().int().nonnegative(),
});
export type TransferLeaderRequest = z.infer<typeof TransferLeaderRequestSchema>;

export const ClusterActionResponseSchema = z.object({ ok: z.literal(true), message: z.string() });
export type ClusterActionResponse = z.infer<typeof ClusterActionResponseSchema>;

// ------------------------------------------------------------------ consumer groups (/v1/groups; lnc groups)

export const GroupStateSchema = z.enum(['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead']);
export const GroupSummarySchema = z.object({ group: z.string(), state: GroupStateSchema, protocolType: z.string(), members: z.number().int().nonnegative() });
export type GroupSummary = z.infer<typeof GroupSummarySchema>;
export const GroupListSchema = z.array(GroupSummarySchema);

export const GroupDetailSchema = z.object({
  group: z.string(),
  state: GroupStateSchema,
  protocolType: z.string(),
  protocol: z.string(),
  generation: z.number().int(),
  members: z.array(z.object({
    memberId: z.string(),
    groupInstanceId: z.string().nullable(),
    clientId: z.string(),
    clientHost: z.string(),
    /** decoded consumer-protocol assignment (empty for other protocol types) */
    assignment: z.array(z.object({ topic: z.string(), partitions: z.array(z.number().int()) })),
  })),
  /** one row per partition of every topic the group has offsets for or is assigned */
  partitions: z.array(z.object({
    topic: z.string(),
    partition: z.number().int().nonnegative(),
    committedOffset: z.number().int().nullable(),
    logEndOffset: z.number().int().nullable(),
    lag: z.number().int().nullable(),
    memberId: z.string().nullable(),
    metadata: z.string().nullable(),
  })),
});
export type GroupDetail = z.infer<typeof GroupDetailSchema>;

export const ResetOffsetsRequestSchema = z.strictObject({
  topic: z.string().min(1),
  to: z.union([z.literal('earliest'), z.literal('latest'), z.strictObject({ datetime: z.iso.datetime({ offset: true }) })]),
  /** false = dry run: show what would change */
  execute: z.boolean().default(false),
});
export type ResetOffsetsRequest = z.infer<typeof ResetOffsetsRequestSchema>;
export const ResetOffsetsResponseSchema = z.object({
  group: z.string(),
  executed: z.boolean(),
  offsets: z.array(z.object({ topic: z.string(), partition: z.number().int(), current: z.number().int().nullable(), target: z.number().int() })),
});
export type ResetOffsetsResponse = z.infer<typeof ResetOffsetsResponseSchema>;

/**
 * `GET /v1/node`: this node's cold-start state (broker/src/tiering/cluster-cold-start.ts). A node cold-starting on an
 * empty data dir answers `fresh` / `restoring` (the restore point it will restore) from a small server of its own;
 * a running broker answers `running` with its metadata group's term and last index (0/0: no state yet) and the
 * restore point its data dir was restored from (null if none).
 */
export const NodeStatusSchema = z.discriminatedUnion('state', [
  z.object({ state: z.enum(['fresh', 'restoring']), nodeId: z.number().int().nonnegative(), clusterId: z.string(), restorePoint: z.string().nullable(), takenAtMs: z.number().int().nonnegative() }),
  z.object({ state: z.literal('running'), nodeId: z.number().int().nonnegative(), clusterId: z.string(), metaTerm: z.number().int().nonnegative(), metaLastIndex: z.number().int().nonnegative(), restoredFrom: z.string().nullable() }),
]);
export type NodeStatus = z.infer<typeof NodeStatusSchema>;
