/**
 * Restore ONE node of a cluster from a restore point (cluster layout): the multi-node cold start
 * (cluster-cold-start.ts) and `lnc restore --cluster-layout` run this. Every node of the cluster restores the same
 * restore point and writes, byte for byte, what the other nodes write for the groups they share:
 *
 *   - `wal/` (the metadata group): a fresh log of two entries — 1: CONFIG {voters: the restore point's members},
 *     term 0; 2: CONTROL `{op: 'restore', state}` (metadata.ts), in the controller's term at the restore point —
 *     with `raft.json` {term, vote: null, commit: 2}. The state is computed from the restore point ALONE (committed
 *     offsets clamped to the snapshot's uploaded end), so the entry is identical on every node whatever each one
 *     downloads; a node added later replicates it from index 1 like any other entry.
 *   - every partition replica assigned to this node: the segments of the partition's newest manifest (a contiguous
 *     run; every uploaded segment is committed data with its Raft index and term), `snapshot.json` when the run does
 *     not start at index 1 (log start: index, term, offset, membership = the group's last reported membership), an
 *     empty partition gets entry 1 = CONFIG of that membership, and `raft.json` {term: max(1, last entry term,
 *     manifest term, last reported leader term), vote: null, commit: last index}. All replicas download the same objects, so
 *     their logs, log starts and hard states match: the partition groups elect and serve without segment transfer.
 *   - `restore-info.json` (what was restored), `node.json` LAST; `restore-in-progress.json` while it runs (a broker
 *     re-runs an interrupted cold start; `lnc restore` wipes and starts over).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { LanceError, isLanceError } from '../common/errors.ts';
import { atomicWriteJson, fsyncDir, mkdirDurable } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import { BrokerInfoSchema, encodeCommand, PartitionLeaderSchema } from '../cluster/metadata.ts';
import { HARD_STATE_FILE, SNAPSHOT_FILE as LOG_START_FILE } from '../cluster/partition-raft-log.ts';
import { encodeConfig } from '../raft/config.ts';
import { NODE_FILE } from '../server/node-identity.ts';
import { PartitionLog, segmentFileName } from '../storage/partition-log.ts';
import { EntryType } from '../storage/types.ts';
import { decodeManifest, type Manifest, type PartitionRef } from './manifest.ts';
import { decodeRestorePoint, decodeSnapshot, type MetadataSnapshot, type RestorePoint } from './metadata-dr.ts';
import type { ObjectStore } from './object-store.ts';
import {
  download, findRestorePoint, isFreshDataDir, loadNewestManifest, planPartitionDownload, pool, readDirOrEmpty, RESTORE_INFO, RESTORE_MARKER,
  wipeForRestore, type DownloadTask, type RestoreProgress,
} from './restore.ts';

const nodeIdZ = z.number().int().nonnegative();

/** The topic state a cluster restore point carries (metadata.ts TopicState); unknown extra fields pass through. */
const RestoredTopicSchema = z.looseObject({
  name: z.string().min(1),
  topicId: z.string().min(1),
  id: z.number().int().positive(),
  rf: z.number().int().positive(),
  config: z.record(z.string(), z.string()),
  assignment: z.array(z.array(nodeIdZ)),
  founders: z.array(z.array(nodeIdZ)).optional(),
  leaders: z.array(PartitionLeaderSchema.nullable()).optional(),
});

/** `MetadataSnapshot.clusterMetadata` of a cluster-mode restore point (cluster-dr.ts collectClusterSnapshot). */
export const ClusterMetadataSchema = z.looseObject({
  applied: z.number().int().nonnegative(),
  nextTopicId: z.number().int().positive(),
  topics: z.record(z.string(), RestoredTopicSchema),
  brokers: z.record(z.string(), BrokerInfoSchema),
  removed: z.array(nodeIdZ).optional(),
  /** the controller's term when the snapshot was taken (absent in restore points written before cold start existed) */
  metaTerm: z.number().int().nonnegative().optional(),
});
export type ClusterMetadata = z.infer<typeof ClusterMetadataSchema>;

