/**
 * Sparse offset index (.idx) and time index (.tix) of one segment. Big endian. Byte format in docs/format.md.
 *
 * Both files: 24-byte header
 *   0 magic "LNCIDX" | "LNCTIX" (6 bytes) | 6 version u8 (=1) | 7 flags u8 (=0) | 8 base offset i64 |
 *   16 interval bytes u32 | 20 crc32c u32 over bytes 0..19
 * followed by 16-byte entries:
 *   .idx: relative offset u32 (firstOffset - base offset) | position u32 | raft index u64
 *   .tix: max timestamp before i64 | relative offset u32 | position u32
 *
 * Sampling rule (deterministic, so a rebuild is byte-identical): the first entry of a segment is sampled, then
 * every entry whose position is ≥ intervalBytes past the previously sampled entry's position. Every sample
 * gets an .idx entry; it gets a .tix entry when the max timestamp of all entries BEFORE it is greater than that
 * of the previous .tix entry (so .tix is strictly increasing; "max before" makes the lookup exact even though
 * batch timestamps are not monotonic).
 */
import { LanceError } from '../common/errors.ts';
import { crc32c } from './crc.ts';
import { SegmentScanner, readI64, writeI64, type EntryMeta, type ScanError, type SegmentHeader } from './segment-format.ts';

export const IDX_MAGIC = 'LNCIDX';
export const TIX_MAGIC = 'LNCTIX';
export const INDEX_FORMAT_VERSION = 1;
export const INDEX_HEADER_BYTES = 24;
export const INDEX_ENTRY_BYTES = 16;

export type IndexKind = 'offset' | 'time';

export interface IndexHeader {
  kind: IndexKind;
  baseOffset: number;
  intervalBytes: number;
}

export interface OffsetIndexEntry {
  offset: number;
  position: number;
  index: number;
}

export interface TimeIndexEntry {
  /** max timestamp of every entry in the segment before `position` */
  timestamp: number;
  offset: number;
  position: number;
}

export function encodeIndexHeader(h: IndexHeader): Buffer {
  const b = Buffer.alloc(INDEX_HEADER_BYTES);
  b.write(h.kind === 'offset' ? IDX_MAGIC : TIX_MAGIC, 0, 'latin1');
  b[6] = INDEX_FORMAT_VERSION;
  b[7] = 0;
  writeI64(b, h.baseOffset, 8);
  b.writeUInt32BE(h.intervalBytes, 16);
  b.writeUInt32BE(crc32c(b.subarray(0, 20)), 20);
  return b;
}

export function decodeIndexHeader(b: Buffer): { ok: true; value: IndexHeader } | { ok: false; error: ScanError } {
  if (b.length < INDEX_HEADER_BYTES) return { ok: false, error: { position: 0, reason: `torn index header: ${b.length} of ${INDEX_HEADER_BYTES} bytes` } };
  const magic = b.toString('latin1', 0, 6);
  if (magic !== IDX_MAGIC && magic !== TIX_MAGIC) return { ok: false, error: { position: 0, reason: `bad index magic ${JSON.stringify(magic)} at byte 0` } };
  const stored = b.readUInt32BE(20);
  if (stored !== crc32c(b.subarray(0, 20))) return { ok: false, error: { position: 20, reason: `index header crc mismatch at byte 20` } };
  if (b[6] !== INDEX_FORMAT_VERSION) return { ok: false, error: { position: 6, reason: `unsupported index version ${b[6]} at byte 6` } };
  return { ok: true, value: { kind: magic === IDX_MAGIC ? 'offset' : 'time', baseOffset: readI64(b, 8), intervalBytes: b.readUInt32BE(16) } };
}

