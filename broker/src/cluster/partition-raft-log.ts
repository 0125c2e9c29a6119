/**
 * RaftLog over a PartitionLog: the partition's segment log IS its Raft log (and `<data>/wal/` is the metadata
 * group's). The Raft core calls the RaftLog synchronously; PartitionLog writes are partly asynchronous
 * (truncation), so this adapter keeps an in-memory view (term runs for every index, the recent tail of entries)
 * that the core reads at once, and a strictly ordered queue of storage operations behind it.
 *
 * Persistence (broker/src/raft/README.md, "Persistence contract"): `persist(req)` waits for every queued storage
 * operation, then fsyncs the log (PartitionLog.flush: one fsync covers everything appended so far, across requests,
 * i.e. group commit), and only then writes the hard state `raft.json` {term, vote, commit} atomically
 * (temp → fsync → rename → fsync dir). A hard state therefore never reaches disk before its own log writes.
 *
 * Offsets: every node appends with PartitionLog.append (offsets assigned from the log's own next offset). Offsets
 * are a pure function of the log prefix (each DATA entry occupies its batch's lastOffsetDelta+1 offsets), so leader
 * and followers assign identical offsets to identical logs without carrying them on the wire.
 *
 * Truncation (a follower drops a divergent suffix): the removed entries are written to `<data>/quarantine/` (a file
 * per event, framing in `encodeQuarantine` below) — staged durably BEFORE the log changes and moved into quarantine/
 * after (`stageQuarantine`), so a crash at any point leaves each removed entry in the log or in quarantine/. A segment
 * install quarantines the divergent entries it replaces the same way, the staged file written before install.json.
 *
 * Snapshots = segment transfer (partition groups with `transfer` options; README "Segment transfer"): the log
 * presents a snapshot floor (`snapshotIndex()`): the last index of a committed sealed segment followed by at least
 * `minTailBytes` of log (segment-transfer.ts `chooseSnapshotFloor`), or the log start after retention. term() is
 * undefined below it, so the core sends a follower that needs older entries a Snapshot whose data is a
 * SnapshotDescriptor (the sealed segments [log start, floor]). `installSnapshot` on the follower queues an install
 * operation: pull the missing segments into `incoming/` (verified, fsynced), write `install.json` (the commit
 * point), swap the files, write `snapshot.json` (the log start: index, term, offset, membership), reopen the
 * PartitionLog (indexes rebuilt). A crash before `install.json` leaves the old log (the leader re-sends the
 * snapshot; verified staged segments are reused); after it, `open()` completes the swap. Retention
 * (`enforceRetention`) deletes only sealed segments at or below the floor, writing `snapshot.json` first.
 * The metadata group (`__meta`, no `transfer`) never has a floor: its state machine is not its log.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LanceError } from '../common/errors.ts';
import { atomicWriteJson, fsyncDir, mkdirDurable } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import type { HardState, PersistRequest, RaftEntry, RaftLog, SnapshotMeta } from '../raft/types.ts';
import { crc32c } from '@node-rs/crc32';
import { decodeConfig } from '../raft/config.ts';
import type { ClusterConfig, NodeId } from '../raft/types.ts';
import { encodeEntry, ENTRY_CRC_BYTES, ENTRY_HEAD_BYTES } from '../storage/export-format.ts';
import { PartitionLog, planRetention, segmentFileName } from '../storage/partition-log.ts';
import { SegmentScanner } from '../storage/segment-format.ts';
import { EntryType, type LogOptions, type NewEntry, type RetentionPolicy, type SegmentInfo, type StoredEntry } from '../storage/types.ts';
import {
  chooseSnapshotFloor, copyConfig, DEFAULT_CHUNK_BYTES, decodeDescriptor, encodeDescriptor, fetchSegment, LogStartSchema, planInstall,
  readChunk, stagedName, type ChunkRequest, type FetchChunk, type LogStart, type SegmentRef, type SegmentTransferMetrics, type SnapshotDescriptor,
} from './segment-transfer.ts';

export const HARD_STATE_FILE = 'raft.json';
/** the log start after retention or a segment install: {index, term, nextOffset, config} (LogStart) */
export const SNAPSHOT_FILE = 'snapshot.json';
/** a segment install past its commit point: {descriptor, keep} — open() completes it */
export const INSTALL_FILE = 'install.json';
export const STAGING_DIR = 'incoming';
const SEGMENT_FILE_RE = /^(\d{20})\.(lnc|idx|tix)$/;
const EMPTY_START: LogStart = { index: 0, term: 0, nextOffset: 0, config: { voters: [], learners: [] } };
export const QUARANTINE_MAGIC = Buffer.from('LNCQUAR1', 'latin1');

/** Pure: the NewEntry a Raft entry is stored as (DATA: offsets and max timestamp from the RecordBatch header). */
export function toNewEntry(e: RaftEntry): NewEntry {
  const payload = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  if (e.type === EntryType.DATA) {
    if (payload.length < 61) throw new LanceError('CORRUPT', `raft entry ${e.index}: DATA payload of ${payload.length} bytes is shorter than a RecordBatch header`, { index: e.index });
    const offsetCount = payload.readInt32BE(23) + 1;
    const maxTimestamp = Number(payload.readBigInt64BE(35));
    return { type: e.type, term: e.term, offsetCount, maxTimestamp: Math.max(-1, maxTimestamp), payload };
  }
  return { type: e.type, term: e.term, offsetCount: 0, maxTimestamp: -1, payload };
}

export function fromStored(e: StoredEntry): RaftEntry {
  return { term: e.term, index: e.index, type: e.type, data: e.payload };
}

/** offsets a Raft entry occupies (DATA: lastOffsetDelta + 1; others 0) */
export function offsetCountOf(e: RaftEntry): number {
  if (e.type !== EntryType.DATA || e.data.byteLength < 27) return 0;
  return Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).readInt32BE(23) + 1;
}

interface TermRun { start: number; term: number }

/** Pure helpers over term runs (sorted by start; a run covers [start, next.start)). */
export function termOf(runs: readonly TermRun[], index: number, lastIndex: number): number | undefined {
  if (index === 0) return 0;
  if (index < 0 || index > lastIndex) return undefined;
  let lo = 0;
  let hi = runs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid]!.start <= index) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found < 0 ? undefined : runs[found]!.term;
}

export function truncateRuns(runs: TermRun[], lastKept: number): void {
  while (runs.length > 0 && runs[runs.length - 1]!.start > lastKept) runs.pop();
}

export function extendRuns(runs: TermRun[], index: number, term: number): void {
  const last = runs[runs.length - 1];
  if (!last || last.term !== term) runs.push({ start: index, term });
}

export interface QuarantineInfo {
  group: string;
  truncatedAfter: number;
  entries: number;
  file: string;
}

/**
 * Quarantine file framing: "LNCQUAR1" | u32 BE header length | JSON header {group, truncatedAfter, prevTerm, entries,
 * firstIndex, lastIndex, firstOffset, nextOffset, terms, at} | the entries, each in the export format's entry
 * encoding (storage/export-format.ts encodeEntry: type, term, index, firstOffset, offsetCount, maxTimestamp,
 * payload, crc32c).
 */