export interface PlannedPartition {
  topic: string;
  topicId: string;
  /** numeric topic id: `<data>/topic_<id>/<partition>/` */
  id: number;
  partition: number;
  replicas: number[];
  /** this node holds a replica */
  local: boolean;
  /** the group's membership at the restored log start (its leader's last report, else the assignment) */
  config: { voters: number[]; learners: number[] };
  /** the last reported leader term (the restored hard state's term is at least this: epochs never go back) */
  reportTerm: number;
  /** clamp bound for committed offsets: the uploaded end the restore point recorded */
  remoteEnd: number;
}

export interface ClusterRestorePlan {
  restorePoint: string;
  /** metadata group voters (the restore point's registered, not removed, brokers) */
  metaVoters: number[];
  /** term of the restore entry (>= 1) */
  metaTerm: number;
  partitions: PlannedPartition[];
  /** entry 2 of the metadata log (JSON of the `restore` command); a pure function of the restore point */
  restoreCommand: Uint8Array;
  groups: Array<{ groupId: string; offsets: number; clamped: number }>;
}

const sorted = (ids: readonly number[]): number[] => [...ids].sort((a, b) => a - b);

/** Parses a snapshot's cluster metadata (CORRUPT naming the field when it is not a cluster restore point). */
export function parseClusterMetadata(snap: MetadataSnapshot, key: string): ClusterMetadata {
  if (snap.mode !== 'cluster' || snap.clusterMetadata === undefined) {
    throw new LanceError('USAGE', `restore point ${key} was written by a ${snap.mode} broker; a cluster layout needs a cluster restore point (restore it without --cluster-layout, as a standalone data dir)`, { key, mode: snap.mode });
  }
  const r = ClusterMetadataSchema.safeParse(snap.clusterMetadata);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new LanceError('CORRUPT', `metadata snapshot ${key}: clusterMetadata.${i.path.join('.')}: ${i.message}`, { key, field: `clusterMetadata.${i.path.join('.')}` });
  }
  return r.data;
}

/**
 * Pure: what a node restores from a cluster restore point — the same metadata entry on every node, and the
 * partitions (all of them, `local` marking this node's replicas). Throws CONFLICT when `nodeId` is not a member of
 * the restored cluster (a cold start must run with the node ids the backup knows).
 */
export function planClusterRestore(snap: MetadataSnapshot, meta: ClusterMetadata, nodeId: number, restorePointKey: string): ClusterRestorePlan {
  const removed = new Set(meta.removed ?? []);
  const metaVoters = sorted(Object.values(meta.brokers).map((b) => b.nodeId).filter((id) => !removed.has(id)));
  if (!metaVoters.includes(nodeId)) {
    throw new LanceError('CONFLICT', `nodeId: node ${nodeId} is not a member of the cluster in restore point ${restorePointKey} (members: ${metaVoters.join(', ') || 'none'}); start the restored cluster with the node ids it had`, { field: 'nodeId', members: metaVoters });
  }
  const partitions: PlannedPartition[] = [];
  const ends = new Map<string, number>();
  const topics: Record<string, unknown> = {};
  for (const t of Object.values(meta.topics).sort((a, b) => a.id - b.id)) {
    t.assignment.forEach((replicas, p) => {
      const rep = t.leaders?.[p] ?? null;
      const sp = snap.partitions.find((x) => x.topic === t.name && x.partition === p);
      const remoteEnd = sp?.remoteEnd ?? 0;
      ends.set(`${t.name}\u0000${p}`, remoteEnd);
      partitions.push({
        topic: t.name, topicId: t.topicId, id: t.id, partition: p, replicas: [...replicas], local: replicas.includes(nodeId),
        config: rep ? { voters: sorted(rep.voters), learners: sorted(rep.learners) } : { voters: sorted(replicas), learners: [] },
        reportTerm: rep?.term ?? 0, remoteEnd,
      });
    });
    // leader reports start over: the restored groups elect anew (in a term above every reported one)
    topics[t.name] = { ...t, leaders: t.assignment.map(() => null) };
  }
  const groups: ClusterRestorePlan['groups'] = [];
  const groupSnap = snap.groups.map((g) => {
    let clamped = 0;
    const offsets = g.offsets.flatMap((o) => {
      const end = ends.get(`${o.topic}\u0000${o.partition}`);
      if (end === undefined) return [];
      // never beyond what the bucket held at the restore point: a consumer re-reads rather than skips records
      const offset = Math.min(o.offset, end);
      if (offset !== o.offset) clamped++;
      return [{ ...o, offset }];
    });
    groups.push({ groupId: g.groupId, offsets: offsets.length, clamped });
    return { groupId: g.groupId, protocolType: g.protocolType, protocol: null, generation: g.generation, leader: null, members: [], offsets };
  });
  const state = JSON.stringify({
    applied: 0, nextTopicId: meta.nextTopicId, topics, brokers: meta.brokers, removed: meta.removed ?? [],
    groups: { groups: groupSnap }, nextProducerId: snap.producerIdNext,
  });
  return {
    restorePoint: restorePointKey, metaVoters, metaTerm: Math.max(1, meta.metaTerm ?? 1), partitions,
    restoreCommand: encodeCommand({ op: 'restore', from: restorePointKey, state }), groups,
  };
}

