/**
 * Metadata disaster recovery: restore points in the object store.
 *
 * Every `metadataUploadIntervalMs` the node that owns the metadata (standalone: the broker; cluster: the controller)
 * uploads a snapshot of everything that is not in the partition logs (topics with ids/configs/assignments, consumer
 * groups and committed offsets, the producer-id high-water mark, per-partition high watermarks and tiered-manifest
 * pointers), then writes the restore point LAST:
 *
 *   clusters/<clusterId>/restore-points/<takenAtMs 20d>-<node 10d>/snapshot.json       (MetadataSnapshot)
 *   clusters/<clusterId>/restore-points/<takenAtMs 20d>-<node 10d>/restore-point.json  (RestorePoint, written last)
 *
 * A reader only trusts directories holding restore-point.json, so a crash between the two writes leaves an
 * invisible orphan (pruned later). Keys list in time order (fixed-width time first); the node id in the key makes
 * every key single-writer (no conditional PUTs needed: two controllers in a leadership change write different
 * keys). The snapshot is the whole metadata state (it is small), so no metadata-log tail has to be replayed: the
 * snapshot taken at time T IS the state at T. Both objects are uploaded with putVerified (size + CRC32C); the
 * restore point also carries the snapshot's size and CRC32C, so a restore never uses a damaged snapshot.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { LanceError, isLanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { crc32cHex } from './body.ts';
import type { ObjectStore } from './object-store.ts';

export const DR_FORMAT = 1;

const pad20 = (n: number): string => String(n).padStart(20, '0');
const pad10 = (n: number): string => String(n).padStart(10, '0');

export function restorePointsPrefix(clusterId: string): string {
  return `clusters/${clusterId}/restore-points/`;
}

/** The "directory" of one restore point: `clusters/<cid>/restore-points/<ms 20d>-<node 10d>/`. */
export function restorePointDir(clusterId: string, takenAtMs: number, node: number): string {
  return `${restorePointsPrefix(clusterId)}${pad20(takenAtMs)}-${pad10(node)}/`;
}

export const RESTORE_POINT_FILE = 'restore-point.json';
export const SNAPSHOT_FILE = 'snapshot.json';

const RP_KEY_RE = /^clusters\/([^/]+)\/restore-points\/(\d{20})-(\d{10})\/(restore-point|snapshot)\.json$/;

/** Parses a restore-point or snapshot key (null for any other key). */
export function parseRestorePointKey(key: string): { clusterId: string; takenAtMs: number; node: number; file: 'restore-point' | 'snapshot'; dir: string } | null {
  const m = RP_KEY_RE.exec(key);
  if (!m) return null;
  return { clusterId: m[1]!, takenAtMs: Number(m[2]), node: Number(m[3]), file: m[4] as 'restore-point' | 'snapshot', dir: key.slice(0, key.lastIndexOf('/') + 1) };
}

const nonNeg = z.number().int().nonnegative();

export const SnapshotTopicSchema = z.strictObject({
  name: z.string().min(1),
  /** numeric id: local dirs are `topic_<id>/` */
  id: z.number().int().positive(),
  /** Kafka topic id as used in object keys (dashed UUID) */
  topicId: z.string().min(1),
  partitions: z.number().int().positive(),
  /** standalone: the catalog's TopicConfig; cluster: Kafka config strings */
  config: z.record(z.string(), z.unknown()),
  createdAt: z.string().optional(),
  replicationFactor: z.number().int().positive().optional(),
  /** cluster mode: partition → replica node ids */
  assignment: z.array(z.array(nonNeg)).optional(),
});
export type SnapshotTopic = z.infer<typeof SnapshotTopicSchema>;

export const SnapshotPartitionSchema = z.strictObject({
  topic: z.string().min(1),
  partition: nonNeg,
  highWatermark: nonNeg,
  logStartOffset: nonNeg,
  /** offset after the last segment the tiered manifest holds (what a restore gets from the bucket) */
  remoteEnd: nonNeg,
  /** the manifest this node knew when the snapshot was taken (newer ones may exist by restore time) */
  manifestKey: z.string().nullable(),
  /** bytes of segment data the manifest lists */
  remoteBytes: nonNeg,
});
export type SnapshotPartition = z.infer<typeof SnapshotPartitionSchema>;