/** Growable byte array of 16-byte index entries (no header). */
class EntryArray {
  buf = Buffer.alloc(INDEX_ENTRY_BYTES * 64);
  length = 0; // bytes used
  reserve(): number {
    if (this.length + INDEX_ENTRY_BYTES > this.buf.length) {
      const nb = Buffer.alloc(this.buf.length * 2);
      this.buf.copy(nb, 0, 0, this.length);
      this.buf = nb;
    }
    const at = this.length;
    this.length += INDEX_ENTRY_BYTES;
    return at;
  }
  get count(): number {
    return this.length / INDEX_ENTRY_BYTES;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
  truncate(count: number): void {
    this.length = count * INDEX_ENTRY_BYTES;
  }
}

/**
 * In-memory sparse index of one segment, fed entry by entry (append path, recovery scan, rebuild) or loaded from
 * the files. Lookups are binary searches over the raw bytes.
 */
export class SegmentIndex {
  private idx = new EntryArray();
  private tix = new EntryArray();
  private lastSampledPos = -1;
  /** max timestamp of all entries added so far */
  maxTimestamp = -1;
  private lastTixTs = -1;
  /** bytes of idx / tix already persisted to the files (the append path writes only the tail) */
  idxPersisted = 0;
  tixPersisted = 0;

  constructor(readonly baseOffset: number, readonly intervalBytes: number) {
    if (!Number.isInteger(intervalBytes) || intervalBytes < 1) {
      throw new LanceError('INVALID_CONFIG', `indexIntervalBytes must be a positive integer, got ${intervalBytes}`, { field: 'indexIntervalBytes' });
    }
  }

  /** Feed the next entry of the segment (in order). */
  add(m: Pick<EntryMeta, 'position' | 'index' | 'firstOffset' | 'maxTimestamp'>): void {
    this.addEntry(m.position, m.index, m.firstOffset, m.maxTimestamp);
  }

  /** add() with the fields as arguments (the append hot path: no object per entry). */
  addEntry(position: number, index: number, firstOffset: number, maxTimestamp: number): void {
    if (this.lastSampledPos < 0 || position - this.lastSampledPos >= this.intervalBytes) {
      this.lastSampledPos = position;
      const rel = firstOffset - this.baseOffset;
      const a = this.idx.reserve();
      this.idx.buf.writeUInt32BE(rel, a);
      this.idx.buf.writeUInt32BE(position, a + 4);
      writeI64(this.idx.buf, index, a + 8);
      if (this.maxTimestamp > this.lastTixTs) {
        this.lastTixTs = this.maxTimestamp;
        const t = this.tix.reserve();
        writeI64(this.tix.buf, this.maxTimestamp, t);
        this.tix.buf.writeUInt32BE(rel, t + 8);
        this.tix.buf.writeUInt32BE(position, t + 12);
      }
    }
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
  }

  get offsetEntryCount(): number {
    return this.idx.count;
  }
  get timeEntryCount(): number {
    return this.tix.count;
  }

  /** Full file images (header + entries). */
  idxFile(): Buffer {
    return Buffer.concat([encodeIndexHeader({ kind: 'offset', baseOffset: this.baseOffset, intervalBytes: this.intervalBytes }), this.idx.bytes()]);
  }
  tixFile(): Buffer {
    return Buffer.concat([encodeIndexHeader({ kind: 'time', baseOffset: this.baseOffset, intervalBytes: this.intervalBytes }), this.tix.bytes()]);
  }
  /** Entry bytes not yet persisted; call markPersisted() after writing them at file position header+persisted. */
  idxTail(): Buffer {
    return this.idx.buf.subarray(this.idxPersisted, this.idx.length);
  }
  tixTail(): Buffer {
    return this.tix.buf.subarray(this.tixPersisted, this.tix.length);
  }
  markPersisted(): void {
    this.idxPersisted = this.idx.length;
    this.tixPersisted = this.tix.length;
  }

  offsetEntry(i: number): OffsetIndexEntry {
    const a = i * INDEX_ENTRY_BYTES;
    return { offset: this.baseOffset + this.idx.buf.readUInt32BE(a), position: this.idx.buf.readUInt32BE(a + 4), index: readI64(this.idx.buf, a + 8) };
  }
  timeEntry(i: number): TimeIndexEntry {
    const a = i * INDEX_ENTRY_BYTES;
    return { timestamp: readI64(this.tix.buf, a), offset: this.baseOffset + this.tix.buf.readUInt32BE(a + 8), position: this.tix.buf.readUInt32BE(a + 12) };
  }

