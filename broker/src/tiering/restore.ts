/**
 * Restore a data dir from the object store: `lnc restore` and cold-start recovery run this same code.
 *
 *   1. choose the restore point: the newest one taken at or before `atMs` (or the newest), of the source cluster;
 *   2. read its metadata snapshot (size + CRC32C checked against the restore point, schema-validated);
 *   3. write `restore-in-progress.json` into the data dir (a broker refuses to start on such a dir; a second
 *      restore wipes it and starts over), then the topic catalog;
 *   4. per partition, the newest tiered manifest: download its segments (.lnc + .idx + .tix, several in parallel),
 *      each checked against the manifest's size and CRC32C (a damaged object is never used: CORRUPT);
 *   5. open every restored log (the storage engine's recovery checks it); point in time: truncate each partition
 *      before the first entry whose newest record is later than `atMs`;
 *   6. consumer groups (committed offsets clamped into each restored log's range), the producer-id high-water
 *      mark, `restore-info.json` (what was restored), and `node.json` LAST; then the marker goes.
 *
 * Point in time into the SAME cluster id rewrites the affected partitions' manifests: a new manifest (at a higher
 * term, which the restored log also carries as a NOOP entry) lists only the remote segments before the cut, so the
 * restored broker's uploads continue from its own log instead of colliding with the newer remote history.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LanceError, isLanceError, ioError } from '../common/errors.ts';
import { atomicWriteJson, fsyncDir, mkdirDurable } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import * as catalog from '../storage/catalog.ts';
import { PartitionLog, segmentFileName } from '../storage/partition-log.ts';
import { EntryType } from '../storage/types.ts';
import { NODE_FILE } from '../server/node-identity.ts';
import {
  decodeManifest, encodeManifest, manifestKey, manifestPrefix, newestFirst, parseManifestKey,
  type Manifest, type PartitionRef, type RemoteSegment,
} from './manifest.ts';
import {
  chooseRestorePoint, decodeRestorePoint, decodeSnapshot, listRestorePointKeys, listRestorePoints, type ListedRestorePoint, type MetadataSnapshot,
  type RestorePoint, type SnapshotTopic,
} from './metadata-dr.ts';
import { CRC32C_METADATA_KEY, type ObjectStore } from './object-store.ts';

export const RESTORE_MARKER = 'restore-in-progress.json';
export const RESTORE_INFO = 'restore-info.json';
/** entries a fresh data dir may hold (the broker's lock file, a volume's lost+found, an interrupted restore) */
const IGNORABLE = new Set(['lance.lock', 'lost+found', RESTORE_MARKER]);

export interface RestoreProgress {
  /** called once the bytes to download are known */
  start(totalBytes: number): void;
  advance(bytes: number): void;
  done(): void;
}

export interface RestoreOptions {
  store: ObjectStore;
  dataDir: string;
  /** node.json's cluster id (default: the source cluster's) */
  clusterId?: string;
  nodeId: number;
  /** restore points of this cluster (default: `clusterId`'s if it has any, else the only cluster in the store) */
  sourceClusterId?: string;
  /** point in time (ms since the epoch) */
  atMs?: number;
  /** only these topics (default: all) */
  topics?: readonly string[];
  /** parallel object downloads (default 8) */
  concurrency?: number;
  logger?: Logger;
  progress?: RestoreProgress;
}

export interface RestoredPartition {
  topic: string;
  partition: number;
  logStartOffset: number;
  nextOffset: number;
  segments: number;
  bytes: number;
  /** point in time: first offset removed (null when nothing was cut) */
  truncatedAt: number | null;
  /** the snapshot's high watermark (records between nextOffset and it were not in the bucket yet) */
  snapshotHighWatermark: number;
  /** segments before a gap in the remote log that could not be restored */
  skippedSegments: number;
}

export interface RestoreReport {
  from: string;
  restorePoint: { key: string; clusterId: string; takenAt: string; node: number };
  clusterId: string;
  nodeId: number;
  atMs: number | null;
  topics: Array<{ name: string; id: number; partitions: number }>;
  partitions: RestoredPartition[];
  groups: Array<{ groupId: string; offsets: number; clamped: number }>;
  producerIdNext: number;
  bytes: number;
  objects: number;
  durationMs: number;
  warnings: string[];
}