/** Pure: the hard state and log start of a restored partition replica. */
export function partitionRaftState(
  log: { firstIndex: number; lastIndex: number; lastTerm: number; prevTerm: number; logStartOffset: number },
  p: Pick<PlannedPartition, 'config' | 'reportTerm'>, manifestTerm: number,
): { hardState: { term: number; vote: null; commit: number }; logStart: { index: number; term: number; nextOffset: number; config: { voters: number[]; learners: number[] } } | null } {
  // at least 1: every restored group has a persisted term (a restored node is not fresh storage for the vote hold)
  const term = Math.max(1, log.lastTerm, manifestTerm, p.reportTerm);
  return {
    hardState: { term, vote: null, commit: log.lastIndex },
    logStart: log.firstIndex > 1 ? { index: log.firstIndex - 1, term: log.prevTerm, nextOffset: log.logStartOffset, config: p.config } : null,
  };
}

export interface ClusterRestoreOptions {
  store: ObjectStore;
  dataDir: string;
  /** node.json's cluster id; default: the restore point's (the id a cluster with the same peers derives) */
  clusterId?: string;
  nodeId: number;
  /** the restore point (its restore-point.json key) the nodes agreed on; default: the newest readable one */
  restorePointKey?: string;
  concurrency?: number;
  logger?: Logger;
  progress?: RestoreProgress;
}

export interface ClusterRestoreReport {
  mode: 'cluster';
  from: string;
  restorePoint: { key: string; clusterId: string; takenAt: string; takenAtMs: number; node: number };
  clusterId: string;
  nodeId: number;
  metaTerm: number;
  metaVoters: number[];
  topics: Array<{ name: string; id: number; partitions: number }>;
  partitions: Array<{ topic: string; partition: number; firstIndex: number; lastIndex: number; term: number; logStartOffset: number; nextOffset: number; segments: number; bytes: number; snapshotHighWatermark: number }>;
  groups: ClusterRestorePlan['groups'];
  producerIdNext: number;
  bytes: number;
  objects: number;
  durationMs: number;
  warnings: string[];
}

/** Reads and checks a restore point by key (CORRUPT / NOT_FOUND naming it). */
async function loadRestorePoint(store: ObjectStore, key: string): Promise<RestorePoint> {
  return decodeRestorePoint(key, await store.get(key));
}

async function writeHardState(dir: string, hs: { term: number; vote: null; commit: number }): Promise<void> {
  await atomicWriteJson(path.join(dir, HARD_STATE_FILE), hs);
}

/**
 * Restores this node's share of a cluster into a fresh `dataDir` (see the file comment). Throws CONFLICT for a data
 * dir with data in it, NOT_FOUND without a restore point, CORRUPT for a damaged object.
 */
