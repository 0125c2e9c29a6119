/**
 * The seam between the Kafka wire protocol (this folder) and the broker (broker/src/server/, storage, later Raft).
 *
 * The Kafka handlers only ever talk to a `KafkaBackend`. The broker implements it with real storage; the Kafka
 * layer owns framing, codecs, request validation (including RecordBatch CRC32C/structure) and error mapping.
 *
 * Error contract: every method that can fail throws a `LanceError` (broker/src/common/errors.ts). The Kafka layer
 * maps it to a Kafka error code with the single table in ./errors.ts. Where a LanceError code is ambiguous for Kafka
 * (INVALID_ARGUMENT), put the offending field in `details.field` (see `KafkaFieldHint`), e.g.
 *   throw new LanceError('INVALID_ARGUMENT', 'numPartitions must be >= 1, got 0', { field: 'numPartitions' })
 * and the client gets INVALID_PARTITIONS with that message.
 */

/** A broker as advertised to clients (Metadata, DescribeCluster, FindCoordinator). */
export interface BrokerEndpoint {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionMetadata {
  partition: number;
  /** node id of the leader; -1 when there is none right now (clients retry with LEADER_NOT_AVAILABLE) */
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicMetadata {
  name: string;
  /** Kafka topic id: a UUID string "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (sent as its 16 bytes on the wire) */
  topicId: string;
  isInternal: boolean;
  /** sorted by partition number, 0..n-1 */
  partitions: PartitionMetadata[];
}

/** A RecordBatch v2 the Kafka layer has already validated (size, magic, CRC32C, record count). */
export interface ValidatedBatch {
  /** the complete batch bytes as the client sent them (baseOffset still as sent; the log rewrites it) */
  bytes: Buffer;
  /** lastOffsetDelta + 1: the number of offsets this batch occupies */
  offsetCount: number;
  /** number of records the batch header declares */
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
  /** attributes & 0x07: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (stored without recompression) */
  compression: number;
  /** attributes bit 3: timestamps are LogAppendTime */
  logAppendTime: boolean;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  isTransactional: boolean;
  isControl: boolean;
}

export interface ProduceResult {
  /** offset assigned to the first record of the first batch */
  baseOffset: number;
  /** -1 unless the topic uses LogAppendTime */
  logAppendTimeMs: number;
  logStartOffset: number;
}

export interface FetchResult {
  highWatermark: number;
  /** no transactions yet: equals highWatermark */
  lastStableOffset: number;
  logStartOffset: number;
  /**
   * Concatenated RecordBatch v2 bytes with baseOffset rewritten to the assigned offsets, starting with the batch
   * that contains `offset`, and containing only batches entirely below highWatermark (committed data).
   * Size: at most maxBytes, EXCEPT that the first batch is returned whole even if it alone exceeds maxBytes
   * (KIP-74: a consumer must always make progress). Empty Buffer when there is nothing at/after `offset`.
   */
  records: Buffer;
}

export interface ListOffsetResult {
  /** -1 if no record has a timestamp >= the requested one */
  offset: number;
  /** -1 for EARLIEST/LATEST lookups; the found record's (batch max) timestamp for by-time lookups */
  timestamp: number;
  leaderEpoch: number;
}

/** Special timestamps of ListOffsets. */
export const ListOffsetsTimestamp = {
  LATEST: -1,
  EARLIEST: -2,
  MAX_TIMESTAMP: -3,
} as const;

export type ConfigSource = 'TOPIC' | 'DYNAMIC_BROKER' | 'STATIC_BROKER' | 'DEFAULT';

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  isSensitive: boolean;
  source: ConfigSource;
  /** "LONG" | "INT" | "STRING" | "LIST" | ...; used by DescribeConfigs v3+ */
  type: 'BOOLEAN' | 'STRING' | 'INT' | 'SHORT' | 'LONG' | 'DOUBLE' | 'LIST' | 'CLASS' | 'PASSWORD';
  documentation: string | null;
}

export interface CreateTopicRequest {
  name: string;
  /** -1 = broker default */
  numPartitions: number;
  /** -1 = broker default */
  replicationFactor: number;
  /** manual assignment partition → replica node ids; empty when not given */
  assignments: Array<{ partition: number; brokerIds: number[] }>;
  /** only the keys the client set; value null means "default" */
  configs: Record<string, string | null>;
  validateOnly: boolean;
}

export interface CreateTopicResult {
  topicId: string;
  numPartitions: number;
  replicationFactor: number;
  configs: ConfigEntry[];
}

/**
 * Hints for INVALID_ARGUMENT errors: `details.field` values the Kafka layer maps to specific error codes.
 * Anything else maps to INVALID_REQUEST.
 */
export type KafkaFieldHint =
  | 'topic'              // INVALID_TOPIC_EXCEPTION (bad name, internal topic)
  | 'numPartitions'      // INVALID_PARTITIONS
  | 'replicationFactor'  // INVALID_REPLICATION_FACTOR
  | 'assignments'        // INVALID_REPLICA_ASSIGNMENT
  | 'config'             // INVALID_CONFIG
  | 'timestamp'          // INVALID_TIMESTAMP
  | 'records'            // INVALID_RECORD
  | 'sequence'           // OUT_OF_ORDER_SEQUENCE_NUMBER (idempotent producer gap)
  | 'producerEpoch';     // INVALID_PRODUCER_EPOCH (fenced idempotent producer)

export interface KafkaBackend {
  readonly clusterId: string;
  readonly nodeId: number;