  /** Last sample with offset ≤ target (scan forward from it), or null if target is before the first sample. */
  lookupOffset(target: number): OffsetIndexEntry | null {
    const rel = target - this.baseOffset;
    let lo = 0, hi = this.idx.count - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.idx.buf.readUInt32BE(mid * INDEX_ENTRY_BYTES) <= rel) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best < 0 ? null : this.offsetEntry(best);
  }

  /** Last sample with raft index ≤ target. */
  lookupIndex(target: number): OffsetIndexEntry | null {
    let lo = 0, hi = this.idx.count - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (readI64(this.idx.buf, mid * INDEX_ENTRY_BYTES + 8) <= target) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best < 0 ? null : this.offsetEntry(best);
  }

  /** Last time sample whose "max before" < ts: every entry before it has maxTimestamp < ts. */
  lookupTimestamp(ts: number): TimeIndexEntry | null {
    let lo = 0, hi = this.tix.count - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (readI64(this.tix.buf, mid * INDEX_ENTRY_BYTES) < ts) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best < 0 ? null : this.timeEntry(best);
  }

  /** The last offset sample (the short tail scan on open starts there). */
  lastOffsetEntry(): OffsetIndexEntry | null {
    return this.idx.count > 0 ? this.offsetEntry(this.idx.count - 1) : null;
  }

  /**
   * Loads entries from file images. Returns a reason string when the files are not a well-formed index for this
   * segment (wrong header, torn entry, non-monotonic entries); the caller then rebuilds.
   */
  static fromFiles(idxFile: Buffer, tixFile: Buffer, baseOffset: number, intervalBytes: number): SegmentIndex | string {
    const si = new SegmentIndex(baseOffset, intervalBytes);
    for (const [file, kind, arr] of [[idxFile, 'offset', si.idx], [tixFile, 'time', si.tix]] as const) {
      const h = decodeIndexHeader(file);
      if (!h.ok) return h.error.reason;
      if (h.value.kind !== kind) return `expected a ${kind} index, found a ${h.value.kind} index`;
      if (h.value.baseOffset !== baseOffset) return `index base offset ${h.value.baseOffset} != segment base offset ${baseOffset}`;
      if (h.value.intervalBytes !== intervalBytes) return `index interval ${h.value.intervalBytes} != configured ${intervalBytes}`;
      const body = file.length - INDEX_HEADER_BYTES;
      if (body % INDEX_ENTRY_BYTES !== 0) return `torn index entry: ${body} entry bytes is not a multiple of ${INDEX_ENTRY_BYTES}`;
      arr.buf = Buffer.from(file.subarray(INDEX_HEADER_BYTES));
      if (arr.buf.length === 0) arr.buf = Buffer.alloc(INDEX_ENTRY_BYTES * 64);
      arr.length = body;
    }
    // Monotonic checks, and restore the builder state so appends continue exactly like a rebuild would.
    let prev: OffsetIndexEntry | null = null;
    for (let i = 0; i < si.idx.count; i++) {
      const e = si.offsetEntry(i);
      if (prev && (e.position - prev.position < intervalBytes || e.offset < prev.offset || e.index <= prev.index)) {
        return `offset index entry ${i} is not after entry ${i - 1} (position ${e.position}, offset ${e.offset}, index ${e.index})`;
      }
      prev = e;
    }
    let prevTs = -1;
    let k = 0;
    for (let i = 0; i < si.tix.count; i++) {
      const t = si.timeEntry(i);
      if (t.timestamp <= prevTs) return `time index entry ${i} timestamp ${t.timestamp} does not increase`;
      prevTs = t.timestamp;
      // Every time sample sits on an offset sample (same position and offset).
      while (k < si.idx.count && si.offsetEntry(k).position < t.position) k++;
      const o = k < si.idx.count ? si.offsetEntry(k) : null;
      if (!o || o.position !== t.position || o.offset !== t.offset) return `time index entry ${i} (position ${t.position}) is not on an offset index sample`;
    }
    si.lastSampledPos = prev ? prev.position : -1;
    si.lastTixTs = prevTs;
    si.maxTimestamp = prevTs; // the caller feeds the tail entries after the last sample to complete it
    si.idxPersisted = si.idx.length;
    si.tixPersisted = si.tix.length;
    return si;
  }

