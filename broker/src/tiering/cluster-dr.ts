/**
 * Tiering and metadata DR in cluster mode (wired by broker/src/server/cluster-runtime.ts):
 *  - every replica of a partition is registered with TieredStorage, but only the LEADER uploads (`active()`);
 *    keys and manifests carry the leader's Raft term, so a deposed leader never overwrites its successor's objects,
 *    and a new leader with other segment boundaries takes over the remote log (TieredStorage planTakeover);
 *    local retention stays with the cluster's own retention (Raft needs the log), tiering only uploads;
 *  - the controller (leader of `__meta`, with a complete applied state) writes the restore points: topics with
 *    ids/configs/assignments, consumer groups + offsets and the producer-id block limit from the metadata state,
 *    per-partition high watermarks and manifests where this node holds a replica.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.ts';
import type { MetadataState } from '../cluster/metadata.ts';
import { snapshotOf } from '../groups/commands.ts';
import type { PartitionLog } from '../storage/partition-log.ts';
import type { SegmentInfo } from '../storage/types.ts';
import { createObjectStore, type ObjectStoreConfig } from './config.ts';
import { manifestKey } from './manifest.ts';
import { DR_FORMAT, DrMetrics, type MetadataSnapshot, type SnapshotPartition } from './metadata-dr.ts';
import { TieringMetrics } from './metrics.ts';
import type { ObjectStore } from './object-store.ts';
import { startMetadataDr, type RunningDr } from './standalone-dr.ts';
import { loadNewestManifest } from './restore.ts';
import { TieredStorage } from './tiered-storage.ts';

/** One partition replica on this node, read live (ClusterBroker.tieringReplicas()). */
export interface ReplicaView {
  topic: string;
  /** Kafka topic id (UUID string) */
  topicId: string;
  partition: number;
  log(): PartitionLog;
  term(): number;
  leading(): boolean;
  hw(): number;
  retention(): { retentionMs: number; retentionBytes: number };
}

export interface ClusterDrSource {
  tieringReplicas(): ReplicaView[];
  /** cluster retention asks this before deleting a replica's segment (undefined = no constraint) */
  setRetentionGuard?(fn: (topic: string, partition: number) => ((s: SegmentInfo) => boolean) | undefined): void;
  metadataState(): Readonly<MetadataState>;
  controllerReadyTerm(): number | null;
}

export interface ClusterTiering {
  tiering: TieredStorage;
  dr: RunningDr | undefined;
  stop(): Promise<void>;
}

/** The controller's metadata snapshot; null on any other node (or before its applied state is complete). */
export async function collectClusterSnapshot(src: ClusterDrSource, tiering: TieredStorage | undefined, ids: { clusterId: string; nodeId: number }, store?: ObjectStore, now = Date.now()): Promise<MetadataSnapshot | null> {
  const metaTerm = src.controllerReadyTerm();
  if (metaTerm === null) return null;
  const meta = src.metadataState();
  const replicas = new Map(src.tieringReplicas().map((r) => [`${r.topic}\u0000${r.partition}`, r]));
  const partitions: SnapshotPartition[] = [];
  const topics: MetadataSnapshot['topics'] = [];
  for (const t of Object.values(meta.topics)) {
    for (let p = 0; p < t.assignment.length; p++) {
      const r = replicas.get(`${t.name}\u0000${p}`);
      // partitions led elsewhere (or without a replica here): their leader's newest manifest from the bucket. Every
      // partition is listed: a multi-node cold start restores exactly the manifests a restore point names
      const m = (r ? tiering?.manifest(t.name, p) : null) ?? (store ? (await loadNewestManifest(store, { clusterId: ids.clusterId, topicId: t.topicId, partition: p }).catch(() => null))?.manifest ?? null : null);
      const last = m?.segments.at(-1);
      const remoteEnd = last ? last.lastOffset + 1 : (m?.remoteLogStartOffset ?? 0);
      partitions.push({
        topic: t.name, partition: p, highWatermark: r ? r.hw() : remoteEnd, logStartOffset: r ? r.log().logStartOffset : (m?.remoteLogStartOffset ?? 0),
        remoteEnd,
        manifestKey: m && m.version > 0 ? manifestKey({ clusterId: ids.clusterId, topicId: t.topicId, partition: p }, m.term, m.version) : null,
        remoteBytes: m ? m.segments.reduce((n, s) => n + s.data.size, 0) : 0,
      });
    }
    topics.push({ name: t.name, id: t.id, topicId: t.topicId, partitions: t.assignment.length, config: { ...t.config }, replicationFactor: t.rf, assignment: t.assignment.map((a) => [...a]) });
  }
  const groups = snapshotOf(meta.groups).groups.map((g) => ({
    groupId: g.groupId, protocolType: g.protocolType, generation: g.generation,
    offsets: g.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata, commitTimestamp: o.commitTimestamp })),
  }));
  return {
    format: DR_FORMAT, clusterId: ids.clusterId, mode: 'cluster', node: ids.nodeId, takenAt: new Date(now).toISOString(), takenAtMs: now,
    topics, partitions, groups, producerIdNext: meta.nextProducerId,
    // the replicated state as of takenAt (groups are above in the common form); metaTerm: the controller's term
    // (a cold start writes its restore entry in it, cluster-restore.ts)
    clusterMetadata: { applied: meta.applied, nextTopicId: meta.nextTopicId, topics: meta.topics, brokers: meta.brokers, removed: meta.removed ?? [], metaTerm },
  };
}

