/**
 * Metadata DR for the standalone broker: what goes into its metadata snapshot (collectStandaloneSnapshot), the
 * uploader wiring (startStandaloneDr), and cold-start recovery (coldStartRestore), all called from
 * broker/src/server/runtime.ts. Cluster mode has its own collector (the controller's metadata state).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Registry } from 'prom-client';
import { LanceError, isLanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import * as catalog from '../storage/catalog.ts';
import { createObjectStore, type ObjectStoreConfig } from './config.ts';
import { manifestKey, type Manifest } from './manifest.ts';
import { DR_FORMAT, DrMetrics, MetadataUploader, type MetadataSnapshot, type SnapshotGroup, type SnapshotPartition } from './metadata-dr.ts';
import type { ObjectStore } from './object-store.ts';
import { RESTORE_MARKER, dataDirIsFresh, restoreDataDir, type RestoreReport } from './restore.ts';

/** What the collector needs from the running standalone broker (LocalBroker + GroupService satisfy it). */
export interface StandaloneDrSource {
  dataDir: string;
  clusterId: string;
  nodeId: number;
  highWatermarkOf(topic: string, partition: number): number | null;
  /** the tiering manifest this node knows for a partition (null before the first pass) */
  manifest(topic: string, partition: number): Manifest | null;
  logStartOffset(topic: string, partition: number): Promise<number>;
  groups(): Array<{ groupId: string; protocolType: string; generation: number; offsets: Array<{ topic: string; partition: number; offset: number; metadata: string }> }>;
  now?: () => number;
}

const uuidFromHex = (hex: string): string => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;

async function readProducerIdNext(dataDir: string): Promise<number> {
  try {
    const raw = JSON.parse(await fsp.readFile(path.join(dataDir, 'producer-ids.json'), 'utf8')) as { next?: unknown };
    return typeof raw.next === 'number' && Number.isSafeInteger(raw.next) && raw.next >= 0 ? raw.next : 0;
  } catch {
    return 0;
  }
}

export async function collectStandaloneSnapshot(src: StandaloneDrSource): Promise<MetadataSnapshot> {
  const now = (src.now ?? Date.now)();
  const metas = await catalog.listTopics(src.dataDir);
  const partitions: SnapshotPartition[] = [];
  const topics = [];
  for (const m of metas) {
    const topicId = uuidFromHex(m.uuid);
    for (let p = 0; p < m.partitions; p++) {
      const hw = src.highWatermarkOf(m.name, p);
      if (hw === null) continue; // not open (yet): a topic being created or imported
      const man = src.manifest(m.name, p);
      const last = man?.segments.at(-1);
      partitions.push({
        topic: m.name, partition: p, highWatermark: hw, logStartOffset: await src.logStartOffset(m.name, p).catch(() => 0),
        remoteEnd: last ? last.lastOffset + 1 : (man?.remoteLogStartOffset ?? 0),
        manifestKey: man && man.version > 0 ? manifestKey({ clusterId: src.clusterId, topicId, partition: p }, man.term, man.version) : null,
        remoteBytes: man ? man.segments.reduce((n, s) => n + s.data.size, 0) : 0,
      });
    }
    topics.push({ name: m.name, id: m.id, topicId, partitions: m.partitions, config: { ...m.config }, createdAt: m.createdAt });
  }
  const groups: SnapshotGroup[] = src.groups().map((g) => ({
    groupId: g.groupId, protocolType: g.protocolType, generation: g.generation,
    offsets: g.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1, metadata: o.metadata, commitTimestamp: now })),
  }));
  return {
    format: DR_FORMAT, clusterId: src.clusterId, mode: 'standalone', node: src.nodeId, takenAt: new Date(now).toISOString(), takenAtMs: now,
    topics, partitions, groups, producerIdNext: await readProducerIdNext(src.dataDir),
  };
}

/** Metadata DR settings: the config's tiering.* keys, with the seed's CHRONIK_* names as fallbacks. */
export function drSettings(t: { metadataUploadIntervalMs: number; metadataDr: boolean; restorePointRetentionMs: number }, env: Record<string, string | undefined>): { enabled: boolean; intervalMs: number; retentionMs: number } {
  let intervalMs = t.metadataUploadIntervalMs;
  const chronik = env.CHRONIK_METADATA_UPLOAD_INTERVAL;
  if (env.LANCE_METADATA_UPLOAD_INTERVAL_MS === undefined && chronik !== undefined && chronik !== '') {
    if (!/^\d+$/.test(chronik.trim()) || Number(chronik) < 1) {
      throw new LanceError('INVALID_CONFIG', `CHRONIK_METADATA_UPLOAD_INTERVAL: expected a positive number of seconds, got ${JSON.stringify(chronik)}`, { key: 'tiering.metadataUploadIntervalMs', env: 'CHRONIK_METADATA_UPLOAD_INTERVAL' });
    }
    intervalMs = Number(chronik) * 1000;
  }
  const off = ['false', '0', 'no', 'off'].includes((env.CHRONIK_METADATA_DR ?? '').trim().toLowerCase());
  return { enabled: t.metadataDr && !off, intervalMs, retentionMs: t.restorePointRetentionMs };
}