export function encodeQuarantine(group: string, truncatedAfter: number, removed: readonly StoredEntry[], prevTerm = 0): Buffer {
  const header = Buffer.from(JSON.stringify({
    group, truncatedAfter, prevTerm, entries: removed.length,
    firstIndex: removed[0]?.index ?? 0, lastIndex: removed[removed.length - 1]?.index ?? 0,
    firstOffset: removed[0]?.firstOffset ?? 0,
    nextOffset: removed.length ? removed[removed.length - 1]!.firstOffset + removed[removed.length - 1]!.offsetCount : 0,
    terms: [...new Set(removed.map((e) => e.term))], at: new Date().toISOString(),
  }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length, 0);
  return Buffer.concat([QUARANTINE_MAGIC, len, header, ...removed.map(encodeEntry)]);
}

function quarantineBaseName(group: string, truncatedAfter: number): string {
  return `${group.replace(/[^A-Za-z0-9._-]/g, '_')}-after-${truncatedAfter}-${Date.now()}.q`;
}

/** Writes `data` to `file` durably: temp → fsync → rename → fsync(dir). */
async function writeDurable(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** Writes a quarantine file straight into `<dataDir>/quarantine/` (durable; see encodeQuarantine for the framing). */
export async function writeQuarantine(dataDir: string, group: string, truncatedAfter: number, removed: readonly StoredEntry[], prevTerm = 0): Promise<QuarantineInfo> {
  const dir = path.join(dataDir, 'quarantine');
  await mkdirDurable(dir);
  const file = path.join(dir, quarantineBaseName(group, truncatedAfter));
  await writeDurable(file, encodeQuarantine(group, truncatedAfter, removed, prevTerm));
  return { group, truncatedAfter, entries: removed.length, file };
}

/**
 * Crash-safe quarantine for an operation that removes entries from the log (a truncation, a segment install):
 * 1. `stageQuarantine` writes the entries durably to `<partition dir>/quarantine-pending-<name>` BEFORE the
 *    operation changes the log;
 * 2. the operation runs (its own commit point: install.json, or the truncation itself);
 * 3. `finalizeQuarantine` renames the file into `<dataDir>/quarantine/<name>` (fsync of both directories).
 * After a crash, open() decides per pending file with `pendingQuarantineAction`: if the log still holds the
 * entries (the operation never took effect) the pending file is dropped, otherwise it is finalized. Either way
 * every removed entry is in the log or in quarantine/ — never in neither.
 */
export const QUARANTINE_PENDING_PREFIX = 'quarantine-pending-';

export async function stageQuarantine(partitionDir: string, group: string, truncatedAfter: number, removed: readonly StoredEntry[], prevTerm = 0): Promise<string> {
  const file = path.join(partitionDir, QUARANTINE_PENDING_PREFIX + quarantineBaseName(group, truncatedAfter));
  await writeDurable(file, encodeQuarantine(group, truncatedAfter, removed, prevTerm));
  return file;
}

/** Moves a staged quarantine file into `<dataDir>/quarantine/` (idempotent once the rename happened). */
export async function finalizeQuarantine(pending: string, dataDir: string): Promise<string> {
  const dir = path.join(dataDir, 'quarantine');
  await mkdirDurable(dir);
  const target = path.join(dir, path.basename(pending).slice(QUARANTINE_PENDING_PREFIX.length));
  await fsp.rename(pending, target);
  await fsyncDir(dir);
  await fsyncDir(path.dirname(pending));
  return target;
}

/**
 * Pure recovery decision for a staged quarantine file found at open: `drop` when the log still holds its last
 * entry with the same term (Raft log matching: then it holds all of them — the removal never took effect),
 * else `finalize` (the removal happened, completely or in part: the file is the only copy of those entries).
 */
export function pendingQuarantineAction(q: { lastIndex: number; lastTerm: number }, log: { firstIndex: number; lastIndex: number }, termThere: number | undefined): 'drop' | 'finalize' {
  if (q.lastIndex < log.firstIndex || q.lastIndex > log.lastIndex) return 'finalize';
  return termThere === q.lastTerm ? 'drop' : 'finalize';
}

export interface QuarantineHeader {
  group: string;
  truncatedAfter: number;
  /** term of entry truncatedAfter (the last one kept) */
  prevTerm: number;
  entries: number;
  firstIndex: number;
  lastIndex: number;
  firstOffset: number;
  nextOffset: number;
  terms: number[];
  at: string;
}

/** Parses a quarantine file (see writeQuarantine). Every problem is CORRUPT naming the byte position. */
export function readQuarantine(buf: Buffer, what: string): { header: QuarantineHeader; entries: StoredEntry[] } {
  const bad = (pos: number, msg: string): never => {
    throw new LanceError('CORRUPT', `${what}: byte ${pos}: ${msg}`, { path: what, position: pos });
  };
  if (buf.length < 12 || !buf.subarray(0, 8).equals(QUARANTINE_MAGIC)) bad(0, 'not a quarantine file (magic "LNCQUAR1" missing)');
  const hl = buf.readUInt32BE(8);
  if (12 + hl > buf.length) bad(8, `header length ${hl} runs past the end (${buf.length} bytes)`);
  let header: QuarantineHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + hl)) as QuarantineHeader;
  } catch {
    return bad(12, 'header is not JSON');
  }
  const entries: StoredEntry[] = [];
  let pos = 12 + hl;
  while (pos < buf.length) {
    if (pos + ENTRY_HEAD_BYTES > buf.length) bad(pos, 'truncated entry header');
    const len = buf.readUInt32BE(pos + ENTRY_HEAD_BYTES - 4);
    const end = pos + ENTRY_HEAD_BYTES + len;
    if (end + ENTRY_CRC_BYTES > buf.length) bad(pos, `entry payload of ${len} bytes runs past the end`);
    if ((crc32c(buf.subarray(pos, end)) >>> 0) !== buf.readUInt32BE(end)) bad(pos, 'entry crc32c mismatch');
    entries.push({
      type: buf.readUInt8(pos) as StoredEntry['type'], term: Number(buf.readBigInt64BE(pos + 1)), index: Number(buf.readBigInt64BE(pos + 9)),
      firstOffset: Number(buf.readBigInt64BE(pos + 17)), offsetCount: buf.readUInt32BE(pos + 25), maxTimestamp: Number(buf.readBigInt64BE(pos + 29)),
      payload: Buffer.from(buf.subarray(pos + ENTRY_HEAD_BYTES, end)),
    });
    pos = end + ENTRY_CRC_BYTES;
  }
  if (entries.length !== header.entries) bad(pos, `header says ${header.entries} entries, found ${entries.length}`);
  return { header, entries };
}

export interface PartitionRaftLogOptions {
  dir: string;
  /** node data dir: quarantine files go to `<dataDir>/quarantine/` */
  dataDir: string;
  group: string;
  logOptions?: Partial<LogOptions>;
  logger: Logger;
  /** bytes of the log tail kept in memory for replication (default 64 MiB) */
  cacheBytes?: number;
  onQuarantine?: (q: QuarantineInfo) => void;
  /** partition groups: catch-up by segment transfer and retention (absent for the metadata group) */
  transfer?: TransferOptions;
  /** tests only: called at each durable step of a truncation or install; a throw there simulates a crash */
  faultHook?: (step: RemovalStep) => void;
}

