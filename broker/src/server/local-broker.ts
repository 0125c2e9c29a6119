/**
 * LocalBroker: the single-node broker. Implements the Kafka seam (KafkaBackend) and the admin API's domain
 * (AdminService) on the real storage engine: topics through catalog.ts, one PartitionLog per partition.
 *
 * Durability: the high watermark of a partition is its durable (fsynced) end offset, so consumers only ever see
 * data that survives a crash. acks=1 and acks=-1 are answered after the fsync (group commit); acks=0 at once.
 */
import { EventEmitter } from 'node:events';
import { LanceError, isLanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type {
  BrokerEndpoint, ConfigEntry, CreateTopicRequest as KafkaCreateTopicRequest, CreateTopicResult, FetchResult, KafkaBackend,
  ListOffsetResult, ProduceResult, TopicMetadata, ValidatedBatch,
} from '../kafka/backend.ts';
import { ListOffsetsTimestamp } from '../kafka/backend.ts';
import * as catalog from '../storage/catalog.ts';
import { PartitionLog } from '../storage/partition-log.ts';
import { loadProducerState, maybeSaveProducerState, saveProducerState, type ProducerStateTable } from '../kafka/producer-state.ts';
import { setPartitionLeaderEpoch } from '../storage/record-batch.ts';
import { readCommittedBatches } from '../storage/read-committed.ts';
import { EntryType, type LogOptions } from '../storage/types.ts';
import type {
  ClusterView, ConsumedRecord, CreateTopicRequest, FetchQuery, FetchResponse, PartitionState, ProduceRequest, ProduceResponse,
  TopicDetail, TopicSummary,
} from '../admin/schemas.ts';
import { logOptions, type LanceConfig } from './config.ts';
import type { BrokerMetrics } from './metrics.ts';
import { decodeRecordBatches, encodeRecordBatch, partitionForKey, type SimpleRecord } from './records.ts';
import { createObjectStore } from '../tiering/config.ts';
import { TieringMetrics } from '../tiering/metrics.ts';
import { TieredStorage } from '../tiering/tiered-storage.ts';
import type { ObjectStore } from '../tiering/object-store.ts';
import { FsObjectStore } from '../tiering/fs-store.ts';

/** Term of entries a standalone node writes (Raft takes over terms when replication lands). */
const STANDALONE_MIN_TERM = 1;

interface PartitionRuntime {
  partition: number;
  log: PartitionLog;
  /** durable end offset: consumers read below it */
  highWatermark: number;
  term: number;
  /** idempotent producers' sequence state, derived from this log (broker/src/kafka/producer-state.ts) */
  producers?: ProducerStateTable;
  dir?: string;
}

interface TopicRuntime {
  meta: catalog.TopicMeta;
  /** the Kafka topic id as a UUID string */
  topicId: string;
  partitions: PartitionRuntime[];
  /** round-robin cursor for unkeyed admin produce */
  nextPartition: number;
}

export interface LocalBrokerOptions {
  config: LanceConfig;
  clusterId: string;
  nodeId: number;
  logger: Logger;
  metrics?: BrokerMetrics;
  version?: string;
}

export function uuidFromHex(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function notFound(topic: string, partition?: number): LanceError {
  return partition === undefined
    ? new LanceError('NOT_FOUND', `topic "${topic}" does not exist`, { topic })
    : new LanceError('NOT_FOUND', `topic "${topic}" has no partition ${partition}`, { topic, partition });
}

/** Kafka topic config names this broker understands; values map to catalog TopicConfig fields. */
const KAFKA_TOPIC_CONFIGS = {
  'retention.ms': 'retentionMs',
  'retention.bytes': 'retentionBytes',
  'segment.bytes': 'segmentBytes',
  'segment.ms': 'segmentMs',
} as const;
type KafkaConfigName = keyof typeof KAFKA_TOPIC_CONFIGS;
type TopicConfigPatch = { retentionMs?: number; retentionBytes?: number; segmentBytes?: number; segmentMs?: number };

/**
 * Pure: Kafka config strings → catalog values. Kafka says -1 for "unlimited" retention; Lance stores 0 (the seed's
 * "0 deletes everything" bug is why 0 never means "keep nothing" here), and a Kafka value of 0 is refused.
 */
export function parseKafkaTopicConfigs(configs: Record<string, string | null>): TopicConfigPatch {
  const out: TopicConfigPatch = {};
  for (const [name, raw] of Object.entries(configs)) {
    if (name === 'cleanup.policy') {
      if (raw === null || raw === 'delete') continue;
      throw new LanceError('INVALID_ARGUMENT', `cleanup.policy: only "delete" is supported, got ${JSON.stringify(raw)}`, { field: 'config', key: name });
    }
    if (!(name in KAFKA_TOPIC_CONFIGS)) {
      throw new LanceError('INVALID_ARGUMENT', `${name}: unknown or unsupported topic config (supported: ${[...Object.keys(KAFKA_TOPIC_CONFIGS), 'cleanup.policy'].join(', ')})`, { field: 'config', key: name });
    }
    if (raw === null) continue;
    if (!/^-?\d+$/.test(raw.trim())) throw new LanceError('INVALID_ARGUMENT', `${name}: expected an integer, got ${JSON.stringify(raw)}`, { field: 'config', key: name });
    const v = Number(raw.trim());
    const field = KAFKA_TOPIC_CONFIGS[name as KafkaConfigName];
    if (field === 'retentionMs' || field === 'retentionBytes') {
      if (v === 0) throw new LanceError('INVALID_ARGUMENT', `${name}: 0 would keep nothing; use -1 for unlimited`, { field: 'config', key: name });
      if (v < -1) throw new LanceError('INVALID_ARGUMENT', `${name}: expected -1 (unlimited) or a positive integer, got ${v}`, { field: 'config', key: name });
      out[field] = v === -1 ? 0 : v;
    } else if (field === 'segmentMs') {
      if (v < 1) throw new LanceError('INVALID_ARGUMENT', `${name}: expected a positive integer, got ${v}`, { field: 'config', key: name });
      out[field] = v;
    } else {
      if (v < 1024) throw new LanceError('INVALID_ARGUMENT', `${name}: expected at least 1024, got ${v}`, { field: 'config', key: name });
      out[field] = v;
    }
  }
  return out;
}

export class LocalBroker implements KafkaBackend {
  readonly clusterId: string;
  readonly nodeId: number;
  private readonly config: LanceConfig;
  private readonly logger: Logger;
  private readonly metrics: BrokerMetrics | undefined;
  private readonly version: string;
  private readonly startedAt = new Date().toISOString();
  private readonly topics = new Map<string, TopicRuntime>();
  private readonly hwEvents = new EventEmitter();
  private endpoint: BrokerEndpoint;
  private adminEndpoint = { host: '', port: 0 };
  private kafkaUp = false;
  private waiting = 0;
  private readonly autoCreating = new Set<string>();
  private closed = false;
  private retentionTimer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  /** serialises topic create/delete/alter so they never interleave with each other */
  private adminChain: Promise<unknown> = Promise.resolve();
  /** tiered segments (config `objectStore`): uploads, remote reads below the local log start */
  private tiering: TieredStorage | undefined;
  private objectStore: ObjectStore | undefined;

  private constructor(opts: LocalBrokerOptions) {
    this.config = opts.config;
    this.clusterId = opts.clusterId;
    this.nodeId = opts.nodeId;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.version = opts.version ?? '0.0.0';
    this.endpoint = { nodeId: opts.nodeId, host: opts.config.listeners.kafka.advertisedHost ?? '127.0.0.1', port: opts.config.listeners.kafka.advertisedPort ?? opts.config.listeners.kafka.port, rack: null };
    this.hwEvents.setMaxListeners(0);
  }

  /** Opens every topic's partition logs (running their crash recovery) and starts the retention timer. */
  static async open(opts: LocalBrokerOptions): Promise<LocalBroker> {
    const b = new LocalBroker(opts);
    if (opts.config.objectStore) b.startTiering(opts.config.objectStore);
    for (const meta of await catalog.listTopics(opts.config.dataDir)) {
      await b.openTopic(meta);
    }
    b.metrics?.readOnly.set(opts.config.readOnly ? 1 : 0);
    b.retentionTimer = setInterval(() => {
      void b.enforceRetention().catch((e: unknown) => b.logger.error({ err: e }, 'retention pass failed'));
    }, opts.config.storage.retentionCheckIntervalMs);
    b.retentionTimer.unref();
    if (opts.config.topics.rescanIntervalMs > 0) {
      b.rescanTimer = setInterval(() => {
        void b.rescanCatalog().catch((e: unknown) => b.logger.error({ err: e }, 'catalog rescan failed'));
      }, opts.config.topics.rescanIntervalMs);
      b.rescanTimer.unref();
    }
    b.logger.info({ topics: b.topics.size, dataDir: opts.config.dataDir }, 'storage open');
    return b;
  }

  private startTiering(storeConfig: NonNullable<LanceConfig['objectStore']>): void {
    const tm = this.metrics ? new TieringMetrics(this.metrics.registry) : undefined;
    this.objectStore = createObjectStore(storeConfig, { log: this.logger.child({ component: 'object-store' }), ...(tm ? { hooks: tm.storeHooks() } : {}) });
    const t = this.config.tiering;
    this.tiering = new TieredStorage({
      store: this.objectStore, nodeId: this.nodeId, logger: this.logger, ...(tm ? { metrics: tm } : {}),
      settings: { uploadIntervalMs: t.uploadIntervalMs, localRetentionMs: t.localRetentionMs, localRetentionBytes: t.localRetentionBytes, cacheBytes: t.cacheBytes },
    });
    this.tiering.start();
    // the file backend: reclaim temp files of writes a crash cut short (ignored by listings, but they take space)
    if (this.objectStore instanceof FsObjectStore) {
      void this.objectStore.removeStaleTempFiles().catch((e: unknown) => this.logger.warn({ err: e }, 'object store temp file cleanup failed'));
    }
    this.logger.info({ objectStore: this.objectStore.url, uploadIntervalMs: t.uploadIntervalMs }, 'tiered segments on');
  }

  /** the tiering service when `objectStore` is configured (tests, metrics) */
  get tieredStorage(): TieredStorage | undefined {
    return this.tiering;
  }

  private registerTiering(rt: TopicRuntime, partitions: PartitionRuntime[]): void {
    if (!this.tiering) return;
    for (const p of partitions) {
      this.tiering.addPartition({
        topic: rt.meta.name, ref: { clusterId: this.clusterId, topicId: rt.topicId, partition: p.partition }, log: p.log,
        term: () => p.term, highWatermark: () => p.highWatermark,
        remoteRetention: () => ({ retentionMs: rt.meta.config.retentionMs, retentionBytes: rt.meta.config.retentionBytes }),
      });
    }
  }

  /** makes sure tiering knows the partition's remote segments (after a restart); a failing store is logged */
  private async loadRemote(topic: string, p: PartitionRuntime): Promise<void> {
    await this.tiering?.ensureLoaded(topic, p.partition).catch((e: unknown) => {
      this.logger.warn({ err: e, topic, partition: p.partition }, 'cannot load the tiering manifest; serving local data only');
    });
  }

  /** first readable offset: the remote log start when tiering holds the data below the local log */
  private earliestOffset(topic: string, p: PartitionRuntime): number {
    const local = p.log.logStartOffset;
    return this.tiering ? this.tiering.earliestOffset(topic, p.partition, local) : local;
  }

  private partitionLogOptions(meta: catalog.TopicMeta): Partial<LogOptions> {
    return logOptions(this.config, meta.config);
  }

  private async openTopic(meta: catalog.TopicMeta): Promise<TopicRuntime> {
    const partitions = await this.openPartitions(meta, 0, meta.partitions);
    const rt: TopicRuntime = { meta, topicId: uuidFromHex(meta.uuid), partitions, nextPartition: 0 };
    this.topics.set(meta.name, rt);
    this.registerTiering(rt, partitions);
    return rt;
  }

  /** Opens partitions [from, to) of a topic (recovery included); on failure closes what it opened. */
  private async openPartitions(meta: catalog.TopicMeta, from: number, to: number): Promise<PartitionRuntime[]> {
    const partitions: PartitionRuntime[] = [];
    try {
      for (let p = from; p < to; p++) {
        const dir = catalog.partitionDir(this.config.dataDir, meta.id, p);
        const log = await PartitionLog.open(dir, this.partitionLogOptions(meta), this.logger.child({ topic: meta.name, partition: p }));
        const producers = await loadProducerState(dir, log);
        partitions.push({ partition: p, log, highWatermark: log.durableOffset, term: Math.max(STANDALONE_MIN_TERM, log.lastTerm), producers, dir });
      }
    } catch (e) {
      await Promise.allSettled(partitions.map((p) => p.log.close()));
      throw e;
    }
    return partitions;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.adminChain.then(fn, fn);
    this.adminChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Opens topics that appeared in the data dir since start — the runbook's §6.2 imports backups with
   * `lnc import-topic --path /data/lance` while the standalone node runs; import moves a complete topic dir into
   * place atomically, so a topic.json that is there is complete. Returns the names added.
   */
  rescanCatalog(): Promise<string[]> {
    return this.serialize(async () => {
      if (this.closed) return [];
      const known = new Set([...this.topics.values()].map((t) => t.meta.id));
      const added: string[] = [];
      for (const meta of await catalog.listTopics(this.config.dataDir)) {
        if (known.has(meta.id) || this.topics.has(meta.name)) continue;
        await this.openTopic(meta);
        added.push(meta.name);
        this.logger.info({ topic: meta.name, id: meta.id, partitions: meta.partitions }, 'topic found in the data dir (e.g. lnc import-topic) and opened');
      }
      return added;
    });
  }

  // ---------------------------------------------------------------- runtime wiring

  /** Called once the Kafka listener is bound: what Metadata advertises. */
  setKafkaEndpoint(host: string, port: number): void {
    this.endpoint = { nodeId: this.nodeId, host, port, rack: null };
    this.kafkaUp = true;
  }

  setAdminEndpoint(host: string, port: number): void {
    this.adminEndpoint = { host, port };
  }

  setKafkaDown(): void {
    this.kafkaUp = false;
  }

  readiness(): { storage: boolean; kafka: boolean } {
    return { storage: !this.closed, kafka: this.kafkaUp && !this.closed };
  }

  /** Flushes and closes every partition log (fsync happens in close). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.hwEvents.emit('closed');
    await this.adminChain.catch(() => undefined);
    await this.tiering?.stop();
    await this.objectStore?.close().catch((e: unknown) => this.logger.warn({ err: e }, 'closing the object store failed'));
    // producer-state snapshots bound the log scan at the next open
    await Promise.allSettled([...this.topics.values()].flatMap((t) => t.partitions.map((p) => (p.producers && p.dir ? saveProducerState(p.dir, p.producers) : undefined))));
    const results = await Promise.allSettled([...this.topics.values()].flatMap((t) => t.partitions.map((p) => p.log.close())));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const f of failed) this.logger.error({ err: f.reason }, 'closing a partition log failed');
    this.topics.clear();
    if (failed.length) throw new LanceError('IO', `closing ${failed.length} partition log(s) failed: ${String(failed[0]!.reason)}`);
  }

  // ---------------------------------------------------------------- KafkaBackend

  brokers(): BrokerEndpoint[] {
    return [this.endpoint];
  }

  controllerId(): number {
    return this.nodeId;
  }

  isReadOnly(): boolean {
    return this.config.readOnly;
  }

  private assertWritable(what: string): void {
    if (this.config.readOnly) {
      throw new LanceError('READ_ONLY', `broker is in read-only mode (readOnly / read_only = true): ${what} refused; reads keep working`);
    }
    if (this.closed) throw new LanceError('NOT_LEADER', `broker is shutting down: ${what} refused`);
  }

  private topicMetadata(t: TopicRuntime): TopicMetadata {
    return {
      name: t.meta.name,
      topicId: t.topicId,
      isInternal: false,
      partitions: t.partitions.map((p) => ({
        partition: p.partition, leaderId: this.nodeId, leaderEpoch: p.term, replicas: [this.nodeId], isr: [this.nodeId], offlineReplicas: [],
      })),
    };
  }

  listTopics(): TopicMetadata[] {
    return [...this.topics.values()].sort((a, b) => a.meta.name.localeCompare(b.meta.name)).map((t) => this.topicMetadata(t));
  }

  getTopic(name: string): TopicMetadata | undefined {
    const t = this.topics.get(name);
    return t && this.topicMetadata(t);
  }

  getTopicById(topicId: string): TopicMetadata | undefined {
    const want = topicId.toLowerCase();
    for (const t of this.topics.values()) if (t.topicId === want) return this.topicMetadata(t);
    return undefined;
  }

  private topicConfigEntries(t: TopicRuntime): ConfigEntry[] {
    const c = t.meta.config;
    const d = this.config.storage;
    const entry = (name: string, value: string, isDefault: boolean, type: ConfigEntry['type'], documentation: string, readOnly = false): ConfigEntry => ({
      name, value, readOnly, isDefault, isSensitive: false, source: isDefault ? 'DEFAULT' : 'TOPIC', type, documentation,
    });
    const unl = (v: number): string => String(v === 0 ? -1 : v);
    return [
      entry('cleanup.policy', 'delete', true, 'LIST', 'Only "delete" (retention by time/size) is supported', true),
      entry('retention.ms', unl(c.retentionMs), c.retentionMs === d.retentionMs, 'LONG', 'Delete sealed segments older than this; -1 = unlimited'),
      entry('retention.bytes', unl(c.retentionBytes), c.retentionBytes === d.retentionBytes, 'LONG', 'Keep at most this many bytes per partition; -1 = unlimited'),
      entry('segment.bytes', String(c.segmentBytes), c.segmentBytes === d.segmentBytes, 'INT', 'Roll a segment at this size'),
      entry('segment.ms', String(c.segmentMs), c.segmentMs === d.segmentMs, 'LONG', 'Roll a segment when its first entry is this old (0 = never)'),
      entry('message.timestamp.type', 'CreateTime', true, 'STRING', 'Timestamps are the producer\'s', true),
      entry('max.message.bytes', String(this.config.maxFrameBytes), true, 'INT', 'Bounded by the broker\'s maxFrameBytes', true),
    ];
  }

  private defaultTopicConfig(): catalog.TopicConfig {
    const s = this.config.storage;
    return { retentionMs: s.retentionMs, retentionBytes: s.retentionBytes, segmentBytes: s.segmentBytes, segmentMs: s.segmentMs, replicationFactor: 1, cleanupPolicy: 'delete' };
  }

  private validateNewTopic(name: string, partitions: number): void {
    try {
      catalog.validateTopicName(name);
    } catch (e) {
      if (isLanceError(e)) throw new LanceError('INVALID_ARGUMENT', e.message, { field: 'topic', topic: name });
      throw e;
    }
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new LanceError('INVALID_ARGUMENT', `numPartitions: expected 1-10000, got ${partitions}`, { field: 'numPartitions' });
    }
    if (this.topics.has(name)) throw new LanceError('CONFLICT', `topic "${name}" already exists`, { topic: name });
  }

  private async doCreateTopic(name: string, partitions: number, patch: TopicConfigPatch): Promise<TopicRuntime> {
    this.assertWritable(`creating topic "${name}"`);
    this.validateNewTopic(name, partitions);
    const meta = await catalog.createTopic(this.config.dataDir, name, partitions, { ...this.defaultTopicConfig(), ...patch });
    const rt = await this.openTopic(meta);
    this.logger.info({ topic: name, id: meta.id, partitions }, 'topic created');
    return rt;
  }

  createTopic(req: KafkaCreateTopicRequest): Promise<CreateTopicResult> {
    return this.serialize(async () => {
      this.assertWritable(`creating topic "${req.name}"`);
      const partitions = req.numPartitions === -1 ? this.config.topics.defaultPartitions : req.numPartitions;
      if (req.replicationFactor !== -1 && req.replicationFactor !== 1) {
        throw new LanceError('INVALID_ARGUMENT', `replicationFactor: ${req.replicationFactor} is more than the 1 node of this standalone broker`, { field: 'replicationFactor' });
      }
      for (const a of req.assignments) {
        if (a.brokerIds.length !== 1 || a.brokerIds[0] !== this.nodeId) {
          throw new LanceError('INVALID_ARGUMENT', `assignments: partition ${a.partition} must be assigned to [${this.nodeId}] on a standalone broker, got [${a.brokerIds.join(', ')}]`, { field: 'assignments' });
        }
      }
      const nParts = req.assignments.length > 0 ? req.assignments.length : partitions;
      const patch = parseKafkaTopicConfigs(req.configs);
      this.validateNewTopic(req.name, nParts);
      if (req.validateOnly) {
        const cfg = { ...this.defaultTopicConfig(), ...patch };
        const fake: TopicRuntime = { meta: { id: 1, name: req.name, uuid: '0'.repeat(32), partitions: nParts, config: cfg, createdAt: '' }, topicId: uuidFromHex('0'.repeat(32)), partitions: [], nextPartition: 0 };
        return { topicId: fake.topicId, numPartitions: nParts, replicationFactor: 1, configs: this.topicConfigEntries(fake) };
      }
      const rt = await this.doCreateTopic(req.name, nParts, patch);
      return { topicId: rt.topicId, numPartitions: nParts, replicationFactor: 1, configs: this.topicConfigEntries(rt) };
    });
  }

  /**
   * Kafka auto-creation (`topics.autoCreate`): for a Metadata request that allows it and names an unknown topic.
   * Starts creating the topic with the broker defaults and returns true (the client is told LEADER_NOT_AVAILABLE
   * and retries, as with Kafka); false when auto-creation is off, the broker is read-only, or the name is invalid.
   */
  autoCreateTopic(name: string): boolean {
    if (!this.config.topics.autoCreate || this.config.readOnly || this.closed) return false;
    if (this.topics.has(name)) return true;
    try {
      catalog.validateTopicName(name);
    } catch {
      return false;
    }
    if (this.autoCreating.has(name)) return true;
    this.autoCreating.add(name);
    void this.serialize(async () => {
      if (!this.topics.has(name)) await this.doCreateTopic(name, this.config.topics.defaultPartitions, {});
    }).catch((e: unknown) => this.logger.warn({ err: e, topic: name }, 'auto-creating topic failed'))
      .finally(() => this.autoCreating.delete(name));
    return true;
  }

  /** resolves when pending auto-creations are done (tests, shutdown) */
  async settled(): Promise<void> {
    await this.adminChain.catch(() => undefined);
  }

  deleteTopic(name: string): Promise<void> {
    return this.serialize(async () => {
      await this.doDeleteTopic(name);
    });
  }

  private async doDeleteTopic(name: string): Promise<TopicRuntime> {
    this.assertWritable(`deleting topic "${name}"`);
    const t = this.topics.get(name);
    if (!t) throw notFound(name);
    this.topics.delete(name);
    for (const p of t.partitions) this.tiering?.removePartition(name, p.partition);
    await Promise.allSettled(t.partitions.map((p) => p.log.close()));
    await catalog.deleteTopic(this.config.dataDir, t.meta.id);
    for (const p of t.partitions) this.metrics?.removePartitionSeries(name, p.partition);
    this.logger.info({ topic: name, id: t.meta.id }, 'topic deleted');
    return t;
  }

  createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void> {
    return this.serialize(async () => {
      this.assertWritable(`adding partitions to "${name}"`);
      const t = this.topics.get(name);
      if (!t) throw notFound(name);
      if (!Number.isInteger(totalCount) || totalCount <= t.partitions.length) {
        throw new LanceError('INVALID_ARGUMENT', `numPartitions: topic "${name}" has ${t.partitions.length} partitions; the new count must be larger, got ${totalCount}`, { field: 'numPartitions' });
      }
      if (validateOnly) return;
      // topic.json (the new count) is written only after the new partition dirs exist: a crash keeps the old count
      const meta = await catalog.setPartitionCount(this.config.dataDir, t.meta.id, totalCount);
      const added = await this.openPartitions(meta, t.partitions.length, totalCount);
      t.partitions.push(...added);
      t.meta = meta;
      this.registerTiering(t, added);
      this.logger.info({ topic: name, partitions: totalCount }, 'partitions added');
    });
  }

  private partitionOf(topic: string, partition: number): PartitionRuntime {
    const t = this.topics.get(topic);
    if (!t) throw notFound(topic);
    const p = t.partitions[partition];
    if (!p) throw notFound(topic, partition);
    return p;
  }

  /** Appends in call order (synchronously), then waits for durability as acks asks. */
  produce(topic: string, partition: number, batches: ValidatedBatch[], acks: -1 | 0 | 1, timeoutMs: number): Promise<ProduceResult> {
    try {
      this.assertWritable(`produce to ${topic}-${partition}`);
      const p = this.partitionOf(topic, partition);
      const dup = this.checkSequences(topic, p, batches);
      if (dup !== null) {
        // a retried idempotent batch already in the log: answer with its original offset once that is durable
        const base: ProduceResult = { baseOffset: dup, logAppendTimeMs: -1, logStartOffset: p.log.logStartOffset };
        return dup < p.highWatermark || acks === 0 ? Promise.resolve(base) : p.log.flush().then(() => base);
      }
      const result = this.appendBatches(topic, p, batches);
      if (p.producers) {
        let at = result.firstOffset;
        for (const b of batches) {
          p.producers.observe(b, at);
          at += b.offsetCount;
        }
        if (p.dir) maybeSaveProducerState(p.dir, p.producers, 10_000, (e) => this.logger.warn({ err: e, topic, partition }, 'producer state snapshot failed'));
      }
      const base: ProduceResult = { baseOffset: result.firstOffset, logAppendTimeMs: -1, logStartOffset: p.log.logStartOffset };
      if (acks === 0) {
        result.durable.catch(() => undefined);
        return Promise.resolve(base);
      }
      return this.awaitDurable(result.durable, timeoutMs, `${topic}-${partition}`).then(() => base);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** high watermark of a partition, or null when unknown (consumer lag) */
  highWatermarkOf(topic: string, partition: number): number | null {
    return this.topics.get(topic)?.partitions[partition]?.highWatermark ?? null;
  }

  /** Idempotent producer rules (producer-state.ts): throws on a gap or a fenced epoch; returns the original offset of a duplicate. */
  private checkSequences(topic: string, p: PartitionRuntime, batches: ValidatedBatch[]): number | null {
    if (!p.producers) return null;
    for (let i = 0; i < batches.length; i++) {
      const d = p.producers.check(batches[i]!);
      if (d.kind === 'duplicate' && i === 0) return d.baseOffset;
      if (d.kind === 'out-of-order') throw new LanceError('INVALID_ARGUMENT', `${topic}-${p.partition}: ${d.message}`, { field: 'sequence' });
      if (d.kind === 'fenced') throw new LanceError('INVALID_ARGUMENT', `${topic}-${p.partition}: ${d.message}`, { field: 'producerEpoch' });
    }
    return null;
  }

  private appendBatches(topic: string, p: PartitionRuntime, batches: ValidatedBatch[]): { firstOffset: number; durable: Promise<void> } {
    if (batches.length === 0) throw new LanceError('INVALID_ARGUMENT', 'produce: no record batches', { field: 'records' });
    for (const b of batches) setPartitionLeaderEpoch(b.bytes, p.term);
    const res = p.log.append(batches.map((b) => ({
      type: EntryType.DATA, term: p.term, offsetCount: b.offsetCount, maxTimestamp: b.maxTimestamp, payload: b.bytes,
    })));
    const records = batches.reduce((n, b) => n + b.recordCount, 0);
    this.metrics?.recordsIn.inc({ topic }, records);
    const started = performance.now();
    const durable = res.durable.then(() => {
      this.metrics?.fsyncDuration.observe((performance.now() - started) / 1000);
      this.advanceHighWatermark(topic, p);
    });
    durable.catch((e: unknown) => this.logger.error({ err: e, topic, partition: p.partition }, 'fsync failed'));
    return { firstOffset: res.firstOffset, durable };
  }

  private advanceHighWatermark(topic: string, p: PartitionRuntime): void {
    const hw = p.log.durableOffset;
    if (hw > p.highWatermark) {
      p.highWatermark = hw;
      this.hwEvents.emit('hw', topic, p.partition, hw);
    }
  }

  private awaitDurable(durable: Promise<void>, timeoutMs: number, what: string): Promise<void> {
    if (timeoutMs <= 0) return durable;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LanceError('TIMEOUT', `${what}: not durable within ${timeoutMs} ms`)), timeoutMs);
      durable.then(() => { clearTimeout(timer); resolve(); }, (e: unknown) => { clearTimeout(timer); reject(e); });
    });
  }

  async fetch(topic: string, partition: number, offset: number, maxBytes: number): Promise<FetchResult> {
    const p = this.partitionOf(topic, partition);
    const hw = p.highWatermark;
    if (this.tiering && offset < p.log.logStartOffset) await this.loadRemote(topic, p);
    const logStartOffset = this.earliestOffset(topic, p);
    if (offset < logStartOffset || offset > hw) {
      throw new LanceError('OFFSET_OUT_OF_RANGE', `${topic}-${partition}: offset ${offset} is outside ${logStartOffset}..${hw}`, { offset, logStartOffset, highWatermark: hw });
    }
    const base = { highWatermark: hw, lastStableOffset: hw, logStartOffset };
    if (offset === hw) return { ...base, records: Buffer.alloc(0) };
    return { ...base, records: await readCommittedBatches((from, max) => this.readEntries(topic, p, from, max), offset, hw, maxBytes) };
  }

  /**
   * Whole entries from `from`: local, or (tiering) from the remote segment holding it when it is below the local log
   * start — also when local retention deleted the segment between the check and the read.
   */
  private async readEntries(topic: string, p: PartitionRuntime, from: number, maxBytes: number) {
    if (this.tiering && from < p.log.logStartOffset) return this.tiering.read(topic, p.partition, from, maxBytes);
    try {
      return await p.log.read(from, maxBytes);
    } catch (e) {
      if (this.tiering && isLanceError(e) && e.code === 'OFFSET_OUT_OF_RANGE' && from < p.log.logStartOffset) {
        return this.tiering.read(topic, p.partition, from, maxBytes);
      }
      throw e;
    }
  }

  /** fetches currently waiting for data (admin long polls) */
  pendingWaits(): number {
    return this.waiting;
  }

  onHighWatermark(listener: (topic: string, partition: number, highWatermark: number) => void): () => void {
    this.hwEvents.on('hw', listener);
    return () => this.hwEvents.off('hw', listener);
  }

  /** Resolves when the partition's HW passes `offset`, `waitMs` elapses, the signal aborts or the broker closes. */
  waitForData(topic: string, partition: number, offset: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    const p = this.partitionOf(topic, partition);
    if (p.highWatermark > offset || waitMs <= 0 || signal?.aborted) return Promise.resolve();
    this.waiting++;
    return new Promise<void>((resolve) => {
      let finished = false;
      const done = (): void => {
        if (finished) return;
        finished = true;
        this.waiting--;
        clearTimeout(timer);
        this.hwEvents.off('hw', onHw);
        this.hwEvents.off('closed', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const onHw = (t: string, part: number, hw: number): void => {
        if (t === topic && part === partition && hw > offset) done();
      };
      const timer = setTimeout(done, waitMs);
      this.hwEvents.on('hw', onHw);
      this.hwEvents.on('closed', done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async listOffsets(topic: string, partition: number, timestamp: number): Promise<ListOffsetResult> {
    const p = this.partitionOf(topic, partition);
    if (timestamp === ListOffsetsTimestamp.EARLIEST && this.tiering) await this.loadRemote(topic, p);
    if (timestamp === ListOffsetsTimestamp.EARLIEST) return { offset: this.earliestOffset(topic, p), timestamp: -1, leaderEpoch: p.term };
    if (timestamp === ListOffsetsTimestamp.LATEST) return { offset: p.highWatermark, timestamp: -1, leaderEpoch: p.term };
    if (timestamp === ListOffsetsTimestamp.MAX_TIMESTAMP) return this.maxTimestampOffset(p);
    if (timestamp < 0) throw new LanceError('INVALID_ARGUMENT', `timestamp: ${timestamp} is not a valid ListOffsets timestamp`, { field: 'timestamp' });
    const found = await p.log.offsetForTimestamp(timestamp);
    if (found === null || found.offset >= p.highWatermark) return { offset: -1, timestamp: -1, leaderEpoch: p.term };
    return { offset: Math.max(found.offset, p.log.logStartOffset), timestamp: found.timestamp, leaderEpoch: p.term };
  }

  /** The last offset of the committed batch with the largest max timestamp (batch granularity). */
  private async maxTimestampOffset(p: PartitionRuntime): Promise<ListOffsetResult> {
    let best: ListOffsetResult = { offset: -1, timestamp: -1, leaderEpoch: p.term };
    const segs = p.log.segments().filter((s) => s.maxTimestamp >= 0);
    if (segs.length === 0) return best;
    const seg = segs.reduce((a, b) => (b.maxTimestamp >= a.maxTimestamp ? b : a));
    let from = Math.max(seg.baseOffset, p.log.logStartOffset);
    while (from < Math.min(seg.lastOffset + 1, p.highWatermark)) {
      const entries = await p.log.read(from, 1024 * 1024);
      if (entries.length === 0) break;
      for (const e of entries) {
        const end = e.firstOffset + e.offsetCount;
        if (end > p.highWatermark) return best;
        if (e.type === EntryType.DATA && e.offsetCount > 0 && e.maxTimestamp >= best.timestamp) best = { offset: end - 1, timestamp: e.maxTimestamp, leaderEpoch: p.term };
        from = Math.max(from, end);
      }
    }
    return best;
  }

  async describeTopicConfigs(topic: string): Promise<ConfigEntry[]> {
    const t = this.topics.get(topic);
    if (!t) throw notFound(topic);
    return this.topicConfigEntries(t);
  }

  async describeBrokerConfigs(): Promise<ConfigEntry[]> {
    const s = this.config.storage;
    const e = (name: string, value: string, type: ConfigEntry['type']): ConfigEntry => ({
      name, value, readOnly: true, isDefault: false, isSensitive: false, source: 'STATIC_BROKER', type, documentation: null,
    });
    return [
      e('broker.id', String(this.nodeId), 'INT'),
      e('log.retention.ms', String(s.retentionMs === 0 ? -1 : s.retentionMs), 'LONG'),
      e('log.retention.bytes', String(s.retentionBytes === 0 ? -1 : s.retentionBytes), 'LONG'),
      e('log.segment.bytes', String(s.segmentBytes), 'INT'),
      e('log.roll.ms', String(s.segmentMs), 'LONG'),
      e('num.partitions', String(this.config.topics.defaultPartitions), 'INT'),
      e('auto.create.topics.enable', String(this.config.topics.autoCreate), 'BOOLEAN'),
      e('socket.request.max.bytes', String(this.config.maxFrameBytes), 'INT'),
      e('read.only', String(this.config.readOnly), 'BOOLEAN'),
    ];
  }

  alterTopicConfigs(topic: string, configs: Record<string, string | null>, validateOnly: boolean): Promise<void> {
    return this.serialize(async () => {
      this.assertWritable(`altering configs of "${topic}"`);
      const t = this.topics.get(topic);
      if (!t) throw notFound(topic);
      const patch = parseKafkaTopicConfigs(configs);
      // Non-incremental AlterConfigs: keys not given revert to the broker defaults.
      const d = this.defaultTopicConfig();
      const next = { retentionMs: d.retentionMs, retentionBytes: d.retentionBytes, segmentBytes: d.segmentBytes, segmentMs: d.segmentMs, ...patch };
      if (validateOnly) return;
      t.meta = await catalog.updateTopicConfig(this.config.dataDir, t.meta.id, next);
      for (const p of t.partitions) applyLogOptions(p.log, this.partitionLogOptions(t.meta));
      this.logger.info({ topic, config: next }, 'topic config altered');
    });
  }

  // ---------------------------------------------------------------- retention

  /** One retention pass over every partition (0 = unlimited, so those are skipped by the log). */
  async enforceRetention(): Promise<number> {
    let deleted = 0;
    for (const t of [...this.topics.values()]) {
      for (const p of t.partitions) {
        if (this.closed) return deleted;
        if (this.topics.get(t.meta.name) !== t) break;
        let removed;
        try {
          // with tiering, a segment goes only after its verified upload is in the manifest
          removed = await p.log.enforceRetention(this.tiering?.canDelete(t.meta.name, p.partition));
          // Workaround (storage bug, reported): an append that lands while enforceRetention's internal flush runs
          // its no-window fsync never gets its own sync scheduled, so its `durable` would wait for the NEXT
          // append. A flush right after picks such a window up.
          await p.log.flush();
        } catch (e) {
          // a topic deleted (log closed) under this pass is not an error; anything else is logged, others go on
          if (this.closed || this.topics.get(t.meta.name) !== t) break;
          this.logger.error({ err: e, topic: t.meta.name, partition: p.partition }, 'retention failed for a partition');
          continue;
        }
        if (removed.length > 0) {
          deleted += removed.length;
          this.metrics?.retentionDeletedSegments.inc({ topic: t.meta.name }, removed.length);
          this.logger.info({ topic: t.meta.name, partition: p.partition, segments: removed.length, logStartOffset: p.log.logStartOffset }, 'retention deleted segments');
        }
      }
    }
    return deleted;
  }

  // ---------------------------------------------------------------- admin service

  private partitionStates(t: TopicRuntime): PartitionState[] {
    return t.partitions.map((p) => {
      const segs = p.log.segments();
      return {
        partition: p.partition, leader: this.nodeId, logStartOffset: p.log.logStartOffset, logEndOffset: p.log.nextOffset,
        highWatermark: p.highWatermark, sizeBytes: segs.reduce((n, s) => n + s.sizeBytes, 0), segments: segs.length,
      };
    });
  }

  private summary(t: TopicRuntime): TopicSummary {
    return {
      id: t.meta.id, name: t.meta.name, partitions: t.meta.partitions, topicId: t.topicId,
      config: { retentionMs: t.meta.config.retentionMs, retentionBytes: t.meta.config.retentionBytes, segmentBytes: t.meta.config.segmentBytes },
    };
  }

  async adminListTopics(): Promise<TopicSummary[]> {
    await this.rescanCatalog();
    return [...this.topics.values()].sort((a, b) => a.meta.id - b.meta.id).map((t) => this.summary(t));
  }

  /** A topic by name; an unknown name first triggers a catalog rescan (a topic imported a moment ago). */
  private async topicForAdmin(name: string): Promise<TopicRuntime> {
    let t = this.topics.get(name);
    if (!t) {
      await this.rescanCatalog();
      t = this.topics.get(name);
    }
    if (!t) throw notFound(name);
    return t;
  }

  async adminGetTopic(name: string): Promise<TopicDetail> {
    const t = await this.topicForAdmin(name);
    return { ...this.summary(t), partitionStates: this.partitionStates(t) };
  }

  adminCreateTopic(req: CreateTopicRequest): Promise<TopicSummary> {
    return this.serialize(async () => {
      const partitions = req.partitions ?? this.config.topics.defaultPartitions;
      return this.summary(await this.doCreateTopic(req.name, partitions, req.config ?? {}));
    });
  }

  adminDeleteTopic(name: string): Promise<{ deleted: string; id: number }> {
    return this.serialize(async () => {
      const t = await this.doDeleteTopic(name);
      return { deleted: name, id: t.meta.id };
    });
  }

  async clusterView(): Promise<ClusterView> {
    await this.rescanCatalog();
    return {
      clusterId: this.clusterId, nodeId: this.nodeId, role: 'standalone', readOnly: this.config.readOnly, version: this.version,
      startedAt: this.startedAt,
      listeners: { kafka: { host: this.endpoint.host, port: this.endpoint.port }, admin: this.adminEndpoint },
      brokers: [{ nodeId: this.nodeId, host: this.endpoint.host, port: this.endpoint.port }],
      topics: [...this.topics.values()].sort((a, b) => a.meta.id - b.meta.id).map((t) => ({ id: t.meta.id, name: t.meta.name, topicId: t.topicId, partitions: this.partitionStates(t) })),
    };
  }

  /** Admin produce: groups records per partition, one batch per partition, answered after fsync. */
  async adminProduce(topic: string, req: ProduceRequest): Promise<ProduceResponse> {
    this.assertWritable(`produce to ${topic}`);
    const t = await this.topicForAdmin(topic);
    const enc = req.encoding ?? 'utf8';
    const buf = (s: string | null | undefined): Buffer | null => (s === null || s === undefined ? null : Buffer.from(s, enc));
    const now = Date.now();
    const byPartition = new Map<number, SimpleRecord[]>();
    req.records.forEach((r, i) => {
      const key = buf(r.key);
      let partition: number;
      if (r.partition !== undefined) {
        if (r.partition >= t.partitions.length) throw new LanceError('INVALID_ARGUMENT', `records.${i}.partition: topic "${topic}" has partitions 0-${t.partitions.length - 1}, got ${r.partition}`, { field: `records.${i}.partition` });
        partition = r.partition;
      } else if (key !== null) {
        partition = partitionForKey(key, t.partitions.length);
      } else {
        partition = t.nextPartition++ % t.partitions.length;
      }
      const headers = Object.entries(r.headers ?? {}).map(([k, v]) => ({ key: k, value: Buffer.from(v, enc) }));
      const list = byPartition.get(partition) ?? [];
      list.push({ key, value: buf(r.value), headers, timestamp: r.timestamp ?? now });
      byPartition.set(partition, list);
    });
    const pending = [...byPartition.entries()].sort((a, b) => a[0] - b[0]).map(([partition, records]) => {
      const p = t.partitions[partition]!;
      const { firstOffset, durable } = this.appendBatches(topic, p, [encodeRecordBatch(records)]);
      return { partition, baseOffset: firstOffset, count: records.length, durable };
    });
    await Promise.all(pending.map((x) => x.durable));
    return { topic, partitions: pending.map(({ partition, baseOffset, count }) => ({ partition, baseOffset, count })) };
  }

  /** Admin fetch: decoded records from `offset` (default: log start), optionally waiting for data. */
  async adminFetch(topic: string, partition: number, q: FetchQuery, signal: AbortSignal): Promise<FetchResponse> {
    await this.topicForAdmin(topic);
    const p = this.partitionOf(topic, partition);
    if (q.offset === undefined && this.tiering) await this.loadRemote(topic, p);
    const offset = q.offset ?? this.earliestOffset(topic, p);
    if (q.waitMs > 0) await this.waitForData(topic, partition, offset, q.waitMs, signal);
    const r = await this.fetch(topic, partition, offset, q.maxBytes);
    const records: ConsumedRecord[] = [];
    let next = offset;
    for (const rec of decodeRecordBatches(r.records)) {
      if (rec.offset < offset) continue;
      if (records.length >= q.max) break;
      records.push({
        offset: rec.offset, timestamp: rec.timestamp, key: rec.key?.toString(q.encoding) ?? null, value: rec.value?.toString(q.encoding) ?? null,
        headers: Object.fromEntries(rec.headers.map((h) => [h.key, h.value?.toString(q.encoding) ?? ''])),
      });
      next = rec.offset + 1;
    }
    // Nothing decodable (e.g. only control batches) but data was read: skip past what was read.
    if (records.length === 0 && r.records.length > 0) next = Math.min(r.highWatermark, nextOffsetAfter(r.records, offset));
    return { topic, partition, encoding: q.encoding, logStartOffset: r.logStartOffset, highWatermark: r.highWatermark, nextOffset: Math.max(next, offset), records };
  }

  /** Refreshes per-partition gauges (called right before a /metrics scrape). */
  updateGauges(): void {
    if (!this.metrics) return;
    for (const t of this.topics.values()) {
      for (const p of t.partitions) {
        const labels = { topic: t.meta.name, partition: String(p.partition) };
        this.metrics.logEndOffset.set(labels, p.log.nextOffset);
        this.metrics.logStartOffset.set(labels, p.log.logStartOffset);
        this.metrics.highWatermark.set(labels, p.highWatermark);
      }
    }
  }
}

/**
 * Applies changed topic settings to an open log. PartitionLog has no setter yet; its `options` object is its own
 * copy (built in open()) and is read on every roll/retention decision, so updating it in place takes effect at once.
 */
function applyLogOptions(log: PartitionLog, next: Partial<LogOptions>): void {
  if (next.segmentBytes !== undefined) log.options.segmentBytes = next.segmentBytes;
  if (next.segmentMs !== undefined) log.options.segmentMs = next.segmentMs;
  if (next.retention) Object.assign(log.options.retention, next.retention);
}

/** The offset after the last batch in concatenated batch bytes (baseOffset + lastOffsetDelta + 1). */
function nextOffsetAfter(batches: Buffer, fallback: number): number {
  let pos = 0;
  let next = fallback;
  while (pos + 27 <= batches.length) {
    const base = Number(batches.readBigInt64BE(pos));
    const len = batches.readInt32BE(pos + 8);
    next = base + batches.readInt32BE(pos + 23) + 1;
    pos += 12 + len;
  }
  return next;
}