export interface RunningDr {
  uploader: MetadataUploader;
  store: ObjectStore;
  metrics: DrMetrics;
  stop(): Promise<void>;
}

export function startMetadataDr(opts: {
  storeConfig: ObjectStoreConfig; registry: Registry; logger: Logger; clusterId: string; nodeId: number;
  intervalMs: number; retentionMs: number; metrics?: DrMetrics; collect(): Promise<MetadataSnapshot | null>;
}): RunningDr {
  const store = createObjectStore(opts.storeConfig, { log: opts.logger.child({ component: 'object-store' }) });
  const metrics = opts.metrics ?? new DrMetrics(opts.registry);
  const uploader = new MetadataUploader({
    store, clusterId: opts.clusterId, nodeId: opts.nodeId, logger: opts.logger, intervalMs: opts.intervalMs, retentionMs: opts.retentionMs,
    collect: opts.collect, metrics,
  });
  uploader.start();
  opts.logger.info({ objectStore: store.url, intervalMs: opts.intervalMs }, 'metadata DR on: restore points every interval');
  return {
    uploader, store, metrics,
    async stop() {
      await uploader.stop();
      await store.close().catch(() => undefined);
    },
  };
}

/**
 * Cold start: a fresh data dir + an object store with a restore point → restore it before the broker opens.
 * Returns the report, or null when there was nothing to restore (empty bucket: the broker starts empty). A data
 * dir holding an interrupted restore's marker is restored again (or refused when there is no object store).
 */
export async function coldStartRestore(opts: {
  dataDir: string; storeConfig: ObjectStoreConfig | undefined; enabled: boolean; clusterId: string | undefined; nodeId: number; logger: Logger; metrics?: DrMetrics;
}): Promise<RestoreReport | null> {
  const marker = path.join(opts.dataDir, RESTORE_MARKER);
  const interrupted = await fsp.stat(marker).then(() => true, () => false);
  if (!opts.storeConfig || !opts.enabled || !(interrupted || (await dataDirIsFresh(opts.dataDir)))) {
    if (interrupted) {
      throw new LanceError('CONFLICT', `${marker}: a restore into this data dir did not finish; run lnc restore again (or configure the object store for cold-start recovery)`, { path: marker });
    }
    return null;
  }
  // client-side delimiter listing: correct on every endpoint (finding the cluster ids must not depend on the server's)
  const store = createObjectStore({ ...opts.storeConfig, listDelimiter: 'client' }, { log: opts.logger.child({ component: 'object-store' }) });
  const t0 = Date.now();
  try {
    opts.logger.info({ objectStore: store.url, dataDir: opts.dataDir, interrupted }, 'cold start: empty data dir, looking for a restore point');
    const report = await restoreDataDir({
      store, dataDir: opts.dataDir, nodeId: opts.nodeId, logger: opts.logger,
      ...(opts.clusterId !== undefined ? { clusterId: opts.clusterId } : {}),
    });
    const secs = (Date.now() - t0) / 1000;
    opts.metrics?.recoverySeconds.set(secs);
    opts.logger.info({
      restorePoint: report.restorePoint.key, takenAt: report.restorePoint.takenAt, topics: report.topics.map((t) => t.name),
      partitions: report.partitions.length, groups: report.groups.length, bytes: report.bytes, durationSeconds: secs, warnings: report.warnings,
    }, `cold start: restored ${report.topics.length} topic(s), ${report.groups.length} group(s), ${report.bytes} bytes from ${store.url} in ${secs.toFixed(1)} s`);
    return report;
  } catch (e) {
    if (isLanceError(e, 'NOT_FOUND') && /no restore point/.test(e.message) && !interrupted) {
      opts.logger.info({ objectStore: store.url }, 'cold start: no restore point in the object store; starting empty');
      return null;
    }
    throw e;
  } finally {
    await store.close().catch(() => undefined);
  }
}