/** Pure: is a data dir with these entries "empty" for a restore? */
export function isFreshDataDir(entries: readonly string[]): boolean {
  return entries.every((e) => IGNORABLE.has(e) || e.startsWith('.restore'));
}

export async function readDirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('read data dir', dir, e);
  }
}

/** True when `dataDir` holds no broker data (missing, empty, or only a lock/lost+found/an interrupted restore). */
export async function dataDirIsFresh(dataDir: string): Promise<boolean> {
  return isFreshDataDir(await readDirOrEmpty(dataDir));
}

/** Which cluster's restore points to use (pure). */
export function chooseSourceCluster(clusters: readonly string[], wanted: { source?: string; target?: string }, url: string): string {
  if (wanted.source !== undefined) {
    if (!clusters.includes(wanted.source)) {
      throw new LanceError('NOT_FOUND', `no restore point of cluster "${wanted.source}" in ${url} (clusters there: ${clusters.join(', ') || 'none'})`, { url, clusterId: wanted.source });
    }
    return wanted.source;
  }
  if (wanted.target !== undefined && clusters.includes(wanted.target)) return wanted.target;
  if (clusters.length === 1) return clusters[0]!;
  if (clusters.length === 0) throw new LanceError('NOT_FOUND', `no restore point in ${url}`, { url });
  throw new LanceError('USAGE', `${url} holds restore points of several clusters (${clusters.join(', ')}); choose one with --source-cluster-id`, { url, clusters });
}

/** The restore point a restore would use (and the source cluster), or NOT_FOUND naming the URL. */
export async function findRestorePoint(store: ObjectStore, opts: { sourceClusterId?: string; clusterId?: string; atMs?: number }): Promise<ListedRestorePoint> {
  // the named cluster first (one LIST); discovering every cluster id in the store only when it has none
  let clusters: string[] = [];
  const first = opts.sourceClusterId ?? opts.clusterId;
  if (first !== undefined && (await listRestorePointKeys(store, first)).length > 0) clusters = [first];
  else {
    const all = await listRestorePoints(store, { load: false });
    clusters = [...new Set(all.map((p) => p.clusterId))].sort();
  }
  const source = chooseSourceCluster(clusters, { ...(opts.sourceClusterId !== undefined ? { source: opts.sourceClusterId } : {}), ...(opts.clusterId !== undefined ? { target: opts.clusterId } : {}) }, store.url);
  // keys carry the time: read only the candidates, newest first, until one is readable (not every restore point)
  const points = await listRestorePoints(store, { clusterId: source, load: false });
  let chosen: ListedRestorePoint | null = null;
  for (const cand of [...points].reverse()) {
    if (opts.atMs !== undefined && cand.takenAtMs > opts.atMs) continue;
    try {
      cand.point = decodeRestorePoint(cand.key, await store.get(cand.key));
    } catch (e) {
      if (!isLanceError(e) || (e.code !== 'CORRUPT' && e.code !== 'NOT_FOUND')) throw e;
      cand.error = `${e.code}: ${e.message}`;
      continue;
    }
    chosen = chooseRestorePoint([cand], opts.atMs);
    if (chosen) break;
  }
  if (!chosen) {
    const when = opts.atMs !== undefined ? ` taken at or before ${new Date(opts.atMs).toISOString()}` : '';
    const bad = points.filter((p) => p.error).length;
    throw new LanceError('NOT_FOUND', `no restore point${when} in ${store.url} (cluster ${source}: ${points.length} restore point(s)${bad ? `, ${bad} unreadable` : ''}${points[0] ? `, oldest ${new Date(points[0].takenAtMs).toISOString()}` : ''})`, { url: store.url, clusterId: source });
  }
  return chosen;
}

/** The newest readable manifest of a partition (a damaged newest one falls back to the previous version). */
export async function loadNewestManifest(store: ObjectStore, ref: PartitionRef, log?: Logger): Promise<{ manifest: Manifest | null; maxVersion: number }> {
  const keys: string[] = [];
  for await (const e of store.list(manifestPrefix(ref))) if (e.kind === 'object' && parseManifestKey(ref, e.key)) keys.push(e.key);
  let maxVersion = 0;
  let found: Manifest | null = null;
  for (const key of newestFirst(keys)) {
    maxVersion = Math.max(maxVersion, parseManifestKey(ref, key)!.version);
    if (found) continue;
    try {
      found = decodeManifest(key, await store.get(key));
    } catch (e) {
      if (!isLanceError(e, 'CORRUPT')) throw e;
      log?.error({ err: e, key }, 'manifest is corrupt; using the previous version');
    }
  }
  return { manifest: found, maxVersion };
}