export const SnapshotGroupSchema = z.strictObject({
  groupId: z.string(),
  protocolType: z.string(),
  generation: z.number().int(),
  offsets: z.array(z.strictObject({
    topic: z.string(), partition: nonNeg, offset: z.number().int(), leaderEpoch: z.number().int(), metadata: z.string(), commitTimestamp: z.number(),
  })),
});
export type SnapshotGroup = z.infer<typeof SnapshotGroupSchema>;

export const MetadataSnapshotSchema = z.strictObject({
  format: z.literal(DR_FORMAT),
  clusterId: z.string().min(1),
  mode: z.enum(['standalone', 'cluster']),
  node: nonNeg,
  takenAt: z.string(),
  takenAtMs: nonNeg,
  topics: z.array(SnapshotTopicSchema),
  partitions: z.array(SnapshotPartitionSchema),
  groups: z.array(SnapshotGroupSchema),
  /** next producer id never handed out (ids are allocated in blocks; this is the block limit) */
  producerIdNext: nonNeg,
  /** cluster mode: the metadata state machine's state (broker/src/cluster/metadata.ts) as of `takenAt` */
  clusterMetadata: z.unknown().optional(),
});
export type MetadataSnapshot = z.infer<typeof MetadataSnapshotSchema>;

export const RestorePointSchema = z.strictObject({
  format: z.literal(DR_FORMAT),
  clusterId: z.string().min(1),
  mode: z.enum(['standalone', 'cluster']),
  node: nonNeg,
  takenAt: z.string(),
  takenAtMs: nonNeg,
  snapshot: z.strictObject({ key: z.string().min(1), size: nonNeg, crc32c: z.string().regex(/^[0-9a-f]{8}$/) }),
  topics: z.array(z.strictObject({ name: z.string(), partitions: z.number().int().positive(), bytes: nonNeg })),
  groups: nonNeg,
  /** bytes of partition data in the bucket at that moment (sum of manifest segment sizes) */
  totalBytes: nonNeg,
  /** records committed locally but not yet in the bucket when the snapshot was taken (the data lag) */
  unuploadedRecords: nonNeg,
});
export type RestorePoint = z.infer<typeof RestorePointSchema>;

function decodeJson<T>(key: string, body: Buffer, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new LanceError('CORRUPT', `${what} ${key}: not JSON: ${(e as Error).message}`, { key });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new LanceError('CORRUPT', `${what} ${key}: ${i.path.join('.') || '(root)'}: ${i.message}`, { key, field: i.path.join('.') });
  }
  return r.data;
}

export function decodeRestorePoint(key: string, body: Buffer): RestorePoint {
  return decodeJson(key, body, RestorePointSchema, 'restore point');
}

export function decodeSnapshot(key: string, body: Buffer, expect?: { size: number; crc32c: string }): MetadataSnapshot {
  if (expect && (body.length !== expect.size || crc32cHex(body) !== expect.crc32c)) {
    throw new LanceError('CORRUPT', `metadata snapshot ${key}: ${body.length} bytes / crc32c ${crc32cHex(body)}, the restore point recorded ${expect.size} / ${expect.crc32c}`, { key });
  }
  return decodeJson(key, body, MetadataSnapshotSchema, 'metadata snapshot');
}

/** The restore point summarising a snapshot (pure). */
export function restorePointOf(snap: MetadataSnapshot, snapshotKey: string, snapshotBody: Buffer): RestorePoint {
  const bytesByTopic = new Map<string, number>();
  let total = 0;
  let lag = 0;
  for (const p of snap.partitions) {
    bytesByTopic.set(p.topic, (bytesByTopic.get(p.topic) ?? 0) + p.remoteBytes);
    total += p.remoteBytes;
    lag += Math.max(0, p.highWatermark - p.remoteEnd);
  }
  return {
    format: DR_FORMAT, clusterId: snap.clusterId, mode: snap.mode, node: snap.node, takenAt: snap.takenAt, takenAtMs: snap.takenAtMs,
    snapshot: { key: snapshotKey, size: snapshotBody.length, crc32c: crc32cHex(snapshotBody) },
    topics: snap.topics.map((t) => ({ name: t.name, partitions: t.partitions, bytes: bytesByTopic.get(t.name) ?? 0 })),
    groups: snap.groups.length, totalBytes: total, unuploadedRecords: lag,
  };
}