/** durable steps of the operations that remove entries (see stageQuarantine) */
export type RemovalStep = 'install:quarantine-staged' | 'install:committed' | 'install:swapped' | 'install:quarantine-final' | 'truncate:quarantine-staged' | 'truncate:truncated';

export interface TransferOptions {
  nodeId: NodeId;
  /** pulls one chunk of a segment from a peer (the transport's binary RPC) */
  fetch: FetchChunk;
  /** the group's current leader (second source when the descriptor's source fails) */
  leaderHint: () => NodeId | null;
  /** a follower within this many bytes of the log end gets entries, not segments (default: 1 segment) */
  minTailBytes?: number;
  chunkBytes?: number;
  metrics?: SegmentTransferMetrics;
}

type Op =
  | { kind: 'append'; entries: RaftEntry[] }
  | { kind: 'truncate'; after: number; prevTerm: number }
  | { kind: 'install'; meta: SnapshotMeta; d: SnapshotDescriptor; gen: number }
  | { kind: 'retention'; run: () => Promise<void> };

/**
 * Completes a segment install whose `install.json` is durable (idempotent; open() calls it after a crash):
 * staged segments renamed into place (their old index files removed), every other segment file removed, the log
 * start written to snapshot.json, then install.json and the staging dir removed. An empty descriptor (the log
 * starts right after the snapshot point) leaves no segment: the caller resets the opened log to that position.
 */
export async function completeInstall(dir: string, d: SnapshotDescriptor, hook?: (step: RemovalStep) => void): Promise<void> {
  const staging = path.join(dir, STAGING_DIR);
  const want = new Set(d.segments.map((r) => r.baseOffset));
  for (const r of d.segments) {
    const staged = path.join(staging, stagedName(r));
    const exists = await fsp.stat(staged).then(() => true, () => false);
    if (!exists) continue;
    const target = path.join(dir, segmentFileName(r.baseOffset));
    for (const ext of ['.idx', '.tix']) await fsp.rm(target.replace(/\.lnc$/, ext), { force: true });
    await fsp.rename(staged, target);
  }
  for (const n of await fsp.readdir(dir)) {
    const m = SEGMENT_FILE_RE.exec(n);
    if (m && !want.has(Number(m[1]))) await fsp.rm(path.join(dir, n), { force: true });
  }
  await fsyncDir(dir);
  hook?.('install:swapped');
  if (d.logStart.index > 0) await atomicWriteJson(path.join(dir, SNAPSHOT_FILE), d.logStart);
  else await fsp.rm(path.join(dir, SNAPSHOT_FILE), { force: true });
  await fsp.rm(path.join(dir, INSTALL_FILE), { force: true });
  await fsyncDir(dir);
  await fsp.rm(staging, { recursive: true, force: true });
}

/**
 * Terms of the log a pending install will produce, for indexes [lo, hi] (undefined outside the installed range):
 * boundaries from the descriptor, entries inside from the verified staged segments (kept segments are the local
 * log's own: the caller does not ask for those, they are at or below the kept prefix).
 */
async function stagedTerms(staging: string, d: SnapshotDescriptor, lo: number, hi: number): Promise<(i: number) => number | undefined> {
  const terms = new Map<number, number>();
  terms.set(d.logStart.index, d.logStart.term);
  for (const r of d.segments) {
    terms.set(r.baseIndex - 1, r.prevTerm);
    terms.set(r.lastIndex, r.lastTerm);
    if (r.lastIndex < lo - 1 || r.baseIndex > hi) continue;
    const file = path.join(staging, stagedName(r));
    if (!(await fsp.stat(file).then(() => true, () => false))) continue;
    const sc = await SegmentScanner.open(file);
    try {
      for (let m = await sc.next(); m; m = await sc.next()) if (m.index >= lo - 1 && m.index <= hi) terms.set(m.index, m.term);
      if (sc.error) throw new LanceError('CORRUPT', `${file}: staged segment unreadable at byte ${sc.error.position}: ${sc.error.reason}`, { path: file, position: sc.error.position });
    } finally {
      await sc.close();
    }
  }
  return (i) => (i < d.logStart.index || i > d.index ? undefined : terms.get(i));
}

/**
 * open(): staged quarantine files of a truncation or install interrupted by a crash (after any interrupted
 * install was completed): dropped when the log still holds their entries, else moved into quarantine/.
 */
async function recoverPendingQuarantine(opts: PartitionRaftLogOptions, pl: PartitionLog): Promise<void> {
  const names = (await fsp.readdir(opts.dir)).filter((n) => n.startsWith(QUARANTINE_PENDING_PREFIX));
  for (const n of names) {
    const file = path.join(opts.dir, n);
    if (n.endsWith('.tmp')) {
      await fsp.rm(file, { force: true }); // never renamed: the operation had not started
      continue;
    }
    const { header, entries } = readQuarantine(await fsp.readFile(file), file);
    const last = entries[entries.length - 1];
    const termThere = last && last.index >= pl.firstIndex && last.index <= pl.lastIndex ? await pl.termAt(last.index) : undefined;
    const action = last ? pendingQuarantineAction({ lastIndex: last.index, lastTerm: last.term }, { firstIndex: pl.firstIndex, lastIndex: pl.lastIndex }, termThere) : 'drop';
    if (action === 'drop') {
      await fsp.rm(file, { force: true });
      await fsyncDir(opts.dir);
      opts.logger.info({ group: opts.group, file }, 'dropped the staged quarantine of an interrupted truncation/install: the log still holds its entries');
    } else {
      const q = await finalizeQuarantine(file, opts.dataDir);
      opts.logger.warn({ group: opts.group, truncatedAfter: header.truncatedAfter, entries: entries.length, file: q }, 'completed the quarantine of an interrupted truncation/install');
      opts.onQuarantine?.({ group: opts.group, truncatedAfter: header.truncatedAfter, entries: entries.length, file: q });
    }
  }
}

async function readJsonFile(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LanceError('CORRUPT', `${file}: not readable JSON (${(e as Error).message})`, { path: file });
  }
}

export class PartitionRaftLog implements RaftLog {
  /** replaced when a segment install reopens the log: read it each time, don't keep it */
  pl: PartitionLog;
  readonly hardState: HardState;
  private readonly opts: PartitionRaftLogOptions;
  private runs: TermRun[] = [];
  /** the point before the first entry of the view (log start, or the snapshot point of an install in progress) */
  private base: LogStart = EMPTY_START;
  /** CONFIG entries of the view after `base` */
  private configs: Array<{ index: number; config: ClusterConfig }> = [];