/**
 * Pure: which remote segments to download — the contiguous run ending at the newest segment (a gap means data
 * that never reached the bucket; what is before it cannot form one log), and for a point in time nothing after the
 * first segment holding a record later than `atMs` (that one is cut after download).
 */
export function planPartitionDownload(segments: readonly RemoteSegment[], atMs?: number): { segments: RemoteSegment[]; skippedBeforeGap: number } {
  let start = segments.length - 1;
  while (start > 0 && segments[start - 1]!.lastOffset + 1 === segments[start]!.baseOffset) start--;
  let chosen = segments.slice(Math.max(0, start));
  if (atMs !== undefined) {
    const i = chosen.findIndex((s) => s.maxTimestamp > atMs);
    if (i >= 0) chosen = chosen.slice(0, i + 1);
  }
  return { segments: chosen, skippedBeforeGap: Math.max(0, start) };
}

/** Pure: a committed offset clamped into a restored log's [start, end] range. */
export function clampOffset(offset: number, logStart: number, nextOffset: number): number {
  return Math.max(logStart, Math.min(offset, nextOffset));
}

const KAFKA_TO_TOPIC_CONFIG: Record<string, keyof catalog.TopicConfig> = {
  'retention.ms': 'retentionMs', 'retention.bytes': 'retentionBytes', 'segment.bytes': 'segmentBytes', 'segment.ms': 'segmentMs',
};

/** Pure: a snapshot topic's config as the standalone catalog's TopicConfig (cluster snapshots carry Kafka strings). */
export function topicConfigOf(t: SnapshotTopic): Partial<catalog.TopicConfig> {
  const parsed = catalog.TopicConfigSchema.partial().safeParse(t.config);
  if (parsed.success && Object.keys(t.config).every((k) => !k.includes('.'))) {
    // only the keys the snapshot had (zod fills in defaults; the catalog applies its own)
    return Object.fromEntries(Object.entries(parsed.data).filter(([k]) => k in t.config)) as Partial<catalog.TopicConfig>;
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t.config)) {
    const field = KAFKA_TO_TOPIC_CONFIG[k];
    if (!field || typeof v !== 'string' || !/^-?\d+$/.test(v)) continue;
    const n = Number(v);
    out[field] = (field === 'retentionMs' || field === 'retentionBytes') && n === -1 ? 0 : n;
  }
  if (t.replicationFactor !== undefined) out.replicationFactor = t.replicationFactor;
  return out as Partial<catalog.TopicConfig>;
}

const hexOfUuid = (u: string): string => u.replace(/-/g, '').toLowerCase();

export async function wipeForRestore(dataDir: string): Promise<void> {
  for (const e of await readDirOrEmpty(dataDir)) {
    if (e === 'lance.lock' || e === 'lost+found' || e === RESTORE_MARKER) continue;
    await fsp.rm(path.join(dataDir, e), { recursive: true, force: true });
  }
}

export async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    while (failed === null && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== null) throw failed;
}

export interface DownloadTask {
  key: string;
  size: number;
  crc32c: string;
  file: string;
}

/**
 * Streams one object into `file` (fsynced), checked against the manifest's size and CRC32C. A download damaged or
 * cut in transit is retried (the stream's own CRC32C check fails at its end); an object whose stored size/checksum
 * differs from the manifest's is damaged in the bucket: CORRUPT at once.
 */
export async function download(store: ObjectStore, t: DownloadTask, onBytes: (n: number) => void, attempts = 4): Promise<void> {
  for (let i = 1; ; i++) {
    let got = 0;
    try {
      await downloadOnce(store, t, (n) => {
        got += n;
        onBytes(n);
      });
      return;
    } catch (e) {
      onBytes(-got);
      if (i >= attempts || (isLanceError(e) && (e.details as { permanent?: boolean } | undefined)?.permanent)) throw e;
      if (isLanceError(e) && e.code !== 'CORRUPT' && e.code !== 'IO' && e.code !== 'TIMEOUT') throw e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** (i - 1)));
    }
  }
}