  /** every live broker clients may connect to (this node included) */
  brokers(): BrokerEndpoint[];
  /** node id of the controller (metadata leader); this node in standalone mode; -1 if unknown */
  controllerId(): number;
  /** the runbook's emergency read-only mode: produce/create/delete/alter throw LanceError('READ_ONLY') */
  isReadOnly(): boolean;

  /** all topics, sorted by name */
  listTopics(): TopicMetadata[];
  getTopic(name: string): TopicMetadata | undefined;
  getTopicById(topicId: string): TopicMetadata | undefined;

  /**
   * Kafka auto-creation: called from Metadata (allow_auto_topic_creation set, topic unknown). Returns true when the
   * topic is being created (the client gets LEADER_NOT_AVAILABLE and retries), false when auto-creation is off,
   * read-only, or the name is invalid (the client gets UNKNOWN_TOPIC_OR_PARTITION). Optional.
   */
  autoCreateTopic?(name: string): boolean;

  /** throws CONFLICT if it exists, INVALID_ARGUMENT with a field hint, READ_ONLY */
  createTopic(req: CreateTopicRequest): Promise<CreateTopicResult>;
  /** throws NOT_FOUND, READ_ONLY */
  deleteTopic(name: string): Promise<void>;
  /** grows `name` to `totalCount` partitions; INVALID_ARGUMENT field 'numPartitions' if not larger */
  createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void>;

  /**
   * Appends already-validated batches (in order) to one partition. Calls are appended in CALL order (the Kafka
   * layer calls produce synchronously in request order, so pipelined requests keep their order).
   * acks: 0 → resolve after the append is queued (the Kafka layer sends no response anyway);
   *       1 → after the leader's fsync; -1 → after the entry is committed (majority fsynced).
   * Throws NOT_FOUND (unknown topic/partition), NOT_LEADER, READ_ONLY, TIMEOUT (timeoutMs passed), IO.
   */
  produce(topic: string, partition: number, batches: ValidatedBatch[], acks: -1 | 0 | 1, timeoutMs: number): Promise<ProduceResult>;

  /** Reads committed data from `offset`. Throws NOT_FOUND, NOT_LEADER, OFFSET_OUT_OF_RANGE (offset < logStart or > HW). */
  fetch(topic: string, partition: number, offset: number, maxBytes: number): Promise<FetchResult>;

  /**
   * Calls `listener` whenever a partition's high watermark advances (new committed data). Returns an unsubscribe
   * function. Fetch uses it to wait for max_wait_ms/min_bytes without polling.
   */
  onHighWatermark(listener: (topic: string, partition: number, highWatermark: number) => void): () => void;

  /** timestamp: ListOffsetsTimestamp.LATEST / EARLIEST / MAX_TIMESTAMP or ms since epoch (first offset with ts >= it) */
  listOffsets(topic: string, partition: number, timestamp: number): Promise<ListOffsetResult>;

  /** all topic configs (retention.ms, retention.bytes, segment.bytes, cleanup.policy (read-only "delete"), ...) */
  describeTopicConfigs(topic: string): Promise<ConfigEntry[]>;
  /** broker-level configs for DescribeConfigs on a BROKER resource (may be a short list) */
  describeBrokerConfigs(): Promise<ConfigEntry[]>;
  /**
   * AlterConfigs (non-incremental) semantics: `configs` replaces the topic's whole override set; keys not given
   * revert to defaults. Throws INVALID_ARGUMENT field 'config' naming the key, NOT_FOUND, READ_ONLY.
   */
  alterTopicConfigs(topic: string, configs: Record<string, string | null>, validateOnly: boolean): Promise<void>;
}