/** A restore point found in the bucket (its key and parsed body, or the error that made it unusable). */
export interface ListedRestorePoint {
  key: string;
  clusterId: string;
  takenAtMs: number;
  node: number;
  point: RestorePoint | null;
  error?: string;
}

/** Cluster ids that have a `clusters/<id>/` prefix in the store. */
export async function listClusterIds(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.list('clusters/', { delimiter: '/' })) {
    if (e.kind === 'prefix') out.push(e.prefix.slice('clusters/'.length, -1));
  }
  return out;
}

/** Keys of complete restore points (restore-point.json present) of one cluster, oldest first. */
export async function listRestorePointKeys(store: ObjectStore, clusterId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(restorePointsPrefix(clusterId))) {
    if (e.kind !== 'object') continue;
    const k = parseRestorePointKey(e.key);
    if (k && k.file === 'restore-point' && k.clusterId === clusterId) keys.push(e.key);
  }
  return keys.sort();
}

/**
 * Every restore point under the store (all clusters, or one), oldest first. With `load`, each body is read and
 * validated (a damaged one is listed with its error, never used).
 */
export async function listRestorePoints(store: ObjectStore, opts: { clusterId?: string; load?: boolean; newest?: number } = {}): Promise<ListedRestorePoint[]> {
  const clusters = opts.clusterId !== undefined ? [opts.clusterId] : await listClusterIds(store);
  const out: ListedRestorePoint[] = [];
  for (const cid of clusters) {
    const keys = await listRestorePointKeys(store, cid);
    // with `newest`, only the newest N per cluster are read (a week of 10 s restore points is 60 000 objects)
    for (const [i, key] of keys.entries()) {
      const k = parseRestorePointKey(key)!;
      const item: ListedRestorePoint = { key, clusterId: cid, takenAtMs: k.takenAtMs, node: k.node, point: null };
      if (opts.newest !== undefined && i < keys.length - opts.newest) continue;
      if (opts.load !== false) {
        try {
          item.point = decodeRestorePoint(key, await store.get(key));
        } catch (e) {
          if (!isLanceError(e) || (e.code !== 'CORRUPT' && e.code !== 'NOT_FOUND')) throw e;
          item.error = `${e.code}: ${e.message}`;
        }
      }
      out.push(item);
    }
  }
  return out.sort((a, b) => a.takenAtMs - b.takenAtMs || a.node - b.node || a.clusterId.localeCompare(b.clusterId));
}

/**
 * Pure: which restore point to use — the newest usable one taken at or before `atMs` (the newest overall without
 * it). null when none qualifies.
 */
export function chooseRestorePoint(points: readonly ListedRestorePoint[], atMs?: number): ListedRestorePoint | null {
  let best: ListedRestorePoint | null = null;
  for (const p of points) {
    if (!p.point) continue;
    if (atMs !== undefined && p.takenAtMs > atMs) continue;
    if (!best || p.takenAtMs > best.takenAtMs || (p.takenAtMs === best.takenAtMs && p.node > best.node)) best = p;
  }
  return best;
}

/** Which restore points retention deletes (pure): older than retentionMs, but never the newest `keepAtLeast`. */
export function planRestorePointRetention(keysOldestFirst: readonly string[], now: number, retentionMs: number, keepAtLeast: number): string[] {
  const drop: string[] = [];
  const limit = keysOldestFirst.length - keepAtLeast;
  for (let i = 0; i < limit; i++) {
    const k = parseRestorePointKey(keysOldestFirst[i]!);
    if (!k) continue;
    if (retentionMs > 0 && now - k.takenAtMs > retentionMs) drop.push(keysOldestFirst[i]!);
    else break;
  }
  return drop;
}