  /** the snapshot floor (see the file comment) and the offset after it */
  private floor = 0;
  private floorNext = 0;
  private floorAt = -Infinity;
  /** the install in progress (its descriptor is this node's snapshot until it completes) */
  private installing: SnapshotDescriptor | null = null;
  /** the staged quarantine file of the running install until its commit point (install.json) */
  private uncommittedQuarantine: string | null = null;
  /** the new log start of a retention pass while its segments are being deleted (see snapshot()) */
  private retentionStart: LogStart | null = null;
  private installGen = 0;
  private closing = false;
  private last = 0;
  /** the in-memory tail: entries [cacheStart, last] (cacheStart > last when empty) */
  private cache: RaftEntry[] = [];
  private cacheStart = 1;
  private cacheBytes = 0;
  /** first Kafka offset of each cached entry (parallel to `cache`) */
  private cacheOffsets: number[] = [];
  private _nextOffset = 0;
  /** true after a truncation below the cache until storage caught up (offsets recomputed from the PartitionLog) */
  private offsetUnknown = false;
  /** an older range loaded on demand (replication to a lagging follower) */
  private loaded: RaftEntry[] = [];
  private loading: { lo: number } | null = null;
  private generation = 0;
  private ops: Op[] = [];
  private chain: Promise<void> = Promise.resolve();
  private failed: unknown = null;
  /** called when an asynchronously loaded range became readable (the host calls node.logReadable()) */
  onReadable: () => void = () => undefined;

  private constructor(pl: PartitionLog, hs: HardState, opts: PartitionRaftLogOptions) {
    this.pl = pl;
    this.hardState = hs;
    this.opts = opts;
  }

