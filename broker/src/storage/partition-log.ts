/**
 * PartitionLog: one partition's log (Kafka log and Raft log at once) in `topic_<id>/<partition>/`, made of
 * segment files `<20-digit base offset>.lnc` with sparse `.idx` / `.tix` indexes. Byte format: segment-format.ts,
 * index-file.ts and docs/format.md.
 *
 * Write path: append() is synchronous in memory — it assigns Raft indexes and offsets, encodes entries into a
 * staging buffer (no per-entry allocation except the result object) and returns at once. The staging buffer goes
 * to the file with one write per event-loop turn (or when full, or before a read/fsync), and an fdatasync covers
 * every write made before it started (group commit): all appends of one flush window share one fsync and one
 * `durable` promise. Reads go to the page cache and never wait for an fsync.
 *
 * Recovery on open: see `open()` and docs/format.md "Recovery".
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../common/log.ts';
import { silentLogger } from '../common/log.ts';
import { LanceError, ioError } from '../common/errors.ts';
import { atomicWriteFile, fsyncDir, mkdirDurable } from '../common/fsutil.ts';
import { INDEX_HEADER_BYTES, SegmentIndex, decodeIndexHeader, rebuildIndexFromSegment } from './index-file.ts';
import { checkRecordBatch } from './record-batch.ts';
import {
  ENTRY_HEADER_BYTES,
  MAX_ENTRY_PAYLOAD_BYTES,
  SEGMENT_HEADER_BYTES,
  SegmentScanner,
  checkEntry,
  decodeSegmentHeader,
  encodeEntryFields,
  encodeSegmentHeader,
  entrySize,
  isScanError,
  type EntryMeta,
  type SegmentHeader,
} from './segment-format.ts';
import {
  EntryType,
  type AppendResult,
  type FlushPolicy,
  type LogOptions,
  type NewEntry,
  type RecoveryReport,
  type RetentionPolicy,
  type SegmentInfo,
  type StoredEntry,
} from './types.ts';

export const DEFAULT_LOG_OPTIONS: LogOptions = {
  segmentBytes: 128 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  flush: { mode: 'interval', ms: 5 },
  retention: { retentionBytes: 0, retentionMs: 0 },
};

/** Bytes staged in memory before a write is forced (entries larger than this are written on their own). */
const STAGE_BYTES = 4 * 1024 * 1024;
const SEGMENT_FILE_RE = /^(\d{20})\.lnc$/;
const INDEX_FILE_RE = /^(\d{20})\.(idx|tix)$/;

export function segmentFileName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0') + '.lnc';
}

/** Result of offsetForTimestamp: the first entry whose batch max timestamp ≥ the asked timestamp. */
export interface TimestampLookup {
  offset: number;
  timestamp: number;
}

interface Segment {
  baseOffset: number;
  file: string;
  idxPath: string;
  tixPath: string;
  header: SegmentHeader;
  /** read fd (sealed) or read/write fd (active) */
  fd: number;
  idxFd: number;
  tixFd: number;
  /** bytes written to the file (staged bytes not included) */
  size: number;
  entries: number;
  /** baseIndex - 1 when empty */
  lastIndex: number;
  /** offset after the last entry (== baseOffset when empty) */
  nextOffset: number;
  firstTerm: number;
  /** prevTerm when empty */
  lastTerm: number;
  index: SegmentIndex;
  /** wall-clock ms of the first entry (segmentMs roll); -1 when empty */
  firstEntryTime: number;
  mtimeMs: number;
  sealed: boolean;
  dirty: boolean;
  readers: number;
  deleted: boolean;
}

/** Bytes being read ahead for the fetch that will start at `offset` (position `pos`) of `seg`. */
interface Readahead {
  seg: Segment;
  offset: number;
  pos: number;
  gen: number;
  buf: Buffer;
  len: Promise<number>;
  /** counted against READAHEAD_BUDGET_BYTES until taken or dropped */
  bytes: number;
}

/** Where a scan stopped: its last read buffer (file bytes [start, start+len)). */
interface ScanTail {
  chunk: Buffer | null;
  start: number;
  len: number;
}

/** Process-wide cap on read-ahead buffers (all partitions). */
const READAHEAD_BUDGET_BYTES = 256 * 1024 * 1024;
let readaheadBytes = 0;

interface SyncWindow {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function closeQuietly(fd: number): void {
  if (fd >= 0) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
  }
}

function fdatasyncP(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
}

