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
 * per event, framing in `writeQuarantine` below) before the truncation is reported durable.
 *
 * Snapshots: partition groups never compact (retention is not run in cluster mode yet), so a lagging or wiped
 * follower is refilled entry by entry in large Appends (maxBytesPerAppend). Segment transfer is NOT implemented.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LanceError } from '../common/errors.ts';
import { atomicWriteJson, fsyncDir, mkdirDurable } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import type { HardState, PersistRequest, RaftEntry, RaftLog, SnapshotMeta } from '../raft/types.ts';
import { crc32c } from '@node-rs/crc32';
import { encodeEntry, ENTRY_CRC_BYTES, ENTRY_HEAD_BYTES } from '../storage/export-format.ts';
import { PartitionLog } from '../storage/partition-log.ts';
import { EntryType, type LogOptions, type NewEntry, type StoredEntry } from '../storage/types.ts';

export const HARD_STATE_FILE = 'raft.json';
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
 * payload, crc32c). Written temp → fsync → rename → fsync dir.
 */
export async function writeQuarantine(dataDir: string, group: string, truncatedAfter: number, removed: readonly StoredEntry[], prevTerm = 0): Promise<QuarantineInfo> {
  const dir = path.join(dataDir, 'quarantine');
  await mkdirDurable(dir);
  const safe = group.replace(/[^A-Za-z0-9._-]/g, '_');
  const file = path.join(dir, `${safe}-after-${truncatedAfter}-${Date.now()}.q`);
  const header = Buffer.from(JSON.stringify({
    group, truncatedAfter, prevTerm, entries: removed.length,
    firstIndex: removed[0]?.index ?? 0, lastIndex: removed[removed.length - 1]?.index ?? 0,
    firstOffset: removed[0]?.firstOffset ?? 0,
    nextOffset: removed.length ? removed[removed.length - 1]!.firstOffset + removed[removed.length - 1]!.offsetCount : 0,
    terms: [...new Set(removed.map((e) => e.term))], at: new Date().toISOString(),
  }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length, 0);
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(Buffer.concat([QUARANTINE_MAGIC, len, header, ...removed.map(encodeEntry)]));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await fsyncDir(dir);
  return { group, truncatedAfter, entries: removed.length, file };
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
}

type Op = { kind: 'append'; entries: RaftEntry[] } | { kind: 'truncate'; after: number; prevTerm: number };

export class PartitionRaftLog implements RaftLog {
  readonly pl: PartitionLog;
  readonly hardState: HardState;
  private readonly opts: PartitionRaftLogOptions;
  private readonly runs: TermRun[] = [];
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
    const pl = await PartitionLog.open(opts.dir, { ...opts.logOptions, retention: { retentionBytes: 0, retentionMs: 0 } }, opts.logger);
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
    if (pl.firstIndex > 1 && pl.lastIndex >= pl.firstIndex) {
      throw new LanceError('UNSUPPORTED', `${opts.dir}: the log starts at raft index ${pl.firstIndex}; compacted partition logs are not supported in cluster mode yet`, { path: opts.dir });
    }
    // Build the term runs (and the tail cache) with one scan: the core needs term(i) synchronously for any i.
    const limit = opts.cacheBytes ?? 64 << 20;
    for (let from = 1; from <= pl.lastIndex;) {
      const batch = await pl.readByIndex(from, 4096, 16 << 20);
      if (batch.length === 0) break;
      for (const e of batch) {
        extendRuns(log.runs, e.index, e.term);
        log.last = e.index;
        log.pushCache(fromStored({ ...e, payload: Buffer.from(e.payload) }), limit);
        log._nextOffset = e.firstOffset + e.offsetCount;
      }
      from = batch[batch.length - 1]!.index + 1;
    }
    log._nextOffset = pl.nextOffset;
    if (log.last !== pl.lastIndex) throw new LanceError('INTERNAL', `${opts.dir}: scanned to raft index ${log.last}, log ends at ${pl.lastIndex}`);
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

  snapshotIndex(): number { return 0; }
  snapshotTerm(): number { return 0; }
  lastIndex(): number { return this.last; }
  term(index: number): number | undefined { return termOf(this.runs, index, this.last); }

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

  compact(_meta: SnapshotMeta, _data: Uint8Array): void {
    throw new LanceError('UNSUPPORTED', `raft log ${this.opts.group}: compaction of partition logs is not supported yet`);
  }

  installSnapshot(_meta: SnapshotMeta, _data: Uint8Array): void {
    throw new LanceError('UNSUPPORTED', `raft log ${this.opts.group}: snapshot install is not supported yet (this log never compacts)`);
  }

  snapshot(): { meta: SnapshotMeta; data: Uint8Array } | null { return null; }

  // ------------------------------------------------------------------ storage queue

  private enqueue(op: Op): void {
    this.ops.push(op);
    if (this.ops.length === 1) this.chain = this.chain.then(() => this.drainOps());
  }

  private async drainOps(): Promise<void> {
    while (this.ops.length > 0) {
      const op = this.ops.shift()!;
      if (this.failed) continue;
      try {
        if (op.kind === 'append') {
          // coalesce consecutive appends into one PartitionLog call
          const all = [...op.entries];
          while (this.ops[0]?.kind === 'append') all.push(...(this.ops.shift() as { entries: RaftEntry[] }).entries);
          const res = this.pl.append(all.map(toNewEntry));
          if (res.firstIndex !== all[0]!.index) throw new LanceError('INTERNAL', `raft log ${this.opts.group}: storage put entry ${all[0]!.index} at ${res.firstIndex}`);
          res.durable.catch(() => undefined); // flush() in persist() reports failures
        } else {
          const removed = await this.pl.truncateAfterIndex(op.after);
          if (removed.length > 0) {
            const q = await writeQuarantine(this.opts.dataDir, this.opts.group, op.after, removed, op.prevTerm);
            this.opts.logger.warn({ group: this.opts.group, truncatedAfter: op.after, entries: removed.length, file: q.file }, 'divergent entries truncated and quarantined');
            this.opts.onQuarantine?.(q);
          }
        }
      } catch (e) {
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
    if (req.snapshot) throw new LanceError('UNSUPPORTED', `raft log ${this.opts.group}: snapshot install is not supported yet`);
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
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
    await this.pl.close();
  }
}