async function downloadOnce(store: ObjectStore, t: DownloadTask, onBytes: (n: number) => void): Promise<void> {
  const r = await store.getStream(t.key);
  const stored = r.info.metadata[CRC32C_METADATA_KEY];
  if (r.length !== t.size || (stored !== undefined && stored !== t.crc32c)) {
    r.body.destroy();
    throw new LanceError('CORRUPT', `object ${t.key}: ${r.length} bytes / crc32c ${stored ?? '?'} in the store, the manifest recorded ${t.size} / ${t.crc32c}; not restoring from it`, { key: t.key, permanent: true });
  }
  const tmp = `${t.file}.part`;
  const out = createWriteStream(tmp);
  r.body.on('data', (c: Buffer) => onBytes(c.length));
  try {
    // the store's stream errors with CORRUPT at its end when the bytes do not match their CRC32C
    await pipeline(r.body, out);
    const fh = await fsp.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, t.file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    if (isLanceError(e)) throw e;
    throw new LanceError('IO', `download ${t.key} → ${t.file}: ${(e as Error).message}`, { key: t.key, path: t.file }, { cause: e });
  }
}

/** First raft index to drop for a point in time: the first entry whose newest record is later than atMs (or null). */
async function pitrCut(log: PartitionLog, atMs: number): Promise<{ index: number; offset: number } | null> {
  const last = log.lastIndex;
  let idx = log.firstIndex;
  if (idx === 0) return null;
  while (idx <= last) {
    const entries = await log.readByIndex(idx, 1024, 4 * 1024 * 1024);
    if (entries.length === 0) break;
    for (const e of entries) {
      if (e.type === EntryType.DATA && e.maxTimestamp > atMs) return { index: e.index, offset: e.firstOffset };
    }
    idx = entries.at(-1)!.index + 1;
  }
  return null;
}

/**
 * Restores `opts.dataDir` (which must be fresh: see dataDirIsFresh) from the store. Returns what was restored.
 * Throws NOT_FOUND ("no restore point in <url>") for an empty bucket, CONFLICT for a data dir with data in it,
 * CORRUPT when an object does not match its recorded checksum.
 */