function readP(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fs.read(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

function writeFully(fd: number, buf: Buffer, pos: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    try {
      done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
    } catch (e) {
      throw ioError('write', file, e);
    }
  }
}

function validateOptions(o: LogOptions): void {
  const bad = (field: string, msg: string): never => {
    throw new LanceError('INVALID_CONFIG', `log option ${field}: ${msg}`, { field });
  };
  if (!Number.isInteger(o.segmentBytes) || o.segmentBytes < SEGMENT_HEADER_BYTES + ENTRY_HEADER_BYTES) bad('segmentBytes', `must be an integer ≥ ${SEGMENT_HEADER_BYTES + ENTRY_HEADER_BYTES}, got ${o.segmentBytes}`);
  if (o.segmentBytes > 0xffffffff) bad('segmentBytes', `must be < 4 GiB (index positions are u32), got ${o.segmentBytes}`);
  if (!Number.isInteger(o.segmentMs) || o.segmentMs < 0) bad('segmentMs', `must be an integer ≥ 0 (0 = never), got ${o.segmentMs}`);
  if (!Number.isInteger(o.indexIntervalBytes) || o.indexIntervalBytes < 1) bad('indexIntervalBytes', `must be a positive integer, got ${o.indexIntervalBytes}`);
  if (!Number.isInteger(o.retention.retentionBytes) || o.retention.retentionBytes < 0) bad('retention.retentionBytes', `must be an integer ≥ 0 (0 = unlimited), got ${o.retention.retentionBytes}`);
  if (!Number.isInteger(o.retention.retentionMs) || o.retention.retentionMs < 0) bad('retention.retentionMs', `must be an integer ≥ 0 (0 = unlimited), got ${o.retention.retentionMs}`);
  const f = o.flush;
  if (f.mode === 'interval' && !(f.ms >= 0)) bad('flush.ms', `must be ≥ 0, got ${f.ms}`);
  if (f.mode === 'bytes' && (!(f.bytes >= 1) || !(f.maxDelayMs >= 0))) bad('flush', `bytes must be ≥ 1 and maxDelayMs ≥ 0, got ${JSON.stringify(f)}`);
}

/** What a retention pass may see of a segment (pure decision input). */
export interface RetentionCandidate {
  sizeBytes: number;
  /** newest record timestamp, or -1 (then mtimeMs is used) */
  maxTimestamp: number;
  mtimeMs: number;
  sealed: boolean;
}

/**
 * Pure retention decision: how many of the OLDEST segments to delete. Only sealed segments, only a prefix
 * (so the log stays contiguous). retentionMs / retentionBytes of 0 mean UNLIMITED (never delete for that reason).
 * By size: delete the oldest while the rest still holds ≥ retentionBytes (Kafka's rule).
 */
export function planRetention(segs: readonly RetentionCandidate[], policy: RetentionPolicy, now: number): number {
  let total = 0;
  for (const s of segs) total += s.sizeBytes;
  let n = 0;
  while (n < segs.length) {
    const s = segs[n]!;
    if (!s.sealed) break;
    const ts = s.maxTimestamp >= 0 ? s.maxTimestamp : s.mtimeMs;
    const tooOld = policy.retentionMs > 0 && now - ts > policy.retentionMs;
    const tooBig = policy.retentionBytes > 0 && total - s.sizeBytes >= policy.retentionBytes;
    if (!tooOld && !tooBig) break;
    total -= s.sizeBytes;
    n++;
  }
  return n;
}

/** Pure roll decision for the active segment before appending an entry of `size` bytes. */
export function shouldRoll(active: { logicalSize: number; entries: number; firstEntryTime: number; hasOffsets: boolean }, size: number, opts: Pick<LogOptions, 'segmentBytes' | 'segmentMs'>, now: number): boolean {
  // A segment's file name is its base offset: rolling before it holds any offset would create a duplicate name.
  if (active.entries === 0 || !active.hasOffsets) return false;
  if (active.logicalSize + size > opts.segmentBytes) return true;
  return opts.segmentMs > 0 && active.firstEntryTime >= 0 && now - active.firstEntryTime >= opts.segmentMs;
}

export class PartitionLog {
  readonly dir: string;
  readonly options: LogOptions;
  readonly recovery: RecoveryReport;
  private readonly log: Logger;
  private readonly now: () => number;
  private segs: Segment[] = [];
  private stage = Buffer.allocUnsafe(STAGE_BYTES);
  private stageLen = 0;
  private writeScheduled = false;

  private _lastIndex = 0;
  private _lastTerm = 0;
  private _nextOffset = 0;
  private _durableIndex = 0;
  private _durableOffset = 0;

  private window: SyncWindow | null = null;
  private windowBytes = 0;
  private windowStartedAt = 0;
  private syncing = false;
  /** cancels the scheduled sync (a timer, or an immediate for "now") */
  private syncTimer: (() => void) | null = null;
  private syncTimerDue = 0;
  private lastSyncStart = 0;
  private dirDirty = false;
  /** idx/tix fds of segments sealed since the last sync: synced, then closed */
  private sealedIndexFds: { fd: number; file: string }[] = [];
  /** segment fds replaced while reads were in flight on them (setActive): closed by releaseReader */
  private retiredFds: { seg: Segment; fd: number }[] = [];
  private failed: LanceError | null = null;
  private closed = false;
  private truncating = false;
  private closing = false;
  /** bumped on every truncation so readers racing with one stop cleanly */
  private generation = 0;
  private idleWaiters: (() => void)[] = [];
  /** read-ahead for sequential fetches (overlaps the next fetch's disk read with this one's CRC work) */
  private readaheads: Readahead[] = [];

  private constructor(dir: string, options: LogOptions, logger: Logger, report: RecoveryReport) {
    this.dir = dir;
    this.options = options;
    this.log = logger;
    this.now = options.now ?? Date.now;
    this.recovery = report;
  }

  // ------------------------------------------------------------------------------------------------ open

  /**
   * Opens (creating if needed) the log in `dir` and recovers it:
   *  - the ACTIVE (last) segment is scanned fully; a torn or corrupt tail is copied to
   *    `<segment>.lnc.corrupt-<unix ms>` (fsynced) and then cut (ftruncate + fsync);
   *  - if the segment before it has a torn tail too (a crash during a roll: both were in one unsynced flush
   *    window), the active segment is copied aside and removed, and that segment becomes active and is cut;
   *  - sealed segments are checked cheaply: header, contiguity with the previous segment, index well-formed, and a
   *    short scan from the last index sample must end exactly at the file size. Damage there throws CORRUPT
   *    (run `lnc verify-data` / `lnc repair`): a sealed segment is never cut silently;
   *  - missing or stale .idx/.tix are rebuilt (atomically);
   *  - orphan .idx/.tix without a segment are deleted.
   * Everything done is logged and returned in `recovery`.
   */
  static async open(dir: string, opts: Partial<LogOptions> = {}, logger?: Logger): Promise<PartitionLog> {
    const options: LogOptions = { ...DEFAULT_LOG_OPTIONS, ...opts, retention: { ...DEFAULT_LOG_OPTIONS.retention, ...opts.retention } };
    validateOptions(options);
    const log = (logger ?? silentLogger).child({ component: 'partition-log', dir });
    const report: RecoveryReport = { segmentsScanned: 0, truncatedBytes: 0, truncatedAtPosition: null, reason: null, indexesRebuilt: [], corruptCopies: [], segmentsRemoved: [], actions: [] };
    const pl = new PartitionLog(path.resolve(dir), options, log, report);
    try {
      await pl.recover();
    } catch (e) {
      pl.closeAllFds();
      throw e;
    }
    log.info({ recovery: report, lastIndex: pl._lastIndex, nextOffset: pl._nextOffset, segments: pl.segs.length }, report.actions.length ? `recovered: ${report.actions.join('; ')}` : 'opened clean');
    return pl;
  }

  private act(msg: string): void {
    this.recovery.actions.push(msg);
    this.log.warn(msg);
  }

  private async recover(): Promise<void> {
    const dir = this.dir;
    await mkdirDurable(dir);
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (e) {
      throw ioError('list partition dir', dir, e);
    }
    const bases = names.map((n) => SEGMENT_FILE_RE.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
    const baseSet = new Set(bases);
    for (const n of names) {
      const m = INDEX_FILE_RE.exec(n);
      if (m && !baseSet.has(Number(m[1]))) {
        await fsp.rm(path.join(dir, n), { force: true });
        this.act(`deleted orphan index ${n} (no segment ${m[1]}.lnc)`);
        this.dirDirty = true;
      }
    }

    if (bases.length === 0) {
      const seg = this.createSegmentFile(0, 1, 0);
      this.segs.push(seg);
      this.setActive(seg);
      await this.syncAll();
      return;
    }

    // Active segment first (it may be removed if a crash during a roll left it without a valid entry).
    let list = bases.slice();
    for (;;) {
      const base = list[list.length - 1]!;
      const file = path.join(dir, segmentFileName(base));
      const scan = await rebuildIndexFromSegment(file, base, this.options.indexIntervalBytes);
      this.recovery.segmentsScanned++;
      const size = (await fsp.stat(file)).size;
      if (!scan.header) {
        const reason = scan.error?.reason ?? 'unreadable header';
        if (list.length > 1) {
          await this.removeSegmentFiles(file, base, `active segment ${segmentFileName(base)} has no valid header (${reason})`, size);
          list = list.slice(0, -1);
          continue;
        }
        if (base === 0 && size < SEGMENT_HEADER_BYTES) {
          // A crash while the very first segment was being created: nothing was ever acknowledged.
          await this.copyAside(file, 0, size);
          this.act(`rewrote torn header of ${segmentFileName(base)} (${size} bytes)`);
          fs.rmSync(file, { force: true });
          const seg = this.createSegmentFile(0, 1, 0);
          this.segs.push(seg);
          this.setActive(seg);
          await this.syncAll();
          return;
        }
        throw new LanceError('CORRUPT', `${file}: ${reason}; run \`lnc verify-data\` and \`lnc repair --path ${file}\``, { path: file, position: scan.error?.position ?? 0 });
      }
      if (scan.header.baseOffset !== base) {
        throw new LanceError('CORRUPT', `${file}: header base offset ${scan.header.baseOffset} does not match the file name`, { path: file, position: 8 });
      }
      // A torn tail here is cut; if the previous segment turns out to be torn as well (a crash during a roll),
      // openSealed signals RollCrash below and this segment is removed instead.
      if (scan.error) await this.cutTail(file, scan.validEnd, size, scan.error.reason);
      // Sealed segments: cheap checks, oldest first (contiguity needs the previous one).
      try {
        for (let k = 0; k < list.length - 1; k++) this.segs.push(await this.openSealed(list[k]!, k === list.length - 2));
      } catch (e) {
        if (!(e instanceof RollCrash)) throw e;
        // The segment before the active one has a damaged tail: the crash hit a flush window that spanned a roll,
        // so nothing in the active segment can have been acknowledged (its fsync came with the old tail's).
        this.closeAllFds();
        this.segs = [];
        await this.removeSegmentFiles(file, base, `segment ${segmentFileName(e.base)} before it has a damaged tail (${e.reason}): a crash during a roll`, size);
        list = list.slice(0, -1);
        continue;
      }
      const active = this.segmentFromScan(base, file, scan.header, scan.index, await this.lastEntryMeta(file, scan.index), false);
      this.checkContiguity(active);
      this.segs.push(active);
      // Index of the active segment: compare with the files, rewrite if missing/stale.
      await this.ensureIndexFiles(active, scan.index);
      this.setActive(active);
      break;
    }
    const last = this.segs[this.segs.length - 1]!;
    this._lastIndex = last.lastIndex;
    this._lastTerm = last.lastTerm;
    this._nextOffset = last.nextOffset;
    // After a process crash the tail may sit only in the page cache (written, never fsynced). Sync it before
    // calling it durable: the high watermark must never expose bytes a power loss could still take away.
    // The segment before the active one may share the last unsynced flush window (a roll), so sync it too.
    for (const s of this.segs.slice(-2)) s.dirty = true;
    this.dirDirty = true;
    await this.syncAll();
    this._durableIndex = this._lastIndex;
    this._durableOffset = this._nextOffset;
  }

  /** Copies file bytes [from, to) to `<file>.corrupt-<unix ms>` durably. */
  private async copyAside(file: string, from: number, to: number): Promise<string> {
    let ts = this.now();
    let target = `${file}.corrupt-${ts}`;
    while (fs.existsSync(target)) target = `${file}.corrupt-${++ts}`;
    const fh = await fsp.open(file, 'r');
    try {
      const buf = Buffer.alloc(Math.max(0, to - from));
      if (buf.length) await fh.read(buf, 0, buf.length, from);
      await atomicWriteFile(target, buf);
    } finally {
      await fh.close();
    }
    this.recovery.corruptCopies.push(target);
    return target;
  }

  private async cutTail(file: string, cut: number, size: number, reason: string): Promise<void> {
    const copy = await this.copyAside(file, cut, size);
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, cut);
      await fdatasyncP(fd);
    } catch (e) {
      throw ioError('truncate', file, e);
    } finally {
      fs.closeSync(fd);
    }
    if (this.recovery.truncatedAtPosition === null) {
      this.recovery.truncatedAtPosition = cut;
      this.recovery.reason = reason;
    }
    this.recovery.truncatedBytes += size - cut;
    this.act(`truncated ${path.basename(file)} at byte ${cut} (cut ${size - cut} bytes: ${reason}); copy kept in ${path.basename(copy)}`);
    this.dirDirty = true;
  }

  private async removeSegmentFiles(file: string, base: number, why: string, _sizeBefore: number): Promise<void> {
    const size = (await fsp.stat(file)).size;
    const copy = await this.copyAside(file, 0, size);
    for (const f of [file, this.idxPathOf(base), this.tixPathOf(base)]) fs.rmSync(f, { force: true });
    this.recovery.segmentsRemoved.push(file);
    this.recovery.truncatedBytes += size;
    if (this.recovery.reason === null) this.recovery.reason = why;
    this.act(`removed ${path.basename(file)}: ${why}; copy kept in ${path.basename(copy)}`);
    this.dirDirty = true;
  }

  private idxPathOf(base: number): string {
    return path.join(this.dir, segmentFileName(base).replace(/\.lnc$/, '.idx'));
  }
  private tixPathOf(base: number): string {
    return path.join(this.dir, segmentFileName(base).replace(/\.lnc$/, '.tix'));
  }

  /** Reads the last entry's metadata (short scan from the last index sample). */
  private async lastEntryMeta(file: string, index: SegmentIndex): Promise<{ last: EntryMeta | null; first: EntryMeta | null; size: number; error: string | null }> {
    const sample = index.lastOffsetEntry();
    const s = await SegmentScanner.open(file, sample ? { start: sample.position, expectIndex: sample.index, expectOffset: sample.offset } : {});
    try {
      let last: EntryMeta | null = null;
      let first: EntryMeta | null = null;
      let m: EntryMeta | null;
      while ((m = await s.next())) {
        if (!first) first = m;
        last = m;
        index.add(m); // adds samples the files may lack (no-op for samples already present)
      }
      const end = (await fsp.stat(file)).size;
      let error = s.error ? s.error.reason : null;
      if (!error && s.validEnd !== end) error = `scan ended at byte ${s.validEnd}, file has ${end}`;
      if (!error && sample && first && (first.position !== sample.position)) error = `index sample at byte ${sample.position} does not start an entry`;
      return { last, first, size: end, error };
    } finally {
      await s.close();
    }
  }

  private segmentFromScan(base: number, file: string, header: SegmentHeader, index: SegmentIndex, tail: { last: EntryMeta | null; size: number }, sealed: boolean, firstTerm?: number): Segment {
    const last = tail.last;
    let mtimeMs = 0;
    try {
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch {
      /* racing delete: mtime only feeds retention of timestamp-less segments */
    }
    return {
      baseOffset: base,
      file,
      idxPath: this.idxPathOf(base),
      tixPath: this.tixPathOf(base),
      header,
      fd: -1,
      idxFd: -1,
      tixFd: -1,
      size: tail.size,
      entries: last ? last.index - header.baseIndex + 1 : 0,
      lastIndex: last ? last.index : header.baseIndex - 1,
      nextOffset: last ? last.firstOffset + last.offsetCount : header.baseOffset,
      firstTerm: firstTerm ?? (last ? -1 : header.prevTerm),
      lastTerm: last ? last.term : header.prevTerm,
      index,
      // The wall time of a reopened segment's first append is unknown: its mtime is a conservative stand-in.
      firstEntryTime: last ? mtimeMs : -1,
      mtimeMs,
      sealed,
      dirty: false,
      readers: 0,
      deleted: false,
    };
  }

  private checkContiguity(seg: Segment): void {
    const prev = this.segs[this.segs.length - 1];
    if (!prev) return;
    const h = seg.header;
    if (h.baseIndex !== prev.lastIndex + 1 || h.baseOffset !== prev.nextOffset || h.prevTerm !== prev.lastTerm) {
      throw new LanceError(
        'CORRUPT',
        `${seg.file}: does not continue ${path.basename(prev.file)} (expected base index ${prev.lastIndex + 1}, offset ${prev.nextOffset}, prev term ${prev.lastTerm}; header has ${h.baseIndex}, ${h.baseOffset}, ${h.prevTerm}); run \`lnc verify-data\``,
        { path: seg.file },
      );
    }
  }

  private async openSealed(base: number, tornTailIsRollCrash: boolean): Promise<Segment> {
    const file = path.join(this.dir, segmentFileName(base));
    const hb = Buffer.alloc(SEGMENT_HEADER_BYTES);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw ioError('open segment', file, e);
    }
    try {
      const n = fs.readSync(fd, hb, 0, SEGMENT_HEADER_BYTES, 0);
      const h = decodeSegmentHeader(hb.subarray(0, n));
      if (!h.ok) throw new LanceError('CORRUPT', `${file}: ${h.error.reason}; run \`lnc verify-data\``, { path: file, position: h.error.position });
      if (h.value.baseOffset !== base) throw new LanceError('CORRUPT', `${file}: header base offset ${h.value.baseOffset} does not match the file name`, { path: file, position: 8 });
      let index: SegmentIndex | string = 'index files missing';
      try {
        const idxBuf = fs.readFileSync(this.idxPathOf(base));
        // A sealed segment keeps the interval it was indexed with (a config change must not force rebuilds).
        const hdr = decodeIndexHeader(idxBuf);
        const interval = hdr.ok && hdr.value.intervalBytes > 0 ? hdr.value.intervalBytes : this.options.indexIntervalBytes;
        index = SegmentIndex.fromFiles(idxBuf, fs.readFileSync(this.tixPathOf(base)), base, interval);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('read index', this.idxPathOf(base), e);
      }
      let rebuilt = false;
      let tail: Awaited<ReturnType<PartitionLog['lastEntryMeta']>> | null = null;
      if (typeof index !== 'string') {
        tail = await this.lastEntryMeta(file, index);
        if (tail.error) {
          this.log.warn({ file, reason: tail.error }, 'sealed segment tail check failed; rescanning it fully');
          index = `tail check failed: ${tail.error}`;
        }
      }
      let first: EntryMeta | null = tail?.first ?? null;
      if (typeof index === 'string') {
        const why = index;
        const scan = await rebuildIndexFromSegment(file, base, this.options.indexIntervalBytes);
        this.recovery.segmentsScanned++;
        if (scan.error && tornTailIsRollCrash && scan.header) throw new RollCrash(base, scan.error.reason);
        if (scan.error) {
          throw new LanceError('CORRUPT', `${file}: sealed segment damaged: ${scan.error.reason}; run \`lnc verify-data\` and \`lnc repair\``, { path: file, position: scan.error.position });
        }
        index = scan.index;
        tail = await this.lastEntryMeta(file, index);
        rebuilt = true;
        this.act(`rebuilt index of sealed segment ${path.basename(file)} (${why})`);
      }
      // First entry (for firstTerm and, on an empty index, the tail covers it already).
      if (!first || first.position !== SEGMENT_HEADER_BYTES) first = await readMetaAt(fd, file, SEGMENT_HEADER_BYTES, tail!.size);
      const seg = this.segmentFromScan(base, file, h.value, index, tail!, true, first ? first.term : h.value.prevTerm);
      seg.fd = fd;
      this.checkContiguity(seg);
      if (first && (first.index !== h.value.baseIndex || first.firstOffset !== h.value.baseOffset)) {
        throw new LanceError('CORRUPT', `${file}: first entry (index ${first.index}, offset ${first.firstOffset}) does not match the header (${h.value.baseIndex}, ${h.value.baseOffset})`, { path: file, position: SEGMENT_HEADER_BYTES });
      }
      if (rebuilt || index.idxTail().length || index.tixTail().length) {
        await this.writeIndexFiles(seg, index, rebuilt ? 'rebuilt' : 'completed');
      }
      return seg;
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
  }

  private async writeIndexFiles(seg: Segment, index: SegmentIndex, what: string): Promise<void> {
    await atomicWriteFile(seg.idxPath, index.idxFile());
    await atomicWriteFile(seg.tixPath, index.tixFile());
    index.markPersisted();
    this.recovery.indexesRebuilt.push(seg.idxPath, seg.tixPath);
    if (what !== 'rebuilt') this.act(`${what} stale index of ${path.basename(seg.file)}`);
  }

  /** Active segment: the scan produced the exact index; rewrite the files if they differ. */
  private async ensureIndexFiles(seg: Segment, index: SegmentIndex): Promise<void> {
    const want = [index.idxFile(), index.tixFile()];
    const have = [seg.idxPath, seg.tixPath].map((p) => {
      try {
        return fs.readFileSync(p);
      } catch {
        return null;
      }
    });
    if (!have[0] || !have[1] || !want[0]!.equals(have[0]) || !want[1]!.equals(have[1])) {
      const why = !have[0] || !have[1] ? 'missing' : 'stale';
      await atomicWriteFile(seg.idxPath, want[0]!);
      await atomicWriteFile(seg.tixPath, want[1]!);
      this.recovery.indexesRebuilt.push(seg.idxPath, seg.tixPath);
      this.act(`rebuilt ${why} index of ${path.basename(seg.file)}`);
    }
    index.markPersisted();
  }

  private setActive(seg: Segment): void {
    const old = seg.fd;
    try {
      seg.fd = fs.openSync(seg.file, 'r+');
      // a read in flight still uses the old fd: it is closed when that read is done (its number stays taken)
      if (seg.readers > 0 && old >= 0) this.retiredFds.push({ seg, fd: old });
      else closeQuietly(old);
      seg.idxFd = fs.openSync(seg.idxPath, 'r+');
      seg.tixFd = fs.openSync(seg.tixPath, 'r+');
    } catch (e) {
      throw ioError('open active segment', seg.file, e);
    }
    seg.sealed = false;
  }

  /** Creates a new segment file with its header and empty index files (durable at the next sync). */
  private createSegmentFile(baseOffset: number, baseIndex: number, prevTerm: number): Segment {
    const file = path.join(this.dir, segmentFileName(baseOffset));
    const header = { version: 1, baseOffset, baseIndex, prevTerm };
    const index = new SegmentIndex(baseOffset, this.options.indexIntervalBytes);
    const seg: Segment = {
      baseOffset,
      file,
      idxPath: this.idxPathOf(baseOffset),
      tixPath: this.tixPathOf(baseOffset),
      header,
      fd: -1,
      idxFd: -1,
      tixFd: -1,
      size: SEGMENT_HEADER_BYTES,
      entries: 0,
      lastIndex: baseIndex - 1,
      nextOffset: baseOffset,
      firstTerm: prevTerm,
      lastTerm: prevTerm,
      index,
      firstEntryTime: -1,
      mtimeMs: this.now(),
      sealed: false,
      dirty: true,
      readers: 0,
      deleted: false,
    };
    try {
      seg.fd = fs.openSync(file, 'wx+');
      writeFully(seg.fd, encodeSegmentHeader(header), 0, file);
      seg.idxFd = fs.openSync(seg.idxPath, 'w+');
      writeFully(seg.idxFd, index.idxFile(), 0, seg.idxPath);
      seg.tixFd = fs.openSync(seg.tixPath, 'w+');
      writeFully(seg.tixFd, index.tixFile(), 0, seg.tixPath);
    } catch (e) {
      closeQuietly(seg.fd);
      closeQuietly(seg.idxFd);
      closeQuietly(seg.tixFd);
      throw e instanceof LanceError ? e : ioError('create segment', file, e);
    }
    this.dirDirty = true;
    return seg;
  }

  // ------------------------------------------------------------------------------------------------ state

  /** First offset still stored locally. */
  get logStartOffset(): number {
    return this.segs[0]!.baseOffset;
  }
  /** Log end offset: the offset the next record gets. */
  get nextOffset(): number {
    return this._nextOffset;
  }
  get lastIndex(): number {
    return this._lastIndex;
  }
  get lastTerm(): number {
    return this._lastTerm;
  }
  /** Raft index of the first entry stored locally (lastIndex + 1 if the log is empty). */
  get firstIndex(): number {
    return this.segs[0]!.header.baseIndex;
  }
  /** Highest Raft index known to be fsynced. */
  get durableIndex(): number {
    return this._durableIndex;
  }
  /** Offset after the last fsynced record. */
  get durableOffset(): number {
    return this._durableOffset;
  }

  /**
   * Changes roll/retention/flush settings of an open log (topic config updates). Validated like open();
   * takes effect at the next append / retention pass.
   */
  updateOptions(patch: Partial<Omit<LogOptions, 'indexIntervalBytes' | 'now'>>): void {
    const next: LogOptions = { ...this.options, ...patch, retention: { ...this.options.retention, ...patch.retention } };
    validateOptions(next);
    this.options.segmentBytes = next.segmentBytes;
    this.options.segmentMs = next.segmentMs;
    this.options.flush = next.flush;
    this.options.retention = next.retention;
  }

  segments(): SegmentInfo[] {
    return this.segs.map((s) => this.infoOf(s));
  }

  private infoOf(s: Segment): SegmentInfo {
    const isActive = s === this.active;
    return {
      baseOffset: s.baseOffset,
      file: s.file,
      sizeBytes: s.size + (isActive ? this.stageLen : 0),
      firstIndex: s.entries > 0 ? s.header.baseIndex : 0,
      lastIndex: s.entries > 0 ? s.lastIndex : 0,
      lastOffset: s.nextOffset - 1,
      maxTimestamp: s.index.maxTimestamp,
      sealed: s.sealed,
    };
  }

  private get active(): Segment {
    return this.segs[this.segs.length - 1]!;
  }

  private checkWritable(): void {
    if (this.closed || this.closing) throw new LanceError('IO', `partition log ${this.dir} is closed`, { path: this.dir });
    if (this.failed) throw new LanceError('IO', `partition log ${this.dir} failed earlier and must be reopened: ${this.failed.message}`, { path: this.dir }, { cause: this.failed });
    if (this.truncating) throw new LanceError('CONFLICT', `partition log ${this.dir}: append while a truncation is running`, { path: this.dir });
  }

  // ------------------------------------------------------------------------------------------------ append

  /**
   * Leader path: assigns Raft indexes (lastIndex+1 …) and offsets (nextOffset …), writes DATA entries' first
   * offset into the stored copy's RecordBatch baseOffset (payload bytes 0..7; the caller's buffer is not
   * modified) and returns at once; `durable` resolves when an fsync covered them.
   */
  append(entries: readonly NewEntry[]): AppendResult {
    this.checkWritable();
    if (entries.length === 0) throw new LanceError('INVALID_ARGUMENT', 'append: no entries', {});
    let term = this._lastTerm;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      validateNewEntry(e, i);
      if (e.term < term) throw new LanceError('INVALID_ARGUMENT', `append: entry ${i} term ${e.term} is below the log's last term ${term}`, { field: `entries[${i}].term` });
      term = e.term;
    }
    const firstIndex = this._lastIndex + 1;
    const firstOffset = this._nextOffset;
    try {
      for (const e of entries) this.appendOne(e, this._lastIndex + 1, this._nextOffset, true);
    } catch (e) {
      // A write failed midway through the batch: memory and file disagree now; only a reopen can fix that.
      throw this.fail(e);
    }
    return { firstOffset, lastOffset: this._nextOffset - 1, firstIndex, lastIndex: this._lastIndex, durable: this.afterAppend() };
  }

  /**
   * Follower path: appends entries exactly as the leader stored them. Their indexes must continue lastIndex and
   * their offsets nextOffset (truncateAfterIndex first when the follower diverged).
   */
  appendReplicated(entries: readonly StoredEntry[]): AppendResult {
    this.checkWritable();
    if (entries.length === 0) throw new LanceError('INVALID_ARGUMENT', 'appendReplicated: no entries', {});
    let idx = this._lastIndex + 1;
    let off = this._nextOffset;
    let term = this._lastTerm;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      validateNewEntry(e, i);
      if (e.index !== idx) throw new LanceError('CONFLICT', `appendReplicated: entry ${i} has raft index ${e.index}, expected ${idx}`, { field: `entries[${i}].index`, expected: idx, got: e.index });
      if (e.firstOffset !== off) throw new LanceError('CONFLICT', `appendReplicated: entry ${i} has first offset ${e.firstOffset}, expected ${off}`, { field: `entries[${i}].firstOffset`, expected: off, got: e.firstOffset });
      if (e.term < term) throw new LanceError('CONFLICT', `appendReplicated: entry ${i} term ${e.term} is below the previous term ${term}`, { field: `entries[${i}].term` });
      idx++;
      off += e.offsetCount;
      term = e.term;
    }
    const firstIndex = this._lastIndex + 1;
    const firstOffset = this._nextOffset;
    try {
      for (const e of entries) this.appendOne(e, e.index, e.firstOffset, false);
    } catch (e) {
      throw this.fail(e);
    }
    return { firstOffset, lastOffset: this._nextOffset - 1, firstIndex, lastIndex: this._lastIndex, durable: this.afterAppend() };
  }

  private appendOne(e: NewEntry, index: number, firstOffset: number, patchBaseOffset: boolean): void {
    const size = entrySize(e.payload.length);
    let seg = this.active;
    const now = this.now();
    if (shouldRoll({ logicalSize: seg.size + this.stageLen, entries: seg.entries, firstEntryTime: seg.firstEntryTime, hasOffsets: seg.nextOffset > seg.baseOffset }, size, this.options, now)) {
      seg = this.roll();
    }
    const position = seg.size + this.stageLen;
    let target: Buffer;
    let at: number;
    if (size <= STAGE_BYTES) {
      if (this.stageLen + size > STAGE_BYTES) this.flushStage();
      target = this.stage;
      at = this.stageLen;
    } else {
      this.flushStage();
      target = Buffer.allocUnsafe(size);
      at = 0;
    }
    encodeEntryFields(target, at, e.type, e.term, index, firstOffset, e.offsetCount, e.maxTimestamp, e.payload, patchBaseOffset);
    if (target === this.stage) {
      this.stageLen += size;
    } else {
      writeFully(seg.fd, target, seg.size, seg.file);
      seg.size += size;
      seg.dirty = true;
    }
    seg.index.addEntry(position, index, firstOffset, e.maxTimestamp);
    if (seg.entries === 0) {
      seg.firstEntryTime = now;
      seg.firstTerm = e.term;
    }
    seg.entries++;
    seg.lastIndex = index;
    seg.nextOffset = firstOffset + e.offsetCount;
    seg.lastTerm = e.term;
    this._lastIndex = index;
    this._lastTerm = e.term;
    this._nextOffset = seg.nextOffset;
    this.windowBytes += size;
  }

  /**
   * Seals the active segment now (if it holds any offset) and makes the roll durable. For tiering: committed data
   * must not wait for a size/age roll before it can be uploaded. Returns the sealed segment, or null when the
   * active segment holds no offsets (rolling then would reuse its file name).
   */
  async rollActive(): Promise<SegmentInfo | null> {
    this.checkWritable();
    const a = this.active;
    if (a.entries === 0 || a.nextOffset === a.baseOffset) return null;
    this.roll();
    await this.flush();
    return this.infoOf(a);
  }

  /** Seals the active segment and starts a new one at nextOffset. */
  private roll(): Segment {
    const old = this.active;
    this.flushStage();
    old.sealed = true;
    // Its index files are complete now; fsync them with the next sync, then close them.
    this.sealedIndexFds.push({ fd: old.idxFd, file: old.idxPath }, { fd: old.tixFd, file: old.tixPath });
    old.idxFd = -1;
    old.tixFd = -1;
    const seg = this.createSegmentFile(this._nextOffset, this._lastIndex + 1, this._lastTerm);
    this.segs.push(seg);
    this.log.info({ sealed: path.basename(old.file), active: path.basename(seg.file), sizeBytes: old.size }, 'rolled segment');
    return seg;
  }

  /** Writes the staged bytes (one write) and the index tails. Synchronous: page-cache speed. */
  private flushStage(): void {
    const seg = this.active;
    if (this.stageLen > 0) {
      writeFully(seg.fd, this.stage.subarray(0, this.stageLen), seg.size, seg.file);
      seg.size += this.stageLen;
      seg.dirty = true;
      this.stageLen = 0;
    }
    const it = seg.index.idxTail();
    const tt = seg.index.tixTail();
    if (it.length) writeFully(seg.idxFd, it, INDEX_HEADER_BYTES + seg.index.idxPersisted, seg.idxPath);
    if (tt.length) writeFully(seg.tixFd, tt, INDEX_HEADER_BYTES + seg.index.tixPersisted, seg.tixPath);
    if (it.length || tt.length) seg.index.markPersisted();
  }

  private afterAppend(): Promise<void> {
    if (!this.window) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Callers may ignore `durable` (acks=0); an fsync failure must not become an unhandled rejection.
      promise.catch(() => undefined);
      this.window = { promise, resolve, reject };
      this.windowStartedAt = performance.now();
    }
    if (!this.writeScheduled) {
      this.writeScheduled = true;
      // One write per event-loop turn: every append made in this turn shares it.
      setImmediate(() => {
        this.writeScheduled = false;
        if (this.closed || this.failed) return;
        try {
          this.flushStage();
        } catch (e) {
          this.fail(e);
        }
      });
    }
    this.scheduleSync();
    return this.window.promise;
  }

  private scheduleSync(): void {
    if (!this.window || this.syncing) return;
    const f: FlushPolicy = this.options.flush;
    let delay = 0;
    const now = performance.now();
    if (f.mode === 'interval') {
      delay = Math.max(0, this.lastSyncStart + f.ms - now);
    } else if (f.mode === 'bytes') {
      delay = this.windowBytes >= f.bytes ? 0 : Math.max(0, this.windowStartedAt + f.maxDelayMs - now);
    }
    const due = now + delay;
    if (this.syncTimer) {
      if (this.syncTimerDue <= due) return;
      this.syncTimer();
    }
    this.syncTimerDue = due;
    if (delay === 0) {
      // After the current turn (not setTimeout: that waits ≥ 1 ms), so appends of this turn join the fsync.
      const h = setImmediate(() => this.runSync());
      this.syncTimer = () => clearImmediate(h);
    } else {
      const h = setTimeout(() => this.runSync(), delay);
      this.syncTimer = () => clearTimeout(h);
    }
  }

  private runSync(): void {
    this.syncTimer = null;
    void this.sync();
  }

  /** One group-commit round: write staged bytes, fdatasync every dirty file (+ dir), resolve the window. */
  private async sync(): Promise<void> {
    if (this.syncing || !this.window) return;
    this.syncing = true;
    const w = this.window;
    this.window = null;
    this.windowBytes = 0;
    if (this.failed) {
      // Never report durability after a failed write or fsync.
      this.syncing = false;
      w.reject(this.failed);
      this.notifyIdle();
      return;
    }
    this.lastSyncStart = performance.now();
    const coveredIndex = this._lastIndex;
    const coveredOffset = this._nextOffset;
    const gen = this.generation;
    try {
      this.flushStage();
      await this.syncFiles();
      if (gen === this.generation) {
        this._durableIndex = Math.max(this._durableIndex, coveredIndex);
        this._durableOffset = Math.max(this._durableOffset, coveredOffset);
      }
      w.resolve();
    } catch (e) {
      const err = this.fail(e);
      w.reject(err);
    } finally {
      this.syncing = false;
    }
    if (this.window && !this.failed) this.scheduleSync();
    else this.notifyIdle();
  }

  private async syncFiles(): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const s of this.segs) {
      if (s.dirty && !s.deleted) {
        s.dirty = false;
        jobs.push(fdatasyncP(s.fd).catch((e) => Promise.reject(ioError('fdatasync', s.file, e))));
      }
    }
    const sealed = this.sealedIndexFds;
    this.sealedIndexFds = [];
    for (const x of sealed) jobs.push(fdatasyncP(x.fd).catch((e) => Promise.reject(ioError('fdatasync', x.file, e))).finally(() => closeQuietly(x.fd)));
    if (this.dirDirty) {
      this.dirDirty = false;
      jobs.push(fsyncDir(this.dir));
    }
    await Promise.all(jobs);
  }

  /** Syncs everything now (used by open/close/truncate). */
  private async syncAll(): Promise<void> {
    this.flushStage();
    await this.syncFiles();
  }

  private fail(e: unknown): LanceError {
    const err = e instanceof LanceError ? e : ioError('write', this.dir, e);
    if (!this.failed) {
      this.failed = err;
      this.log.error({ err }, 'partition log failed; it must be reopened (the page cache can no longer be trusted)');
    }
    return err;
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /**
   * Resolves when everything appended before the call is fsynced (rejects if the log failed). Appends made
   * meanwhile are not waited for, so a busy log cannot starve a caller (close, truncation, retention).
   */
  async flush(): Promise<void> {
    const target = this._lastIndex;
    for (;;) {
      if (this.failed) throw this.failed;
      if (this.syncing) {
        await new Promise<void>((r) => this.idleWaiters.push(r));
        continue;
      }
      if (this._durableIndex >= target && this.window) return; // only later appends are pending
      if (this.window) {
        if (this.syncTimer) {
          this.syncTimer();
          this.syncTimer = null;
        }
        const p = this.window.promise;
        await this.sync();
        await p.catch(() => undefined); // a failure is rethrown as this.failed by the loop
        continue;
      }
      // No window: only file-level work may be left (a roll's new files, sealed index files, the directory).
      if (this.stageLen > 0 || this.sealedIndexFds.length || this.dirDirty || this.segs.some((s) => s.dirty)) {
        this.syncing = true;
        const covered = this._lastIndex;
        const coveredOffset = this._nextOffset;
        try {
          await this.syncAll();
          this._durableIndex = Math.max(this._durableIndex, covered);
          this._durableOffset = Math.max(this._durableOffset, coveredOffset);
        } catch (e) {
          throw this.fail(e);
        } finally {
          this.syncing = false;
          // An append made during this fsync opened a window whose scheduleSync() found us syncing: schedule it.
          if (this.window && !this.failed) this.scheduleSync();
          this.notifyIdle();
        }
      }
      return;
    }
  }

  // ------------------------------------------------------------------------------------------------ read

  private findSegmentByOffset(offset: number): number {
    let lo = 0, hi = this.segs.length - 1, best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segs[mid]!.baseOffset <= offset) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  private findSegmentByIndex(index: number): number {
    let lo = 0, hi = this.segs.length - 1, best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segs[mid]!.header.baseIndex <= index) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  private prepareRead(): void {
    if (this.closed) throw new LanceError('IO', `partition log ${this.dir} is closed`, { path: this.dir });
    // Staged bytes must be in the file before a read (page cache; no fsync).
    if (this.stageLen > 0 && !this.failed) this.flushStage();
  }

  /**
   * Scans entries of `seg` from byte `pos`, calling `visit` for each; stops when visit returns false or at the
   * end of the written bytes. `stopBefore(size)` sees each entry's size (from its length field) before the entry is
   * read, so a fetch that is full does not read the next entry. Payloads are views into the read buffers (no
   * per-entry copy). `sizeHint` is roughly how many bytes the caller wants: it sizes the reads.
   */
  private async scanSegment(
    seg: Segment,
    pos: number,
    sizeHint: number,
    visit: (m: EntryMeta, buf: Buffer, at: number) => boolean,
    stopBefore?: (size: number) => boolean,
    ra?: Readahead | null,
    tail?: ScanTail,
  ): Promise<number> {
    if (seg.deleted) return pos;
    // a read that began before close() and moves on to a segment whose fd is already closed
    if (this.closed) throw new LanceError('IO', `partition log ${this.dir} was closed during the read`, { path: this.dir });
    seg.readers++;
    const gen = this.generation;
    try {
      const end = seg.size;
      const first = Math.max(64 * 1024, Math.min(sizeHint, 16 * 1024 * 1024));
      let chunk: Buffer = Buffer.allocUnsafe(0);
      let bufStart = pos;
      let bufLen = 0;
      let cursor = 0;
      let consumed = 0;
      if (ra && ra.pos === pos && ra.gen === gen) {
        chunk = ra.buf;
        bufLen = Math.min(await ra.len, end - pos);
      }
      for (;;) {
        if (bufStart + cursor >= end) return end;
        if (stopBefore && bufLen - cursor >= 4 && stopBefore(4 + chunk.readUInt32BE(cursor))) {
          if (tail) {
            tail.chunk = chunk;
            tail.start = bufStart;
            tail.len = bufLen;
          }
          return bufStart + cursor;
        }
        const r = checkEntry(chunk.subarray(0, bufLen), cursor, bufStart + cursor, bufStart + bufLen >= end);
        if (r === 'more') {
          const unread = bufLen - cursor;
          const need = unread >= 4 ? 4 + chunk.readUInt32BE(cursor) : ENTRY_HEADER_BYTES;
          // Entries already handed to `visit` keep views into the old chunk: always read into a fresh buffer,
          // sized by what the caller still wants (at least this entry).
          const size = Math.min(Math.max(need, consumed === 0 ? first : Math.max(64 * 1024, Math.min(first, sizeHint - consumed))), Math.max(need, end - bufStart - cursor));
          const nb = Buffer.allocUnsafe(size);
          chunk.copy(nb, 0, cursor, bufLen);
          chunk = nb;
          bufStart += cursor;
          cursor = 0;
          bufLen = unread;
          const want = Math.min(chunk.length - bufLen, end - (bufStart + bufLen));
          let n = 0;
          try {
            n = await readP(seg.fd, chunk, bufLen, want, bufStart + bufLen);
          } catch (e) {
            if (seg.deleted || gen !== this.generation) return bufStart + cursor;
            throw ioError('read segment', seg.file, e);
          }
          if (n === 0) {
            if (gen !== this.generation) return bufStart + cursor;
            throw new LanceError('CORRUPT', `${seg.file}: unexpected end of file at byte ${bufStart + bufLen} (expected ${end} bytes)`, { path: seg.file, position: bufStart + bufLen });
          }
          bufLen += n;
          continue;
        }
        if (isScanError(r)) {
          if (gen !== this.generation || seg.deleted) return bufStart + cursor; // truncated under us
          throw new LanceError('CORRUPT', `${seg.file}: ${r.reason}`, { path: seg.file, position: r.position });
        }
        if (!visit(r, chunk, cursor)) return bufStart + cursor;
        cursor += r.size;
        consumed += r.size;
      }
    } finally {
      this.releaseReader(seg);
    }
  }

  private releaseReader(seg: Segment): void {
    seg.readers--;
    if (seg.readers === 0 && this.retiredFds.length > 0) {
      for (const r of this.retiredFds) if (r.seg === seg) closeQuietly(r.fd);
      this.retiredFds = this.retiredFds.filter((r) => r.seg !== seg);
    }
    if ((seg.deleted || this.closed) && seg.readers === 0 && seg.fd >= 0) {
      closeQuietly(seg.fd);
      seg.fd = -1;
    }
  }

  private takeReadahead(seg: Segment, offset: number): Readahead | null {
    const found = this.readaheads.find((r) => r.seg === seg && r.offset === offset && r.gen === this.generation) ?? null;
    this.dropReadaheads((r) => r === found || r.gen !== this.generation);
    return found;
  }

  /** Starts reading [pos, pos+size) of `seg` for a fetch expected to start at `offset` next. */
  private startReadahead(seg: Segment, offset: number, pos: number, size: number, tail: ScanTail): void {
    if (seg.deleted || seg.fd < 0 || pos >= seg.size) return;
    const bytes = Math.min(size, seg.size - pos);
    // Bounded process-wide so thousands of partitions cannot pin unbounded memory in read-ahead buffers.
    if (readaheadBytes + bytes > READAHEAD_BUDGET_BYTES) return;
    readaheadBytes += bytes;
    const buf = Buffer.allocUnsafe(bytes);
    // Bytes of the last read past `pos` are reused, so the disk read continues exactly where the previous one
    // ended: strictly sequential reads keep the kernel's own read-ahead going.
    let have = 0;
    if (tail.chunk && pos >= tail.start && pos < tail.start + tail.len) {
      have = Math.min(bytes, tail.start + tail.len - pos);
      tail.chunk.copy(buf, 0, pos - tail.start, pos - tail.start + have);
    }
    seg.readers++; // keeps the fd open (and its number unused) until the read is done
    const len = (have < bytes ? readP(seg.fd, buf, have, bytes - have, pos + have) : Promise.resolve(0))
      .then((n) => have + n)
      .catch(() => 0)
      .finally(() => this.releaseReader(seg));
    this.readaheads.push({ seg, offset, pos, gen: this.generation, buf, len, bytes });
    // Two sequential readers per partition at most; older read-aheads are dropped.
    if (this.readaheads.length > 2) this.dropReadaheads((r) => r === this.readaheads[0]);
  }

  /** Forgets read-aheads (their budget is returned; bytes already read stay in the page cache). */
  private dropReadaheads(which: (r: Readahead) => boolean): void {
    this.readaheads = this.readaheads.filter((r) => {
      if (!which(r)) return true;
      readaheadBytes -= r.bytes;
      return false;
    });
  }

  /**
   * Kafka fetch: entries starting with the one that contains `fromOffset`, up to `maxBytes` of payload (at least
   * one entry even if bigger, like Kafka). fromOffset == nextOffset → []. Outside [logStartOffset, nextOffset]
   * → OFFSET_OUT_OF_RANGE. Returned payloads are views of a read buffer (do not modify).
   */
  async read(fromOffset: number, maxBytes: number): Promise<StoredEntry[]> {
    this.prepareRead();
    if (!Number.isInteger(fromOffset) || fromOffset < this.logStartOffset || fromOffset > this._nextOffset) {
      throw new LanceError('OFFSET_OUT_OF_RANGE', `offset ${fromOffset} is outside [${this.logStartOffset}, ${this._nextOffset}]`, { offset: fromOffset, logStartOffset: this.logStartOffset, nextOffset: this._nextOffset });
    }
    const out: StoredEntry[] = [];
    if (fromOffset === this._nextOffset) return out;
    let bytes = 0;
    let done = false;
    const sizeHint = maxBytes + this.options.indexIntervalBytes;
    for (let i = this.findSegmentByOffset(fromOffset); i < this.segs.length && !done; i++) {
      const seg = this.segs[i]!;
      const ra = out.length === 0 ? this.takeReadahead(seg, fromOffset) : null;
      const sample = ra || out.length > 0 ? null : seg.index.lookupOffset(fromOffset);
      const pos = ra ? ra.pos : sample ? sample.position : SEGMENT_HEADER_BYTES;
      const full = (size: number): boolean => {
        if (out.length > 0 && bytes + (size - ENTRY_HEADER_BYTES) > maxBytes) done = true;
        return done;
      };
      const tail: ScanTail = { chunk: null, start: 0, len: 0 };
      const stop = await this.scanSegment(seg, pos, sizeHint, (m, buf, at) => {
        if (out.length === 0 && m.firstOffset + m.offsetCount <= fromOffset) return true;
        out.push(viewEntry(m, buf, at));
        bytes += m.size - ENTRY_HEADER_BYTES;
        return true;
      }, full, ra, tail);
      if (done && out.length > 0) {
        const last = out[out.length - 1]!;
        this.startReadahead(seg, last.firstOffset + last.offsetCount, stop, sizeHint, tail);
      }
    }
    return out;
  }

  /** Raft: entries from Raft index `fromIndex`, at most maxEntries and maxBytes of payload (at least one). */
  async readByIndex(fromIndex: number, maxEntries: number, maxBytes: number): Promise<StoredEntry[]> {
    this.prepareRead();
    if (!Number.isInteger(fromIndex) || fromIndex < this.firstIndex) {
      throw new LanceError('OFFSET_OUT_OF_RANGE', `raft index ${fromIndex} is before the first stored index ${this.firstIndex}`, { index: fromIndex, firstIndex: this.firstIndex });
    }
    const out: StoredEntry[] = [];
    if (fromIndex > this._lastIndex || maxEntries <= 0) return out;
    let bytes = 0;
    let done = false;
    for (let i = this.findSegmentByIndex(fromIndex); i < this.segs.length && !done; i++) {
      const seg = this.segs[i]!;
      const sample = out.length === 0 ? seg.index.lookupIndex(fromIndex) : null;
      const pos = sample ? sample.position : SEGMENT_HEADER_BYTES;
      const full = (size: number): boolean => {
        if (out.length > 0 && (out.length >= maxEntries || bytes + (size - ENTRY_HEADER_BYTES) > maxBytes)) done = true;
        return done;
      };
      await this.scanSegment(seg, pos, Math.min(maxBytes, 64 * 1024 * 1024) + this.options.indexIntervalBytes, (m, buf, at) => {
        if (m.index < fromIndex) return true;
        out.push(viewEntry(m, buf, at));
        bytes += m.size - ENTRY_HEADER_BYTES;
        return true;
      }, full);
    }
    return out;
  }

  /** Raft term of entry `index` (0 for index 0; the segment header's prevTerm for firstIndex - 1). */
  async termAt(index: number): Promise<number> {
    if (index === this._lastIndex) return this._lastTerm;
    if (index === 0) return 0;
    if (index > this._lastIndex) throw new LanceError('OFFSET_OUT_OF_RANGE', `raft index ${index} is after the last index ${this._lastIndex}`, { index });
    if (index === this.firstIndex - 1) return this.segs[0]!.header.prevTerm;
    if (index < this.firstIndex) throw new LanceError('OFFSET_OUT_OF_RANGE', `raft index ${index} is before the first stored index ${this.firstIndex}`, { index });
    const seg = this.segs[this.findSegmentByIndex(index)]!;
    // Terms never decrease: a segment whose first and last terms agree holds only that term.
    if (seg.firstTerm >= 0 && seg.firstTerm === seg.lastTerm) return seg.lastTerm;
    if (index === seg.lastIndex) return seg.lastTerm;
    const [e] = await this.readByIndex(index, 1, 0);
    if (!e || e.index !== index) throw new LanceError('INTERNAL', `termAt(${index}): entry not found in ${seg.file}`, { index });
    return e.term;
  }

  /**
   * Kafka ListOffsets by timestamp: the first entry (with records) whose batch max timestamp ≥ ts; null when
   * there is none (the caller answers with the log end offset).
   */
  async offsetForTimestamp(ts: number): Promise<TimestampLookup | null> {
    this.prepareRead();
    for (const seg of this.segs) {
      if (seg.index.maxTimestamp < ts) continue;
      const sample = seg.index.lookupTimestamp(ts);
      let found: TimestampLookup | null = null;
      await this.scanSegment(seg, sample ? sample.position : SEGMENT_HEADER_BYTES, this.options.indexIntervalBytes * 2, (m) => {
        if (m.offsetCount > 0 && m.maxTimestamp >= ts) {
          found = { offset: m.firstOffset, timestamp: m.maxTimestamp };
          return false;
        }
        return true;
      });
      if (found) return found;
    }
    return null;
  }

  // ------------------------------------------------------------------------------------------------ truncation

  /**
   * Raft: removes every entry after `index` (across segment boundaries), fixes the indexes, fsyncs, and returns the
   * removed entries (so the caller can quarantine them). Appends are refused while it runs.
   */
  async truncateAfterIndex(index: number): Promise<StoredEntry[]> {
    if (index >= this._lastIndex) return [];
    if (!Number.isInteger(index) || index < this.firstIndex - 1) {
      throw new LanceError('OFFSET_OUT_OF_RANGE', `cannot truncate after raft index ${index}: first stored index is ${this.firstIndex}`, { index });
    }
    this.checkWritable();
    this.truncating = true;
    try {
      await this.flush();
      const removed = (await this.readByIndex(index + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).map(copyEntry);
      this.generation++;
      this.dropReadaheads(() => true);
      let si = this.findSegmentByIndex(index + 1);
      // A segment that would become empty goes entirely (unless it is the first one).
      if (si > 0 && this.segs[si]!.header.baseIndex === index + 1) si--;
      const keep = this.segs[si]!;
      for (const s of this.segs.splice(si + 1)) {
        this.deleteSegment(s);
        this.log.warn({ file: s.file }, 'truncateAfterIndex: deleted segment');
      }
      // Cut position inside `keep`: the first entry with raft index > index.
      let cut = keep.size;
      await this.scanSegment(keep, keep.index.lookupIndex(index + 1)?.position ?? SEGMENT_HEADER_BYTES, this.options.indexIntervalBytes * 2, (m) => {
        if (m.index > index) {
          cut = m.position;
          return false;
        }
        return true;
      });
      if (keep.fd < 0 || keep.sealed) this.setActive(keep);
      try {
        fs.ftruncateSync(keep.fd, cut);
      } catch (e) {
        throw ioError('truncate', keep.file, e);
      }
      keep.size = cut;
      keep.sealed = false;
      // Rebuild this segment's index and state from what remains (rare operation: a full scan is fine).
      const scan = await rebuildIndexFromSegment(keep.file, keep.baseOffset, this.options.indexIntervalBytes);
      if (scan.error) throw new LanceError('CORRUPT', `${keep.file}: ${scan.error.reason}`, { path: keep.file, position: scan.error.position });
      keep.index = scan.index;
      await atomicWriteFile(keep.idxPath, scan.index.idxFile());
      await atomicWriteFile(keep.tixPath, scan.index.tixFile());
      scan.index.markPersisted();
      closeQuietly(keep.idxFd);
      closeQuietly(keep.tixFd);
      keep.idxFd = fs.openSync(keep.idxPath, 'r+');
      keep.tixFd = fs.openSync(keep.tixPath, 'r+');
      const tail = await this.lastEntryMeta(keep.file, keep.index);
      keep.entries = tail.last ? tail.last.index - keep.header.baseIndex + 1 : 0;
      keep.lastIndex = tail.last ? tail.last.index : keep.header.baseIndex - 1;
      keep.nextOffset = tail.last ? tail.last.firstOffset + tail.last.offsetCount : keep.baseOffset;
      keep.lastTerm = tail.last ? tail.last.term : keep.header.prevTerm;
      if (!tail.last) keep.firstEntryTime = -1;
      this._lastIndex = keep.lastIndex;
      this._lastTerm = keep.lastTerm;
      this._nextOffset = keep.nextOffset;
      keep.dirty = true;
      this.dirDirty = true;
      await this.syncAll();
      this._durableIndex = Math.min(this._durableIndex, this._lastIndex);
      this._durableOffset = Math.min(this._durableOffset, this._nextOffset);
      this.log.warn({ afterIndex: index, removed: removed.length, nextOffset: this._nextOffset }, 'truncated log after raft index');
      return removed;
    } finally {
      this.truncating = false;
    }
  }

  /**
   * Raft snapshot install / follower far behind: discards the whole local log and continues empty at the given
   * position — the next entry gets raft index `baseIndex` and offset `baseOffset`, and termAt(baseIndex - 1) is
   * `prevTerm`. Returns the removed segments. Crash-consistent: segments are deleted newest first, so a crash
   * leaves either a prefix of the old log, an empty log, or the new empty log — never a mixture; the caller
   * (which persisted its snapshot first) redoes the reset if the log does not match after a restart.
   */
  async reset(pos: { baseOffset: number; baseIndex: number; prevTerm: number }): Promise<SegmentInfo[]> {
    for (const [k, v, min] of [['baseOffset', pos.baseOffset, 0], ['baseIndex', pos.baseIndex, 1], ['prevTerm', pos.prevTerm, 0]] as const) {
      if (!Number.isSafeInteger(v) || v < min) throw new LanceError('INVALID_ARGUMENT', `reset: ${k} must be an integer ≥ ${min}, got ${v}`, { field: k });
    }
    this.checkWritable();
    this.truncating = true;
    try {
      await this.flush();
      this.generation++;
      this.dropReadaheads(() => true);
      const old = this.segs.splice(0);
      const infos = old.map((s) => this.infoOf(s));
      for (const s of old.slice().reverse()) this.deleteSegment(s);
      for (const x of this.sealedIndexFds) closeQuietly(x.fd);
      this.sealedIndexFds = [];
      await fsyncDir(this.dir);
      this.dirDirty = false;
      const seg = this.createSegmentFile(pos.baseOffset, pos.baseIndex, pos.prevTerm);
      this.segs.push(seg);
      this.setActive(seg);
      this._lastIndex = pos.baseIndex - 1;
      this._lastTerm = pos.prevTerm;
      this._nextOffset = pos.baseOffset;
      await this.syncAll();
      this._durableIndex = this._lastIndex;
      this._durableOffset = this._nextOffset;
      this.log.warn({ ...pos, removedSegments: infos.length }, 'log reset (snapshot install)');
      return infos;
    } finally {
      this.truncating = false;
    }
  }

  private deleteSegment(s: Segment): void {
    s.deleted = true;
    for (const f of [s.file, s.idxPath, s.tixPath]) fs.rmSync(f, { force: true });
    closeQuietly(s.idxFd);
    closeQuietly(s.tixFd);
    s.idxFd = s.tixFd = -1;
    if (s.readers === 0) {
      closeQuietly(s.fd);
      s.fd = -1;
    }
    this.dropReadaheads((r) => r.seg === s);
    this.dirDirty = true;
  }

  /**
   * Deletes whole sealed segments whose records are all below `offset`. Returns what was deleted.
   * `canDelete` lets tiering keep a segment until its upload is verified.
   */
  async truncateBeforeOffset(offset: number, canDelete: (s: SegmentInfo) => boolean = () => true): Promise<SegmentInfo[]> {
    let n = 0;
    while (n < this.segs.length - 1 && this.segs[n]!.sealed && this.segs[n]!.nextOffset <= offset && canDelete(this.infoOf(this.segs[n]!))) n++;
    return this.deletePrefix(n, `below offset ${offset}`);
  }

  /**
   * Applies the retention policy (0 = unlimited) to sealed segments; never deletes the active one.
   * `canDelete` lets tiering keep a segment until its upload is verified.
   */
  async enforceRetention(canDelete: (s: SegmentInfo) => boolean = () => true): Promise<SegmentInfo[]> {
    const cands = this.segs.map((s) => ({ sizeBytes: s.size + (s === this.active ? this.stageLen : 0), maxTimestamp: s.index.maxTimestamp, mtimeMs: s.mtimeMs, sealed: s.sealed }));
    let n = planRetention(cands, this.options.retention, this.now());
    let ok = 0;
    while (ok < n && canDelete(this.infoOf(this.segs[ok]!))) ok++;
    n = ok;
    return this.deletePrefix(n, 'retention');
  }

  private async deletePrefix(n: number, why: string): Promise<SegmentInfo[]> {
    if (n <= 0) return [];
    // Everything before must be durable first: deleting while a roll's files are unsynced could leave a gap.
    await this.flush();
    const gone = this.segs.splice(0, n);
    const infos = gone.map((s) => this.infoOf(s));
    for (const s of gone) {
      this.deleteSegment(s);
      this.log.info({ file: s.file, why }, 'deleted segment');
    }
    await this.flush();
    return infos;
  }

  // ------------------------------------------------------------------------------------------------ close

  /** Flushes and fsyncs everything, then closes the files. Idempotent. */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.syncTimer) {
      this.syncTimer();
      this.syncTimer = null;
    }
    let err: unknown = null;
    if (!this.failed) {
      try {
        await this.flush();
      } catch (e) {
        err = e;
      }
    }
    this.closed = true;
    this.dropReadaheads(() => true);
    if (this.window) this.window.reject(new LanceError('IO', `partition log ${this.dir} closed before fsync`, { path: this.dir }));
    this.window = null;
    this.closeAllFds();
    if (err) throw err;
  }

  private closeAllFds(): void {
    for (const s of this.segs) {
      // A read in flight keeps its fd until it is done (releaseReader closes it): closed now, its number could be
      // reused by any open in the process and the read would get EBADF or another file's bytes.
      if (s.readers === 0) {
        closeQuietly(s.fd);
        s.fd = -1;
      }
      closeQuietly(s.idxFd);
      closeQuietly(s.tixFd);
      s.idxFd = s.tixFd = -1;
    }
    for (const x of this.sealedIndexFds) closeQuietly(x.fd);
    this.sealedIndexFds = [];
  }
}