export function startClusterTiering(opts: {
  source: ClusterDrSource; storeConfig: ObjectStoreConfig; clusterId: string; nodeId: number; logger: Logger; registry: Registry;
  uploadIntervalMs: number; cacheBytes: number; dr: { enabled: boolean; intervalMs: number; retentionMs: number };
}): ClusterTiering {
  const tm = new TieringMetrics(opts.registry);
  const store: ObjectStore = createObjectStore(opts.storeConfig, { log: opts.logger.child({ component: 'object-store' }), hooks: tm.storeHooks() });
  const tiering = new TieredStorage({
    store, nodeId: opts.nodeId, logger: opts.logger, metrics: tm,
    // local deletion stays with the cluster's retention (the Raft log needs its segments)
    settings: { uploadIntervalMs: opts.uploadIntervalMs, localRetentionMs: 0, localRetentionBytes: 0, cacheBytes: opts.cacheBytes },
  });
  const registered = new Map<string, string>(); // `${topic}\0${partition}` → topicId
  const sync = (): void => {
    const seen = new Set<string>();
    for (const r of opts.source.tieringReplicas()) {
      const key = `${r.topic}\u0000${r.partition}`;
      seen.add(key);
      if (registered.get(key) === r.topicId) continue;
      if (registered.has(key)) tiering.removePartition(r.topic, r.partition);
      tiering.addPartition({
        topic: r.topic, ref: { clusterId: opts.clusterId, topicId: r.topicId, partition: r.partition },
        // the replica's PartitionLog object is replaced by a segment-transfer install: always read it anew
        get log() { return r.log(); },
        term: r.term, highWatermark: r.hw, remoteRetention: r.retention, active: r.leading,
      });
      registered.set(key, r.topicId);
    }
    for (const key of [...registered.keys()]) {
      if (seen.has(key)) continue;
      const i = key.lastIndexOf('\u0000');
      tiering.removePartition(key.slice(0, i), Number(key.slice(i + 1)));
      registered.delete(key);
    }
  };
  sync();
  // a leader's retention deletes only segments whose verified upload is in its manifest (followers: topic retention)
  opts.source.setRetentionGuard?.((topic, partition) => {
    const r = opts.source.tieringReplicas().find((x) => x.topic === topic && x.partition === partition);
    return r?.leading() ? tiering.canDelete(topic, partition) : undefined;
  });
  const timer = setInterval(sync, 1000);
  timer.unref();
  tiering.start();
  opts.logger.info({ objectStore: store.url, uploadIntervalMs: opts.uploadIntervalMs }, 'tiered segments on (cluster mode: partition leaders upload)');
  const drMetrics = opts.dr.enabled ? new DrMetrics(opts.registry) : undefined;
  const dr = opts.dr.enabled
    ? startMetadataDr({
      storeConfig: opts.storeConfig, registry: opts.registry, logger: opts.logger, clusterId: opts.clusterId, nodeId: opts.nodeId,
      intervalMs: opts.dr.intervalMs, retentionMs: opts.dr.retentionMs, ...(drMetrics ? { metrics: drMetrics } : {}),
      collect: () => collectClusterSnapshot(opts.source, tiering, { clusterId: opts.clusterId, nodeId: opts.nodeId }, store),
    })
    : undefined;
  return {
    tiering, dr,
    async stop() {
      clearInterval(timer);
      await dr?.stop();
      await tiering.stop();
      await store.close().catch(() => undefined);
    },
  };
}