export async function restoreDataDir(opts: RestoreOptions): Promise<RestoreReport> {
  const t0 = Date.now();
  const { store, dataDir } = opts;
  const log = opts.logger?.child({ component: 'restore' });
  const entries = await readDirOrEmpty(dataDir);
  // a dir holding an interrupted restore (its marker) is wiped and restored again
  if (!entries.includes(RESTORE_MARKER) && !isFreshDataDir(entries)) {
    const what = entries.filter((e) => !IGNORABLE.has(e)).slice(0, 5).join(', ');
    throw new LanceError('CONFLICT', `--data-dir ${dataDir}: not empty (${what}); restore writes a fresh data dir — move this one away first`, { path: dataDir });
  }
  const chosen = await findRestorePoint(store, {
    ...(opts.sourceClusterId !== undefined ? { sourceClusterId: opts.sourceClusterId } : {}),
    ...(opts.clusterId !== undefined ? { clusterId: opts.clusterId } : {}),
    ...(opts.atMs !== undefined ? { atMs: opts.atMs } : {}),
  });
  const rp: RestorePoint = chosen.point!;
  const snap: MetadataSnapshot = decodeSnapshot(rp.snapshot.key, await store.get(rp.snapshot.key), rp.snapshot);
  const sourceCluster = snap.clusterId;
  const targetCluster = opts.clusterId ?? sourceCluster;
  let topics = snap.topics;
  if (opts.topics && opts.topics.length > 0) {
    const missing = opts.topics.filter((n) => !topics.some((t) => t.name === n));
    if (missing.length) {
      throw new LanceError('NOT_FOUND', `--topics: ${missing.join(', ')} not in restore point ${chosen.key} (it has: ${topics.map((t) => t.name).join(', ') || 'no topics'})`, { field: 'topics', missing });
    }
    topics = topics.filter((t) => opts.topics!.includes(t.name));
  }
  log?.info({ from: store.url, restorePoint: chosen.key, takenAt: rp.takenAt, atMs: opts.atMs, topics: topics.length, groups: snap.groups.length }, 'restoring');

  await mkdirDurable(dataDir);
  await wipeForRestore(dataDir);
  await atomicWriteJson(path.join(dataDir, RESTORE_MARKER), { restorePoint: chosen.key, from: store.url, startedAt: new Date(t0).toISOString() });

  // catalog first (claims the topic dirs), then the data into the partition dirs
  const warnings: string[] = [];
  const tasks: DownloadTask[] = [];
  const perPartition: Array<{ topic: SnapshotTopic; partition: number; dir: string; ref: PartitionRef; manifest: Manifest | null; maxVersion: number; segments: RemoteSegment[]; skipped: number; bytes: number }> = [];
  const concurrency = opts.concurrency ?? 8;
  for (const t of topics) await catalog.createTopic(dataDir, t.name, t.partitions, topicConfigOf(t), { id: t.id, uuid: hexOfUuid(t.topicId) });
  // every partition's newest manifest (LIST + GET each), several at once
  const refs = topics.flatMap((t) => Array.from({ length: t.partitions }, (_, p) => ({ t, p, ref: { clusterId: sourceCluster, topicId: t.topicId, partition: p } as PartitionRef })));
  const manifests = new Map<PartitionRef, { manifest: Manifest | null; maxVersion: number }>();
  await pool(refs, concurrency, async (x) => {
    manifests.set(x.ref, await loadNewestManifest(store, x.ref, log));
  });
  for (const t of topics) {
    for (let p = 0; p < t.partitions; p++) {
      const ref = refs.find((x) => x.t === t && x.p === p)!.ref;
      const { manifest, maxVersion } = manifests.get(ref)!;
      const plan = planPartitionDownload(manifest?.segments ?? [], opts.atMs);
      if (plan.skippedBeforeGap > 0) warnings.push(`${t.name}-${p}: ${plan.skippedBeforeGap} remote segment(s) before a gap in the offsets were not restored`);
      const dir = catalog.partitionDir(dataDir, t.id, p);
      let bytes = 0;
      for (const s of plan.segments) {
        const stem = path.join(dir, segmentFileName(s.baseOffset).replace(/\.lnc$/, ''));
        tasks.push({ key: s.data.key, size: s.data.size, crc32c: s.data.crc32c, file: `${stem}.lnc` });
        if (s.idx) tasks.push({ key: s.idx.key, size: s.idx.size, crc32c: s.idx.crc32c, file: `${stem}.idx` });
        if (s.tix) tasks.push({ key: s.tix.key, size: s.tix.size, crc32c: s.tix.crc32c, file: `${stem}.tix` });
        bytes += s.data.size + (s.idx?.size ?? 0) + (s.tix?.size ?? 0);
      }
      perPartition.push({ topic: t, partition: p, dir, ref, manifest, maxVersion, segments: plan.segments, skipped: plan.skippedBeforeGap, bytes });
    }
  }
  const total = tasks.reduce((n, t) => n + t.size, 0);
  opts.progress?.start(total);
  // biggest first: the pool finishes together instead of waiting on one large object at the end
  const ordered = [...tasks].sort((a, b) => b.size - a.size);
  try {
    await pool(ordered, concurrency, (t) => download(store, t, (n) => opts.progress?.advance(n)));
  } finally {
    opts.progress?.done();
  }
  for (const pp of perPartition) await fsyncDir(pp.dir);

  // open each restored log (recovery checks it), cut it at the point in time, note its range
  const restored: RestoredPartition[] = [];
  const ranges = new Map<string, { start: number; next: number }>();
  await pool(perPartition, Math.min(4, concurrency), async (pp) => {
    const plog = await PartitionLog.open(pp.dir, { flush: { mode: 'every-entry' } }, log?.child({ topic: pp.topic.name, partition: pp.partition }));
    let truncatedAt: number | null = null;
    try {
      if (opts.atMs !== undefined) {
        const cut = await pitrCut(plog, opts.atMs);
        if (cut) {
          await plog.truncateAfterIndex(cut.index - 1);
          truncatedAt = cut.offset;
        }
        const remoteLast = pp.manifest?.segments.at(-1)?.lastOffset ?? -1;
        if (truncatedAt !== null && remoteLast >= truncatedAt && targetCluster === sourceCluster) {
          await supersedeManifest(store, pp.ref, pp.manifest!, pp.maxVersion, plog, truncatedAt);
          warnings.push(`${pp.topic.name}-${pp.partition}: the bucket's manifest now ends before offset ${truncatedAt} (point in time into the same cluster id)`);
        }
      }
      await plog.flush();
      const info: RestoredPartition = {
        topic: pp.topic.name, partition: pp.partition, logStartOffset: plog.logStartOffset, nextOffset: plog.nextOffset,
        segments: pp.segments.length, bytes: pp.bytes, truncatedAt,
        snapshotHighWatermark: snap.partitions.find((x) => x.topic === pp.topic.name && x.partition === pp.partition)?.highWatermark ?? 0,
        skippedSegments: pp.skipped,
      };
      restored.push(info);
      ranges.set(`${pp.topic.name}\u0000${pp.partition}`, { start: info.logStartOffset, next: info.nextOffset });
    } finally {
      await plog.close();
    }
  });
  restored.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);

  // consumer groups: committed offsets clamped into the restored ranges (offsets of topics not restored are dropped)
  const groupsOut: RestoreReport['groups'] = [];
  const groupsSnap = snap.groups.map((g) => {
    let clamped = 0;
    const offsets = g.offsets.flatMap((o) => {
      const r = ranges.get(`${o.topic}\u0000${o.partition}`);
      if (!r) return [];
      const v = clampOffset(o.offset, r.start, r.next);
      if (v !== o.offset) clamped++;
      return [{ ...o, offset: v }];
    });
    groupsOut.push({ groupId: g.groupId, offsets: offsets.length, clamped });
    return { groupId: g.groupId, protocolType: g.protocolType, protocol: null, generation: g.generation, leader: null, members: [], offsets };
  });
  await mkdirDurable(path.join(dataDir, 'groups'));
  // nextOffset 0: the restored group command log is empty, so the snapshot is the whole state
  await atomicWriteJson(path.join(dataDir, 'groups', 'snapshot.json'), { version: 1, nextOffset: 0, groups: groupsSnap });
  await atomicWriteJson(path.join(dataDir, 'producer-ids.json'), { next: snap.producerIdNext });

  const report: RestoreReport = {
    from: store.url,
    restorePoint: { key: chosen.key, clusterId: sourceCluster, takenAt: rp.takenAt, node: rp.node },
    clusterId: targetCluster, nodeId: opts.nodeId, atMs: opts.atMs ?? null,
    topics: topics.map((t) => ({ name: t.name, id: t.id, partitions: t.partitions })),
    partitions: restored, groups: groupsOut, producerIdNext: snap.producerIdNext,
    bytes: total, objects: tasks.length, durationMs: Date.now() - t0, warnings,
  };
  await atomicWriteJson(path.join(dataDir, RESTORE_INFO), { ...report, finishedAt: new Date().toISOString() });
  // node.json last: from here on the data dir is a normal one
  await atomicWriteJson(path.join(dataDir, NODE_FILE), { version: 1, clusterId: targetCluster, nodeId: opts.nodeId, createdAt: new Date().toISOString() });
  await fsp.rm(path.join(dataDir, RESTORE_MARKER), { force: true });
  await fsyncDir(dataDir);
  log?.info({ restorePoint: chosen.key, topics: report.topics.length, partitions: restored.length, groups: groupsOut.length, bytes: total, durationMs: report.durationMs }, 'restore complete');
  return report;
}

/**
 * Point in time into the same cluster: the restored log continues at a term above every manifest's, marked by a
 * NOOP entry, and a new manifest at that term lists only the remote segments wholly before the cut. The restored
 * broker then loads this manifest as the newest and uploads its own log after it (nothing overlaps).
 */
async function supersedeManifest(store: ObjectStore, ref: PartitionRef, m: Manifest, maxVersion: number, plog: PartitionLog, cut: number): Promise<void> {
  const term = Math.max(m.term, plog.lastTerm) + 1;
  const r = plog.append([{ type: EntryType.NOOP, term, offsetCount: 0, maxTimestamp: -1, payload: Buffer.alloc(0) }]);
  await r.durable;
  const keep = m.segments.filter((s) => s.lastOffset < cut);
  const next: Manifest = {
    ...m, term, version: maxVersion + 1, writtenAt: new Date().toISOString(),
    remoteLogStartOffset: keep.length > 0 ? keep[0]!.baseOffset : plog.logStartOffset,
    segments: keep,
  };
  await store.putVerified(manifestKey(ref, term, next.version), encodeManifest(next), { contentType: 'application/json' });
}