  static async open(opts: PartitionRaftLogOptions): Promise<PartitionRaftLog> {
    await mkdirDurable(opts.dir);
    // a segment install past its commit point: finish it before the log is opened
    const pending = await readJsonFile(path.join(opts.dir, INSTALL_FILE)) as { descriptor?: unknown } | undefined;
    let emptyInstall: SnapshotDescriptor | null = null;
    if (pending !== undefined) {
      const d = decodeDescriptor(Buffer.from(JSON.stringify(pending.descriptor ?? null)), path.join(opts.dir, INSTALL_FILE));
      await completeInstall(opts.dir, d);
      if (d.segments.length === 0) emptyInstall = d;
      opts.logger.warn({ dir: opts.dir, index: d.index }, 'completed an interrupted segment install');
    } else {
      // fetched but uncommitted: keep verified staged segments for reuse, drop partial ones
      const staging = path.join(opts.dir, STAGING_DIR);
      for (const n of await fsp.readdir(staging).catch(() => [] as string[])) if (!n.endsWith('.seg')) await fsp.rm(path.join(staging, n), { force: true });
    }
    const pl = await PartitionLog.open(opts.dir, { ...opts.logOptions, retention: { retentionBytes: 0, retentionMs: 0 } }, opts.logger);
    if (emptyInstall) await pl.reset({ baseOffset: emptyInstall.nextOffset, baseIndex: emptyInstall.index + 1, prevTerm: emptyInstall.term });
    let base = EMPTY_START;
    const snapRaw = await readJsonFile(path.join(opts.dir, SNAPSHOT_FILE));
    if (snapRaw !== undefined) {
      const r = LogStartSchema.safeParse(snapRaw);
      if (!r.success) throw new LanceError('CORRUPT', `${path.join(opts.dir, SNAPSHOT_FILE)}: field ${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`, { path: path.join(opts.dir, SNAPSHOT_FILE) });
      base = r.data;
      // retention wrote the new log start, then crashed before deleting every segment below it: finish
      if (pl.firstIndex - 1 < base.index) await pl.truncateBeforeOffset(base.nextOffset);
      // an install of an empty descriptor (the log starts after the snapshot point) crashed before its reset
      if (pl.lastIndex < pl.firstIndex && pl.firstIndex - 1 !== base.index) await pl.reset({ baseOffset: base.nextOffset, baseIndex: base.index + 1, prevTerm: base.term });
    }
    if (pl.firstIndex - 1 !== base.index || pl.logStartOffset !== base.nextOffset) {
      await pl.close().catch(() => undefined);
      throw new LanceError('CORRUPT', `${opts.dir}: the log starts at raft index ${pl.firstIndex} (offset ${pl.logStartOffset}) but ${SNAPSHOT_FILE} says ${base.index + 1} (offset ${base.nextOffset}); run \`lnc verify-data\``, { path: opts.dir });
    }
    await recoverPendingQuarantine(opts, pl);
    let hs: HardState = { term: 0, vote: null, commit: 0 };
    try {
      const raw = JSON.parse(await fsp.readFile(path.join(opts.dir, HARD_STATE_FILE), 'utf8')) as Partial<HardState>;
      if (typeof raw.term === 'number' && typeof raw.commit === 'number' && (raw.vote === null || typeof raw.vote === 'number')) {
        hs = { term: raw.term, vote: raw.vote, commit: raw.commit };
      } else {
        throw new LanceError('CORRUPT', `${path.join(opts.dir, HARD_STATE_FILE)}: expected {term, vote, commit}`, { path: path.join(opts.dir, HARD_STATE_FILE) });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const log = new PartitionRaftLog(pl, hs, opts);
    log._nextOffset = pl.logStartOffset;
    log.base = base;
    log.last = base.index;
    log.cacheStart = base.index + 1;
    // Build the term runs (and the tail cache) with one scan: the core needs term(i) synchronously for any i.
    const limit = opts.cacheBytes ?? 64 << 20;
    for (let from = base.index + 1; from <= pl.lastIndex;) {
      const batch = await pl.readByIndex(from, 4096, 16 << 20);
      if (batch.length === 0) break;
      for (const e of batch) {
        extendRuns(log.runs, e.index, e.term);
        if (e.type === EntryType.CONFIG) log.configs.push({ index: e.index, config: decodeConfig(e.payload, `${opts.dir} entry ${e.index}`) });
        log.last = e.index;
        log.pushCache(fromStored({ ...e, payload: Buffer.from(e.payload) }), limit);
        log._nextOffset = e.firstOffset + e.offsetCount;
      }
      from = batch[batch.length - 1]!.index + 1;
    }
    log._nextOffset = pl.nextOffset;
    if (log.last !== pl.lastIndex) throw new LanceError('INTERNAL', `${opts.dir}: scanned to raft index ${log.last}, log ends at ${pl.lastIndex}`);
    log.refreshFloor();
    return log;
  }

  private pushCache(e: RaftEntry, limit = this.opts.cacheBytes ?? 64 << 20): void {
    if (this.cache.length === 0) this.cacheStart = e.index;
    this.cache.push(e);
    this.cacheOffsets.push(this._nextOffset);
    this.cacheBytes += e.data.byteLength + 64;
    // keep at least the last entry; drop the oldest beyond the budget (they are read back from disk on demand)
    let drop = 0;
    while (this.cacheBytes > limit && this.cache.length - drop > 1) {
      this.cacheBytes -= this.cache[drop]!.data.byteLength + 64;
      drop++;
    }
    if (drop > 0) {
      this.cache = this.cache.slice(drop);
      this.cacheOffsets = this.cacheOffsets.slice(drop);
      this.cacheStart += drop;
    }
  }

  // ------------------------------------------------------------------ RaftLog (synchronous view)

  snapshotIndex(): number { return this.floor; }
  snapshotTerm(): number { return this.rawTerm(this.floor) ?? 0; }
  lastIndex(): number { return this.last; }
  /** undefined below the snapshot floor: the core sends segments (a Snapshot) to a follower that needs those */
  term(index: number): number | undefined { return index < this.floor ? undefined : this.rawTerm(index); }

  /** the term of any entry of the view (ignores the floor) */
  rawTerm(index: number): number | undefined {
    if (index === this.base.index) return this.base.term;
    if (index < this.base.index) return undefined;
    return termOf(this.runs, index, this.last);
  }

  /** Kafka offset after the snapshot floor: the high watermark a restarted node starts applying from */
  get floorNextOffset(): number {
    return this.floorNext;
  }

  /** membership in force at `index` (≥ the log start) */
  configAt(index: number): ClusterConfig {
    let c: ClusterConfig = this.base.config;
    for (const x of this.configs) if (x.index <= index) c = x.config;
    return c;
  }

  /** Recomputes the snapshot floor (after persist: commit and segments changed; after retention/install). */
  refreshFloor(): void {
    if (!this.opts.transfer) {
      this.floor = this.base.index;
      this.floorNext = this.base.nextOffset;
      return;
    }
    if (this.installing) return; // stays at the install point until the segments are in place
    const segs = this.pl.segments();
    const start = this.storedStart();
    const commit = Math.min(this.hardState.commit, this.last, this.pl.lastIndex);
    const f = chooseSnapshotFloor(segs, start.index, commit, this.opts.transfer.minTailBytes ?? this.pl.options.segmentBytes);
    if (f === this.floor) return;
    this.floor = f;
    const seg = segs.findIndex((x) => x.firstIndex > 0 && x.lastIndex === f);
    this.floorNext = f === start.index || seg < 0 ? start.nextOffset : (segs[seg + 1]?.baseOffset ?? segs[seg]!.lastOffset + 1);
  }

  /**
   * The log start as stored: `base`, except while a retention pass deletes segments — the PartitionLog drops them
   * before the pass moves `base`, and in that window the stored log already starts at the pass's new start.
   */
  private storedStart(): LogStart {
    return this.retentionStart && this.pl.firstIndex - 1 === this.retentionStart.index ? this.retentionStart : this.base;
  }

  /** the sealed segments of the log up to `upTo` as transfer references (terms from the view) */
  private segmentRefs(upTo: number): SegmentRef[] {
    const out: SegmentRef[] = [];
    const segs = this.pl.segments();
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      if (s.firstIndex === 0 || s.lastIndex > upTo || !s.sealed) break;
      const prevTerm = this.rawTerm(s.firstIndex - 1);
      const lastTerm = this.rawTerm(s.lastIndex);
      if (prevTerm === undefined || lastTerm === undefined) break;
      out.push({ baseOffset: s.baseOffset, baseIndex: s.firstIndex, lastIndex: s.lastIndex, nextOffset: segs[i + 1]?.baseOffset ?? s.lastOffset + 1, prevTerm, lastTerm, size: s.sizeBytes });
    }
    return out;
  }

  entries(lo: number, hi: number, maxBytes: number): RaftEntry[] {
    hi = Math.min(hi, this.last + 1);
    if (lo >= hi) return [];
    const out: RaftEntry[] = [];
    let bytes = 0;
    let i = lo;
    const take = (e: RaftEntry): boolean => {
      if (out.length > 0 && bytes + e.data.byteLength > maxBytes) return false;
      out.push(e);
      bytes += e.data.byteLength;
      return true;
    };
    // older than the cache: serve from the loaded window, else load it asynchronously
    while (i < hi && i < this.cacheStart) {
      const first = this.loaded[0]?.index ?? 0;
      const e = first > 0 && i >= first ? this.loaded[i - first] : undefined;
      if (!e) {
        this.load(i);
        return out;
      }
      if (!take(e)) return out;
      i++;
    }
    while (i < hi) {
      const e = this.cache[i - this.cacheStart];
      if (!e || !take(e)) break;
      i++;
    }
    return out;
  }

  private load(lo: number): void {
    if (this.loading) return;
    this.loading = { lo };
    const gen = this.generation;
    // wait for queued writes so the read sees the log the view describes
    void this.chain.then(() => this.pl.readByIndex(lo, 8192, 8 << 20)).then((got) => {
      this.loading = null;
      if (gen !== this.generation) return;
      this.loaded = got.filter((e) => e.index < this.cacheStart).map((e) => fromStored({ ...e, payload: Buffer.from(e.payload) }));
      this.onReadable();
    }, (e: unknown) => {
      this.loading = null;
      this.opts.logger.error({ err: e, lo }, 'raft log: loading entries failed');
    });
  }

  append(entries: readonly RaftEntry[]): void {
    if (entries.length === 0) return;
    if (entries[0]!.index !== this.last + 1) throw new LanceError('INTERNAL', `raft log ${this.opts.group}: append at ${entries[0]!.index}, last index ${this.last}`);
    for (const e of entries) {
      extendRuns(this.runs, e.index, e.term);
      if (e.type === EntryType.CONFIG) this.configs.push({ index: e.index, config: decodeConfig(e.data, `${this.opts.group} entry ${e.index}`) });
      this.last = e.index;
      this.pushCache(e);
      this._nextOffset += offsetCountOf(e);
    }
    this.enqueue({ kind: 'append', entries: [...entries] });
  }

  truncateAfter(index: number): void {
    if (index >= this.last) return;
    const prevTerm = termOf(this.runs, index, this.last) ?? 0;
    this.generation++;
    this.loaded = [];
    truncateRuns(this.runs, index);
    while (this.configs.length > 0 && this.configs[this.configs.length - 1]!.index > index) this.configs.pop();
    this.last = index;
    if (index < this.cacheStart) {
      this.cache = [];
      this.cacheOffsets = [];
      this.cacheBytes = 0;
      this.cacheStart = index + 1;
      this.offsetUnknown = true;
    } else {
      const at = index + 1 - this.cacheStart;
      this._nextOffset = this.cacheOffsets[at]!;
      this.cacheOffsets.splice(at);
      for (const e of this.cache.splice(at)) this.cacheBytes -= e.data.byteLength + 64;
    }
    this.enqueue({ kind: 'truncate', after: index, prevTerm });
  }

  /**
   * The core's compact: a follower that already holds the snapshot's last entry (same index and term ⇒ the same
   * log up to there) keeps its log; the floor follows from commit and segments. Nothing to do on disk.
   */
  compact(meta: SnapshotMeta, data: Uint8Array): void {
    if (!this.opts.transfer) throw new LanceError('UNSUPPORTED', `raft log ${this.opts.group}: compaction of the metadata log is not supported`);
    decodeDescriptor(data, `raft log ${this.opts.group}`);
    void meta;
  }

  /** A snapshot from the leader: the view restarts at the snapshot point; the segments are pulled by the install op. */
  installSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (!this.opts.transfer) throw new LanceError('UNSUPPORTED', `raft log ${this.opts.group}: snapshot install is not supported for the metadata log`);
    const d = decodeDescriptor(data, `raft log ${this.opts.group}`);
    if (d.index !== meta.index || d.term !== meta.term) throw new LanceError('CORRUPT', `raft log ${this.opts.group}: snapshot descriptor (${d.index}/${d.term}) does not match its meta (${meta.index}/${meta.term})`, { field: 'snapshot.index' });
    this.generation++;
    this.loaded = [];
    this.cache = [];
    this.cacheOffsets = [];
    this.cacheBytes = 0;
    this.cacheStart = meta.index + 1;
    this.runs = [];
    this.configs = [];
    this.last = meta.index;
    this.base = { index: meta.index, term: meta.term, nextOffset: d.nextOffset, config: copyConfig(meta.config) };
    this._nextOffset = d.nextOffset;
    this.offsetUnknown = false;
    this.floor = meta.index;
    this.floorNext = d.nextOffset;
    this.installing = d;
    const gen = ++this.installGen;
    // queued (not started) writes belong to the replaced log; a running install notices the new generation
    this.ops = this.ops.filter((o) => o.kind === 'retention'); // those answer [] while installing
    this.enqueue({ kind: 'install', meta, d, gen });
  }