export class DrMetrics {
  readonly snapshotsUploaded: Counter;
  readonly snapshotErrors: Counter;
  readonly rpoSeconds: Gauge;
  readonly lastRestorePoint: Gauge;
  readonly recoverySeconds: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.snapshotsUploaded = new Counter({ name: 'lance_metadata_snapshots_uploaded_total', help: 'Metadata snapshots uploaded and verified, each followed by its restore point', registers });
    this.snapshotErrors = new Counter({ name: 'lance_metadata_snapshot_errors_total', help: 'Failed metadata snapshot / restore point uploads (retried next interval)', registers });
    this.lastRestorePoint = new Gauge({ name: 'lance_dr_last_restore_point_timestamp_seconds', help: 'Unix time of the newest restore point this node wrote', registers });
    const last = this.lastRestorePoint;
    this.rpoSeconds = new Gauge({
      name: 'lance_dr_rpo_seconds', help: 'Age of the newest restore point this node wrote (recovery point objective); -1 before the first', registers,
      async collect() {
        const v = (await last.get()).values[0]?.value ?? 0;
        this.set(v > 0 ? Date.now() / 1000 - v : -1);
      },
    });
    this.recoverySeconds = new Gauge({ name: 'lance_dr_recovery_duration_seconds', help: 'Duration of the cold-start restore this process ran (0 if none)', registers });
  }
}

export interface MetadataUploaderOptions {
  store: ObjectStore;
  clusterId: string;
  nodeId: number;
  logger: Logger;
  intervalMs: number;
  /** restore points older than this are deleted (the newest `keepAtLeast` always stay); 0 = keep all */
  retentionMs: number;
  keepAtLeast?: number;
  /** the metadata as of now; null = this node does not own the metadata right now (cluster: not the controller) */
  collect(): Promise<MetadataSnapshot | null>;
  metrics?: DrMetrics;
  now?: () => number;
}

/**
 * Uploads a snapshot + restore point every interval. Single-flight: a slow store delays the next upload instead of
 * piling them up. Failures are logged, counted and retried at the next interval.
 */
export class MetadataUploader {
  private readonly log: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RestorePoint | null> | null = null;
  private stopped = false;
  /** this cluster's restore point keys, oldest first (listed once, then maintained) */
  private known: string[] | null = null;
  private lastTakenAtMs = 0;
  private guardChecked = false;
  private protecting: string | null = null;