  /** Feeds only maxTimestamp (for entries after the last sample, when resuming from files). */
  noteTimestamp(ts: number): void {
    if (ts > this.maxTimestamp) this.maxTimestamp = ts;
  }

  /** Drops samples at positions ≥ `position` (after a truncation) and recomputes the builder state. */
  truncateAt(position: number, maxTimestampBefore: number): void {
    let n = 0;
    while (n < this.idx.count && this.offsetEntry(n).position < position) n++;
    this.idx.truncate(n);
    let t = 0;
    while (t < this.tix.count && this.timeEntry(t).position < position) t++;
    this.tix.truncate(t);
    this.lastSampledPos = n > 0 ? this.offsetEntry(n - 1).position : -1;
    this.lastTixTs = t > 0 ? this.timeEntry(t - 1).timestamp : -1;
    this.maxTimestamp = maxTimestampBefore;
    this.idxPersisted = Math.min(this.idxPersisted, this.idx.length);
    this.tixPersisted = Math.min(this.tixPersisted, this.tix.length);
  }
}

export interface RebuildResult {
  index: SegmentIndex;
  header: SegmentHeader | null;
  entries: number;
  /** file position after the last good entry */
  validEnd: number;
  /** first problem in the segment (the index covers only entries before it) */
  error: ScanError | null;
}

/** Rebuilds the in-memory index of a segment file by scanning it (stops at the first bad entry). */
export async function rebuildIndexFromSegment(segmentPath: string, baseOffset: number, intervalBytes: number): Promise<RebuildResult> {
  const s = await SegmentScanner.open(segmentPath);
  try {
    const index = new SegmentIndex(s.header?.baseOffset ?? baseOffset, intervalBytes);
    let entries = 0;
    let m: EntryMeta | null;
    while ((m = await s.next())) {
      index.add(m);
      entries++;
    }
    return { index, header: s.header, entries, validEnd: s.validEnd, error: s.error };
  } finally {
    await s.close();
  }
}

export interface DecodedIndexFile {
  header: IndexHeader;
  offsetEntries: OffsetIndexEntry[];
  timeEntries: TimeIndexEntry[];
  /** problems found in the file itself (torn entry, non-monotonic) */
  problems: string[];
}

/** Decodes a whole .idx or .tix file (for `lnc inspect-index`). Throws CORRUPT when the header is unreadable. */
export function decodeIndexFile(file: Buffer, path = '<index>'): DecodedIndexFile {
  const h = decodeIndexHeader(file);
  if (!h.ok) throw new LanceError('CORRUPT', `${path}: ${h.error.reason}`, { path, position: h.error.position });
  const problems: string[] = [];
  const body = file.length - INDEX_HEADER_BYTES;
  if (body % INDEX_ENTRY_BYTES !== 0) problems.push(`torn entry at byte ${INDEX_HEADER_BYTES + body - (body % INDEX_ENTRY_BYTES)}: ${body % INDEX_ENTRY_BYTES} trailing bytes`);
  const n = Math.floor(body / INDEX_ENTRY_BYTES);
  const offsetEntries: OffsetIndexEntry[] = [];
  const timeEntries: TimeIndexEntry[] = [];
  for (let i = 0; i < n; i++) {
    const a = INDEX_HEADER_BYTES + i * INDEX_ENTRY_BYTES;
    if (h.value.kind === 'offset') {
      const e = { offset: h.value.baseOffset + file.readUInt32BE(a), position: file.readUInt32BE(a + 4), index: readI64(file, a + 8) };
      const p = offsetEntries[offsetEntries.length - 1];
      if (p && (e.position <= p.position || e.offset < p.offset || e.index <= p.index)) problems.push(`entry ${i} at byte ${a} does not follow entry ${i - 1}`);
      offsetEntries.push(e);
    } else {
      const e = { timestamp: readI64(file, a), offset: h.value.baseOffset + file.readUInt32BE(a + 8), position: file.readUInt32BE(a + 12) };
      const p = timeEntries[timeEntries.length - 1];
      if (p && (e.timestamp <= p.timestamp || e.position <= p.position)) problems.push(`entry ${i} at byte ${a} does not follow entry ${i - 1}`);
      timeEntries.push(e);
    }
  }
  return { header: h.value, offsetEntries, timeEntries, problems };
}