  snapshot(): { meta: SnapshotMeta; data: Uint8Array } | null {
    const t = this.opts.transfer;
    if (!t || this.floor === 0) return null;
    if (this.installing) return { meta: { index: this.installing.index, term: this.installing.term, config: this.base.config }, data: encodeDescriptor(this.installing) };
    const term = this.rawTerm(this.floor);
    if (term === undefined) return null;
    // the descriptor describes the segments as they are (see storedStart: a retention pass may be deleting some)
    const start = this.storedStart();
    if (this.floor < start.index) return null;
    const segments = this.floor === start.index ? [] : this.segmentRefs(this.floor).filter((r) => r.baseIndex > start.index);
    if (segments.length > 0 && segments[0]!.baseIndex !== start.index + 1) return null;
    const d: SnapshotDescriptor = {
      v: 1, group: this.opts.group, source: t.nodeId, index: this.floor, term: this.floor === start.index ? start.term : term,
      nextOffset: this.floor === start.index ? start.nextOffset : this.floorNext,
      logStart: { ...start, config: copyConfig(start.config) }, segments,
    };
    return { meta: { index: this.floor, term, config: copyConfig(this.configAt(this.floor)) }, data: encodeDescriptor(decodeDescriptor(encodeDescriptor(d), `raft log ${this.opts.group}`)) };
  }

  /** resolves once no segment install is queued or running (the log then holds what the view describes) */
  async installed(): Promise<void> {
    while (this.installing) {
      const chain = this.chain;
      await chain.catch(() => undefined);
      // the queue drained and nothing new was queued, yet the install is still pending: it failed (storage error,
      // log closed). Looping on the settled chain would spin in microtasks forever and starve the event loop.
      if (this.installing && chain === this.chain && this.ops.length === 0) {
        const why = this.failed instanceof Error ? this.failed.message : 'the log was closed';
        throw new LanceError('IO', `raft log ${this.opts.group}: segment install to index ${this.installing.index} did not complete (${why})`, { group: this.opts.group });
      }
    }
  }

  /**
   * The partition log as it will be once the pending install (if any) is done: reads wait for the install. For
   * state rebuilt from the log right at `onRestore` (producer state), which comes before the segments are in place.
   */
  afterInstall(): { readonly logStartOffset: number; readonly nextOffset: number; read: PartitionLog['read'] } {
    const start = this.installing ? this.installing.logStart.nextOffset : this.pl.logStartOffset;
    const next = (): number => (this.installing ? this.installing.nextOffset : this.pl.nextOffset);
    return {
      logStartOffset: start,
      get nextOffset(): number { return next(); },
      read: async (from, max) => {
        await this.installed();
        return this.pl.read(from, max);
      },
    };
  }

  /**
   * The partition log for Kafka client reads (fetch). While a segment install replaces the log — and for a read
   * that an install overtook — the answer is a retriable NOT_LEADER ("replica is installing segments": Kafka
   * NOT_LEADER_OR_FOLLOWER; the client refreshes metadata and retries) instead of whatever the old log, closed
   * and swapped under the read, would give (an unknown error, OFFSET_OUT_OF_RANGE against the old log's range,
   * or uncommitted bytes at offsets the restored high watermark already covers).
   */
  clientLog(what: string): { readonly logStartOffset: number; read: PartitionLog['read'] } {
    const busy = (cause?: unknown): LanceError => new LanceError('NOT_LEADER', `${what}: replica ${this.opts.transfer?.nodeId ?? '?'} is installing segments from the leader; retry (on the leader)`, {
      group: this.opts.group, ...(cause instanceof Error ? { cause: cause.message } : {}),
    });
    if (this.installing) throw busy();
    const gen = this.installGen;
    const pl = this.pl;
    return {
      logStartOffset: pl.logStartOffset,
      read: async (from, max) => {
        if (this.installing || gen !== this.installGen) throw busy();
        try {
          const got = await pl.read(from, max);
          // an install began meanwhile: the bytes may be the replaced log's
          if (this.installing || gen !== this.installGen || pl !== this.pl) throw busy();
          return got;
        } catch (e) {
          if (this.installing || gen !== this.installGen || pl !== this.pl) throw busy(e);
          throw e;
        }
      },
    };
  }

  /** the descriptor's offset after the snapshot point (the high watermark after a restore) */
  static snapshotNextOffset(data: Uint8Array): number {
    return decodeDescriptor(data, 'snapshot').nextOffset;
  }

  // ------------------------------------------------------------------ segment transfer: serving, installing

  /** Leader side of a pull: bytes [pos, pos+len) of one of our sealed segments, if it is the one described. */
  async readSegmentChunk(req: ChunkRequest): Promise<Buffer> {
    const r = req.ref;
    const s = this.installing ? undefined : this.pl.segments().find((x) => x.baseOffset === r.baseOffset);
    if (!s || !s.sealed || s.firstIndex !== r.baseIndex || s.lastIndex !== r.lastIndex || s.sizeBytes !== r.size || this.rawTerm(r.lastIndex) !== r.lastTerm) {
      throw new LanceError('NOT_FOUND', `${this.opts.group}: node ${this.opts.transfer?.nodeId ?? '?'} holds no sealed segment ${r.baseOffset} [${r.baseIndex}..${r.lastIndex}] of ${r.size} bytes`, { group: this.opts.group, baseOffset: r.baseOffset });
    }
    const data = await readChunk(s.file, r, req.pos, req.len);
    const m = this.opts.transfer?.metrics;
    if (m) {
      m.bytes.inc({ direction: 'out' }, data.length);
      if (req.pos + data.length === r.size) m.transfers.inc({ direction: 'out' });
    }
    return data;
  }