// ---------------------------------------------------------------------------------------------- helpers

/** Internal signal: the segment before the active one has a damaged tail (see recover()). */
class RollCrash extends Error {
  constructor(readonly base: number, readonly reason: string) {
    super(reason);
  }
}

function validateNewEntry(e: NewEntry, i: number): void {
  const f = (name: string, msg: string): never => {
    throw new LanceError('INVALID_ARGUMENT', `entries[${i}].${name}: ${msg}`, { field: `entries[${i}].${name}` });
  };
  if (e.type !== EntryType.DATA && e.type !== EntryType.NOOP && e.type !== EntryType.CONFIG && e.type !== EntryType.CONTROL) f('type', `unknown entry type ${String(e.type)}`);
  if (!Number.isSafeInteger(e.term) || e.term < 0) f('term', `must be a non-negative integer, got ${e.term}`);
  if (!Number.isInteger(e.offsetCount) || e.offsetCount < 0 || e.offsetCount > 0xffffffff) f('offsetCount', `must be an integer in [0, 2^32), got ${e.offsetCount}`);
  if (e.type !== EntryType.DATA && e.offsetCount !== 0) f('offsetCount', `must be 0 for entry type ${e.type}, got ${e.offsetCount}`);
  if (e.type === EntryType.DATA && e.offsetCount === 0) f('offsetCount', 'a DATA entry must hold at least one record');
  if (!Number.isSafeInteger(e.maxTimestamp) || e.maxTimestamp < -1) f('maxTimestamp', `must be an integer ≥ -1, got ${e.maxTimestamp}`);
  if (!Buffer.isBuffer(e.payload)) f('payload', 'must be a Buffer');
  if (e.payload.length > MAX_ENTRY_PAYLOAD_BYTES) f('payload', `${e.payload.length} bytes exceeds the ${MAX_ENTRY_PAYLOAD_BYTES}-byte maximum`);
  if (e.type === EntryType.DATA) checkRecordBatch(e.payload, `entries[${i}].payload`);
}