export async function restoreClusterNode(opts: ClusterRestoreOptions): Promise<ClusterRestoreReport> {
  const t0 = Date.now();
  const { store, dataDir } = opts;
  const log = opts.logger?.child({ component: 'restore' });
  const entries = await readDirOrEmpty(dataDir);
  if (!entries.includes(RESTORE_MARKER) && !isFreshDataDir(entries)) {
    throw new LanceError('CONFLICT', `--data-dir ${dataDir}: not empty (${entries.slice(0, 5).join(', ')}); a restore writes a fresh data dir — move this one away first`, { path: dataDir });
  }
  const key = opts.restorePointKey ?? (await findRestorePoint(store, opts.clusterId !== undefined ? { clusterId: opts.clusterId } : {})).key;
  const rp = await loadRestorePoint(store, key);
  const snap = decodeSnapshot(rp.snapshot.key, await store.get(rp.snapshot.key), rp.snapshot);
  const meta = parseClusterMetadata(snap, key);
  const plan = planClusterRestore(snap, meta, opts.nodeId, key);
  const clusterId = opts.clusterId ?? snap.clusterId;
  log?.info({ from: store.url, restorePoint: key, takenAt: rp.takenAt, topics: Object.keys(meta.topics).length, groups: snap.groups.length, replicas: plan.partitions.filter((p) => p.local).length }, 'restoring this node of the cluster');

  await mkdirDurable(dataDir);
  await wipeForRestore(dataDir);
  await atomicWriteJson(path.join(dataDir, RESTORE_MARKER), { restorePoint: key, from: store.url, mode: 'cluster', startedAt: new Date(t0).toISOString() });

  // the newest manifest of every local replica (the bucket is static while the whole cluster is down)
  const concurrency = opts.concurrency ?? 8;
  const local = plan.partitions.filter((p) => p.local);
  const manifests = new Map<PlannedPartition, Manifest | null>();
  await pool(local, concurrency, async (p) => {
    const ref: PartitionRef = { clusterId: snap.clusterId, topicId: p.topicId, partition: p.partition };
    manifests.set(p, (await loadNewestManifest(store, ref, log)).manifest);
  });
  const warnings: string[] = [];
  const tasks: DownloadTask[] = [];
  const perPartition: Array<{ p: PlannedPartition; dir: string; segments: number; bytes: number }> = [];
  for (const p of local) {
    const m = manifests.get(p) ?? null;
    const dl = planPartitionDownload(m?.segments ?? []);
    if (dl.skippedBeforeGap > 0) warnings.push(`${p.topic}-${p.partition}: ${dl.skippedBeforeGap} remote segment(s) before a gap in the offsets were not restored`);
    const dir = path.join(dataDir, `topic_${p.id}`, String(p.partition));
    await mkdirDurable(dir);
    let bytes = 0;
    for (const s of dl.segments) {
      const stem = path.join(dir, segmentFileName(s.baseOffset).replace(/\.lnc$/, ''));
      tasks.push({ key: s.data.key, size: s.data.size, crc32c: s.data.crc32c, file: `${stem}.lnc` });
      if (s.idx) tasks.push({ key: s.idx.key, size: s.idx.size, crc32c: s.idx.crc32c, file: `${stem}.idx` });
      if (s.tix) tasks.push({ key: s.tix.key, size: s.tix.size, crc32c: s.tix.crc32c, file: `${stem}.tix` });
      bytes += s.data.size + (s.idx?.size ?? 0) + (s.tix?.size ?? 0);
    }
    perPartition.push({ p, dir, segments: dl.segments.length, bytes });
  }
  const total = tasks.reduce((n, t) => n + t.size, 0);
  opts.progress?.start(total);
  try {
    await pool([...tasks].sort((a, b) => b.size - a.size), concurrency, (t) => download(store, t, (n) => opts.progress?.advance(n)));
  } finally {
    opts.progress?.done();
  }

  // each replica: open (the storage engine's recovery checks the files), then its Raft state
  const restored: ClusterRestoreReport['partitions'] = [];
  await pool(perPartition, Math.min(4, concurrency), async ({ p, dir, segments, bytes }) => {
    await fsyncDir(dir);
    const plog = await PartitionLog.open(dir, { flush: { mode: 'every-entry' } }, log?.child({ topic: p.topic, partition: p.partition }));
    try {
      if (plog.lastIndex < plog.firstIndex) {
        // nothing in the bucket: the group starts with its membership as entry 1 (the same on every replica)
        const r = plog.append([{ type: EntryType.CONFIG, term: 0, offsetCount: 0, maxTimestamp: -1, payload: Buffer.from(encodeConfig(p.config)) }]);
        await r.durable;
      }
      const st = partitionRaftState({
        firstIndex: plog.firstIndex, lastIndex: plog.lastIndex, lastTerm: plog.lastTerm, prevTerm: await plog.termAt(plog.firstIndex - 1),
        logStartOffset: plog.logStartOffset,
      }, p, manifests.get(p)?.term ?? 0);
      if (st.logStart) await atomicWriteJson(path.join(dir, LOG_START_FILE), st.logStart);
      await writeHardState(dir, st.hardState);
      restored.push({
        topic: p.topic, partition: p.partition, firstIndex: plog.firstIndex, lastIndex: plog.lastIndex, term: st.hardState.term,
        logStartOffset: plog.logStartOffset, nextOffset: plog.nextOffset, segments, bytes,
        snapshotHighWatermark: snap.partitions.find((x) => x.topic === p.topic && x.partition === p.partition)?.highWatermark ?? 0,
      });
    } finally {
      await plog.close();
    }
  });
  restored.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);

  // the metadata group: CONFIG + the restore command, committed (identical on every node)
  const walDir = path.join(dataDir, 'wal');
  await mkdirDurable(walDir);
  const wal = await PartitionLog.open(walDir, { flush: { mode: 'every-entry' } }, log?.child({ group: '__meta' }));
  try {
    const r = wal.append([
      { type: EntryType.CONFIG, term: 0, offsetCount: 0, maxTimestamp: -1, payload: Buffer.from(encodeConfig({ voters: plan.metaVoters, learners: [] })) },
      { type: EntryType.CONTROL, term: plan.metaTerm, offsetCount: 0, maxTimestamp: -1, payload: Buffer.from(plan.restoreCommand) },
    ]);
    await r.durable;
  } finally {
    await wal.close();
  }
  await writeHardState(walDir, { term: plan.metaTerm, vote: null, commit: 2 });

  const report: ClusterRestoreReport = {
    mode: 'cluster', from: store.url,
    restorePoint: { key, clusterId: snap.clusterId, takenAt: rp.takenAt, takenAtMs: rp.takenAtMs, node: rp.node },
    clusterId, nodeId: opts.nodeId, metaTerm: plan.metaTerm, metaVoters: plan.metaVoters,
    topics: Object.values(meta.topics).sort((a, b) => a.id - b.id).map((t) => ({ name: t.name, id: t.id, partitions: t.assignment.length })),
    partitions: restored, groups: plan.groups, producerIdNext: snap.producerIdNext,
    bytes: total, objects: tasks.length, durationMs: Date.now() - t0, warnings,
  };
  await atomicWriteJson(path.join(dataDir, RESTORE_INFO), { ...report, finishedAt: new Date().toISOString() });
  // node.json last: from here on the data dir is a normal one (a restarted node's, not a wiped one's)
  await atomicWriteJson(path.join(dataDir, NODE_FILE), { version: 1, clusterId, nodeId: opts.nodeId, createdAt: new Date().toISOString() });
  await fsp.rm(path.join(dataDir, RESTORE_MARKER), { force: true });
  await fsyncDir(dataDir);
  log?.info({ restorePoint: key, topics: report.topics.length, replicas: restored.length, groups: plan.groups.length, bytes: total, durationMs: report.durationMs }, 'cluster node restore complete');
  return report;
}

/** The restore-info.json of a data dir restored in cluster layout (null when there is none or it is another kind). */
export async function readClusterRestoreInfo(dataDir: string): Promise<{ restorePoint: string; takenAtMs: number; finishedAt: string } | null> {
  try {
    const raw = JSON.parse(await fsp.readFile(path.join(dataDir, RESTORE_INFO), 'utf8')) as { mode?: unknown; restorePoint?: { key?: unknown; takenAtMs?: unknown }; finishedAt?: unknown };
    if (raw.mode !== 'cluster' || typeof raw.restorePoint?.key !== 'string') return null;
    return { restorePoint: raw.restorePoint.key, takenAtMs: typeof raw.restorePoint.takenAtMs === 'number' ? raw.restorePoint.takenAtMs : 0, finishedAt: String(raw.finishedAt ?? '') };
  } catch (e) {
    if (isLanceError(e) || (e as NodeJS.ErrnoException).code === 'ENOENT' || e instanceof SyntaxError) return null;
    throw e;
  }
}