  constructor(private readonly opts: MetadataUploaderOptions) {
    this.log = opts.logger.child({ component: 'metadata-dr' });
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.uploadNow().catch(() => undefined), this.opts.intervalMs);
    this.timer.unref();
    // a first restore point soon after start (not a whole interval later)
    void this.uploadNow().catch(() => undefined);
  }

  async stop(waitMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (!this.running) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.running.catch(() => undefined), new Promise<void>((r) => { t = setTimeout(r, waitMs); t.unref(); })]);
    clearTimeout(t);
  }

  /** Uploads one restore point now (waits for one in flight first). Resolves null when this node does not own metadata. */
  async uploadNow(): Promise<RestorePoint | null> {
    while (this.running) await this.running.catch(() => undefined);
    if (this.stopped) return null;
    const run = this.upload();
    this.running = run;
    try {
      return await run;
    } catch (e) {
      this.opts.metrics?.snapshotErrors.inc();
      this.log.warn({ err: e }, 'metadata snapshot upload failed; retrying next interval');
      throw e;
    } finally {
      this.running = null;
    }
  }

  private async upload(): Promise<RestorePoint | null> {
    const snap = await this.opts.collect();
    if (!snap) return null;
    if (await this.protectsBackup(snap)) return null;
    // strictly increasing times per node: two uploads within one millisecond must not share a key
    if (snap.takenAtMs <= this.lastTakenAtMs) {
      snap.takenAtMs = this.lastTakenAtMs + 1;
      snap.takenAt = new Date(snap.takenAtMs).toISOString();
    }
    const dir = restorePointDir(this.opts.clusterId, snap.takenAtMs, this.opts.nodeId);
    const snapKey = `${dir}${SNAPSHOT_FILE}`;
    const body = Buffer.from(JSON.stringify(snap) + '\n', 'utf8');
    await this.opts.store.putVerified(snapKey, body, { contentType: 'application/json' });
    const rp = restorePointOf(snap, snapKey, body);
    const rpKey = `${dir}${RESTORE_POINT_FILE}`;
    // written LAST: a reader that sees it finds a complete, verified snapshot
    await this.opts.store.putVerified(rpKey, Buffer.from(JSON.stringify(rp, null, 1) + '\n', 'utf8'), { contentType: 'application/json' });
    this.lastTakenAtMs = snap.takenAtMs;
    this.opts.metrics?.snapshotsUploaded.inc();
    this.opts.metrics?.lastRestorePoint.set(snap.takenAtMs / 1000);
    this.log.debug({ key: rpKey, topics: rp.topics.length, groups: rp.groups, totalBytes: rp.totalBytes, unuploadedRecords: rp.unuploadedRecords }, 'restore point written');
    await this.prune(rpKey).catch((e: unknown) => this.log.warn({ err: e }, 'restore point retention failed'));
    return rp;
  }

  /**
   * A node with NO topics whose cluster already has a restore point WITH topics in the bucket (a whole cluster lost
   * and restarted empty, cold start off) must not bury that backup under empty restore points: it writes none
   * (and says so once) until it has topics of its own. Checked once; the answer holds while the state is empty.
   */
  private async protectsBackup(snap: MetadataSnapshot): Promise<boolean> {
    if (snap.topics.length > 0) {
      this.protecting = null;
      this.guardChecked = true;
      return false;
    }
    if (!this.guardChecked) {
      this.guardChecked = true;
      const keys = await listRestorePointKeys(this.opts.store, this.opts.clusterId);
      const newest = keys.at(-1);
      if (newest) {
        const rp = await this.opts.store.get(newest).then((b) => decodeRestorePoint(newest, b), () => null);
        if (rp && rp.topics.length > 0) {
          this.protecting = newest;
          this.log.warn({ restorePoint: newest, topics: rp.topics.map((t) => t.name), takenAt: rp.takenAt }, 'the object store holds a restore point of this cluster with topics, but this node has none: not writing empty restore points over it (restore it with lnc restore, or create a topic to resume backups)');
        }
      }
    }
    return this.protecting !== null;
  }

  private async prune(written: string): Promise<void> {
    if (this.known === null) {
      this.known = await listRestorePointKeys(this.opts.store, this.opts.clusterId);
      // orphans: snapshot.json without restore-point.json (a crash between the two writes), older than an hour
      const complete = new Set(this.known.map((k) => parseRestorePointKey(k)!.dir));
      const orphans: string[] = [];
      for await (const e of this.opts.store.list(restorePointsPrefix(this.opts.clusterId))) {
        if (e.kind !== 'object') continue;
        const k = parseRestorePointKey(e.key);
        if (k && k.file === 'snapshot' && !complete.has(k.dir) && this.now() - k.takenAtMs > 3600_000) orphans.push(e.key);
      }
      if (orphans.length) await this.opts.store.delete(orphans);
    } else if (!this.known.includes(written)) {
      this.known.push(written);
      this.known.sort();
    }
    const drop = planRestorePointRetention(this.known, this.now(), this.opts.retentionMs, this.opts.keepAtLeast ?? 3);
    if (drop.length === 0) return;
    // the restore point first: a crash in between leaves an orphan snapshot, never a restore point without snapshot
    await this.opts.store.delete(drop);
    await this.opts.store.delete(drop.map((k) => `${parseRestorePointKey(k)!.dir}${SNAPSHOT_FILE}`));
    this.known = this.known.slice(drop.length);
    this.log.info({ deleted: drop.length }, 'restore point retention deleted old restore points');
  }
}