function viewEntry(m: EntryMeta, buf: Buffer, at: number): StoredEntry {
  return { type: m.type, term: m.term, index: m.index, firstOffset: m.firstOffset, offsetCount: m.offsetCount, maxTimestamp: m.maxTimestamp, payload: buf.subarray(at + ENTRY_HEADER_BYTES, at + m.size) };
}

function copyEntry(e: StoredEntry): StoredEntry {
  return { ...e, payload: Buffer.from(e.payload) };
}

/** Reads one entry's metadata at `pos` (sealed-segment open: first entry). */
async function readMetaAt(fd: number, file: string, pos: number, end: number): Promise<EntryMeta | null> {
  if (pos >= end) return null;
  const hb = Buffer.allocUnsafe(4);
  await readP(fd, hb, 0, 4, pos);
  const len = 4 + hb.readUInt32BE(0);
  const b = Buffer.allocUnsafe(Math.min(len, end - pos));
  const n = await readP(fd, b, 0, b.length, pos);
  const r = checkEntry(b.subarray(0, n), 0, pos, true);
  if (r === 'more' || isScanError(r)) {
    throw new LanceError('CORRUPT', `${file}: ${r === 'more' ? `short read at byte ${pos}` : r.reason}; run \`lnc verify-data\``, { path: file, position: pos });
  }
  return r;
}