  /** this log's segments as transfer references, terms read from storage (the view may already be reset) */
  private async storedRefs(): Promise<SegmentRef[]> {
    const out: SegmentRef[] = [];
    const segs = this.pl.segments();
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      if (s.firstIndex === 0) break;
      out.push({
        baseOffset: s.baseOffset, baseIndex: s.firstIndex, lastIndex: s.lastIndex, nextOffset: segs[i + 1]?.baseOffset ?? this.pl.nextOffset,
        prevTerm: await this.pl.termAt(s.firstIndex - 1), lastTerm: await this.pl.termAt(s.lastIndex), size: s.sizeBytes,
      });
    }
    return out;
  }

  private async runInstall(op: Extract<Op, { kind: 'install' }>): Promise<void> {
    const t = this.opts.transfer!;
    const { d, gen } = op;
    const dir = this.opts.dir;
    const staging = path.join(dir, STAGING_DIR);
    const aborted = (): boolean => gen !== this.installGen || this.closing;
    await this.pl.flush();
    const plan = planInstall(await this.storedRefs(), d);
    await mkdirDurable(staging);
    // staged files of other descriptors are stale
    const want = new Set(plan.fetch.map(stagedName));
    for (const n of await fsp.readdir(staging)) if (!want.has(n)) await fsp.rm(path.join(staging, n), { force: true });
    this.opts.logger.info({ group: this.opts.group, index: d.index, source: d.source, keep: plan.keep.length, fetch: plan.fetch.length, bytes: plan.fetch.reduce((a, r) => a + r.size, 0) }, 'segment install: fetching');
    for (const ref of plan.fetch) {
      await fetchSegment({
        stagingDir: staging, group: this.opts.group, ref, fetch: t.fetch, chunkBytes: t.chunkBytes ?? DEFAULT_CHUNK_BYTES, aborted,
        // any member holding an identical sealed segment can serve it (same range and last term ⇒ same bytes):
        // the descriptor's source first, then the current leader, then the other members
        sources: () => [...new Set([d.source, t.leaderHint(), ...op.meta.config.voters, ...op.meta.config.learners])].filter((x): x is NodeId => x !== null && x !== t.nodeId),
        onBytes: (n) => t.metrics?.bytes.inc({ direction: 'in' }, n),
        logWarn: (msg, err) => this.opts.logger.warn({ err, group: this.opts.group }, msg),
      });
      t.metrics?.transfers.inc({ direction: 'in' });
    }
    if (this.closing) throw new LanceError('IO', `${this.opts.group}: log closed during a segment install (resumed at the next start)`, { group: this.opts.group });
    if (aborted()) return; // superseded: the newer install op follows in the queue
    // Local entries the install replaces that are not known committed (above the local commit index and the kept
    // prefix) may be divergent: those that differ from the installed log are quarantined. Divergent = from the
    // first replaced entry whose term differs from the installed log's (or that lies outside it): by log matching
    // every later one differs too. The installed terms come from the verified staged segments, so the quarantine
    // file is written (staged, durable) BEFORE the commit point: a crash anywhere leaves every entry in the log
    // or in quarantine (stageQuarantine).
    const keptEnd = plan.keep.length > 0 ? plan.keep[plan.keep.length - 1]!.lastIndex : 0;
    const replacedFrom = Math.max(this.hardState.commit, keptEnd, this.pl.firstIndex - 1) + 1;
    const replaced = replacedFrom <= this.pl.lastIndex
      ? (await this.pl.readByIndex(replacedFrom, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).map((e) => ({ ...e, payload: Buffer.from(e.payload) }))
      : [];
    let pendingQ: { file: string; after: number; entries: number } | null = null;
    if (replaced.length > 0) {
      const installedTerm = await stagedTerms(staging, d, replaced[0]!.index, replaced[replaced.length - 1]!.index);
      const firstBad = replaced.findIndex((e) => installedTerm(e.index) !== e.term);
      if (firstBad >= 0) {
        const removed = replaced.slice(firstBad);
        const after = removed[0]!.index - 1;
        // term of the last entry kept: installed (staged) or, in the kept prefix / committed part, the local one
        const prevTerm = installedTerm(after) ?? (await this.pl.termAt(after).catch(() => 0));
        pendingQ = { file: await stageQuarantine(dir, this.opts.group, after, removed, prevTerm), after, entries: removed.length };
        this.uncommittedQuarantine = pendingQ.file;
        this.opts.faultHook?.('install:quarantine-staged');
      }
    }
    if (aborted()) {
      // superseded: the newer install recomputes what it replaces (the log is untouched)
      if (pendingQ) await fsp.rm(pendingQ.file, { force: true });
      this.uncommittedQuarantine = null;
      return;
    }
    // commit point: from here on open() completes the swap
    await atomicWriteJson(path.join(dir, INSTALL_FILE), { descriptor: d, keep: plan.keep.map((r) => r.baseOffset) });
    this.uncommittedQuarantine = null;
    this.opts.faultHook?.('install:committed');
    await this.pl.close();
    await completeInstall(dir, d, this.opts.faultHook);
    this.pl = await PartitionLog.open(dir, { ...this.opts.logOptions, retention: { retentionBytes: 0, retentionMs: 0 } }, this.opts.logger);
    if (d.segments.length === 0) await this.pl.reset({ baseOffset: d.nextOffset, baseIndex: d.index + 1, prevTerm: d.term });
    if (this.pl.lastIndex !== d.index || this.pl.nextOffset !== d.nextOffset || (await this.pl.termAt(d.index)) !== d.term) {
      throw new LanceError('CORRUPT', `${dir}: after the segment install the log ends at index ${this.pl.lastIndex} offset ${this.pl.nextOffset}, expected ${d.index}/${d.nextOffset}`, { path: dir });
    }
    if (pendingQ) {
      const file = await finalizeQuarantine(pendingQ.file, this.opts.dataDir);
      this.opts.faultHook?.('install:quarantine-final');
      this.opts.logger.warn({ group: this.opts.group, truncatedAfter: pendingQ.after, entries: pendingQ.entries, file }, 'segment install replaced divergent entries: quarantined');
      this.opts.onQuarantine?.({ group: this.opts.group, truncatedAfter: pendingQ.after, entries: pendingQ.entries, file });
    }
    // term runs and membership of the installed range (the view knows only what came after the snapshot point)
    const runs: TermRun[] = [];
    const configs: Array<{ index: number; config: ClusterConfig }> = [];
    for (let from = d.logStart.index + 1; from <= d.index;) {
      const batch = await this.pl.readByIndex(from, 4096, 16 << 20);
      if (batch.length === 0) break;
      for (const e of batch) {
        if (e.index > d.index) break;
        extendRuns(runs, e.index, e.term);
        if (e.type === EntryType.CONFIG) configs.push({ index: e.index, config: decodeConfig(e.payload, `${dir} entry ${e.index}`) });
      }
      from = batch[batch.length - 1]!.index + 1;
    }
    if (gen !== this.installGen) return; // superseded while scanning: the next install resets the view again
    for (const r of this.runs) if (runs[runs.length - 1]?.term !== r.term) runs.push(r);
    this.runs = runs;
    this.configs = [...configs, ...this.configs];
    this.base = d.logStart;
    this.installing = null;
    this.refreshFloor();
    this.opts.logger.info({ group: this.opts.group, index: d.index, nextOffset: d.nextOffset, segments: d.segments.length }, 'segment install complete');
  }

  /**
   * Retention in cluster mode (leader and followers independently): deletes the oldest sealed segments the policy
   * selects, but only at or below the snapshot floor (committed; a follower that needs them gets segments from the
   * new log start) and at or below `maxIndex` (the caller's applied index). snapshot.json (the new log start) is
   * written before any file is deleted. Runs in the storage queue (ordered with appends and installs).
   */
  enforceRetention(policy: RetentionPolicy, maxIndex: number, canDelete: (s: SegmentInfo) => boolean = () => true): Promise<SegmentInfo[]> {
    return new Promise((resolve, reject) => {
      this.enqueue({
        kind: 'retention',
        run: async () => {
          try {
            resolve(await this.retentionPass(policy, maxIndex, canDelete));
          } catch (e) {
            reject(e);
          }
        },
      });
    });
  }

  private async retentionPass(policy: RetentionPolicy, maxIndex: number, canDelete: (s: SegmentInfo) => boolean): Promise<SegmentInfo[]> {
    if (this.failed || this.installing || this.closing) return [];
    this.refreshFloor(); // also keeps the floor current on an idle partition (persist() refreshes it throttled)
    if (policy.retentionBytes === 0 && policy.retentionMs === 0) return [];
    const segs = this.pl.segments();
    const cands = await Promise.all(segs.map(async (s) => ({
      sizeBytes: s.sizeBytes, maxTimestamp: s.maxTimestamp, sealed: s.sealed,
      mtimeMs: s.maxTimestamp >= 0 ? 0 : (await fsp.stat(s.file).catch(() => ({ mtimeMs: 0 }))).mtimeMs,
    })));
    let n = planRetention(cands, policy, Date.now());
    let ok = 0;
    while (ok < n && ok < segs.length - 1 && segs[ok]!.firstIndex > 0 && segs[ok]!.lastIndex <= Math.min(this.floor, maxIndex) && canDelete(segs[ok]!)) ok++;
    n = ok;
    if (n === 0) return [];
    const lastGone = segs[n - 1]!;
    const term = this.rawTerm(lastGone.lastIndex);
    if (term === undefined) return [];
    const start: LogStart = { index: lastGone.lastIndex, term, nextOffset: segs[n]!.baseOffset, config: copyConfig(this.configAt(lastGone.lastIndex)) };
    await atomicWriteJson(path.join(this.opts.dir, SNAPSHOT_FILE), start);
    this.retentionStart = start;
    let gone: SegmentInfo[];
    try {
      gone = await this.pl.truncateBeforeOffset(start.nextOffset);
    } finally {
      this.retentionStart = null;
    }
    this.base = start;
    this.configs = this.configs.filter((c) => c.index > start.index);
    this.refreshFloor();
    this.opts.logger.info({ group: this.opts.group, segments: gone.length, logStartIndex: start.index + 1, logStartOffset: start.nextOffset }, 'retention deleted segments');
    return gone;
  }

  // ------------------------------------------------------------------ storage queue

  private enqueue(op: Op): void {
    this.ops.push(op);
    if (this.ops.length === 1) this.chain = this.chain.then(() => this.drainOps());
  }

  private async drainOps(): Promise<void> {
    while (this.ops.length > 0) {
      const op = this.ops.shift()!;
      if (this.failed && op.kind !== 'retention') continue;
      try {
        if (op.kind === 'append') {
          // coalesce consecutive appends into one PartitionLog call
          const all = [...op.entries];
          while (this.ops[0]?.kind === 'append') all.push(...(this.ops.shift() as { entries: RaftEntry[] }).entries);
          const res = this.pl.append(all.map(toNewEntry));
          if (res.firstIndex !== all[0]!.index) throw new LanceError('INTERNAL', `raft log ${this.opts.group}: storage put entry ${all[0]!.index} at ${res.firstIndex}`);
          res.durable.catch(() => undefined); // flush() in persist() reports failures
        } else if (op.kind === 'install') {
          await this.runInstall(op);
        } else if (op.kind === 'retention') {
          await op.run();
        } else {
          // quarantine first (staged, durable), then truncate, then move the file into quarantine/: a crash at
          // any point leaves each removed entry in the log or in quarantine (stageQuarantine)
          await this.pl.flush();
          const removed = op.after < this.pl.lastIndex
            ? (await this.pl.readByIndex(op.after + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).map((e) => ({ ...e, payload: Buffer.from(e.payload) }))
            : [];
          const pending = removed.length > 0 ? await stageQuarantine(this.opts.dir, this.opts.group, op.after, removed, op.prevTerm) : null;
          if (pending) this.opts.faultHook?.('truncate:quarantine-staged');
          await this.pl.truncateAfterIndex(op.after);
          if (pending) {
            this.opts.faultHook?.('truncate:truncated');
            const file = await finalizeQuarantine(pending, this.opts.dataDir);
            this.opts.logger.warn({ group: this.opts.group, truncatedAfter: op.after, entries: removed.length, file }, 'divergent entries truncated and quarantined');
            this.opts.onQuarantine?.({ group: this.opts.group, truncatedAfter: op.after, entries: removed.length, file });
          }
        }
      } catch (e) {
        if (op.kind === 'install' && op.gen !== this.installGen) {
          this.opts.logger.info({ group: this.opts.group, index: op.d.index }, 'segment install superseded by a newer snapshot');
          // its staged quarantine, if the install failed before its commit point: the entries are still in the log
          // (the newer install stages its own); left behind, a later open() would move it into quarantine/ as well
          if (this.uncommittedQuarantine) await fsp.rm(this.uncommittedQuarantine, { force: true }).catch(() => undefined);
          this.uncommittedQuarantine = null;
          continue;
        }
        this.failed = e;
        this.opts.logger.error({ err: e, group: this.opts.group }, 'raft log storage operation failed');
      }
      if (this.offsetUnknown && this.ops.length === 0 && !this.failed && this.pl.lastIndex === this.last) {
        // storage caught up with the view: take offsets from it (the cache holds only entries appended since)
        this._nextOffset = this.pl.nextOffset;
        let off = this._nextOffset;
        for (let i = this.cache.length - 1; i >= 0; i--) {
          off -= offsetCountOf(this.cache[i]!);
          this.cacheOffsets[i] = off;
        }
        this.offsetUnknown = false;
      }
    }
  }

  /** the Kafka offset the next appended entry gets; null right after a deep truncation until storage caught up */
  get nextOffset(): number | null {
    return this.offsetUnknown ? null : this._nextOffset;
  }

  /**
   * Executes one PersistRequest: queued writes → fsync → hard state. Requests must be passed in seq order and
   * awaited one after the other (the host does that per group).
   */
  async persist(req: PersistRequest): Promise<void> {
    if (req.snapshot && !this.opts.transfer) throw new LanceError('UNSUPPORTED', `raft log ${this.opts.group}: snapshot install is not supported for the metadata log`);
    // a snapshot's install op is in the queue: the chain completes only once its segments are in place
    await this.chain;
    if (this.failed) throw this.failed;
    if (req.sync) await this.pl.flush();
    if (req.hardState) {
      const hs = req.hardState;
      if (req.sync || hs.term !== this.hardState.term || hs.vote !== this.hardState.vote) {
        await atomicWriteJson(path.join(this.opts.dir, HARD_STATE_FILE), { term: hs.term, vote: hs.vote, commit: hs.commit });
        this.hardState.term = hs.term;
        this.hardState.vote = hs.vote;
        this.hardState.commit = hs.commit;
      } else {
        // commit-hint only (sync: false): skipped; the commit index is relearned from the leader after a restart
        this.hardState.commit = hs.commit;
      }
    }
    // a floor computed a little earlier is still safe (segments and commit only grow; retention and installs
    // refresh it themselves): recompute at most every 50 ms instead of on every group commit
    const now = performance.now();
    if (now - this.floorAt >= 50) {
      this.floorAt = now;
      this.refreshFloor();
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.chain.catch(() => undefined);
    await this.pl.close();
  }
}
