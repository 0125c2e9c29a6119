/**
 * Read-only checks of one segment and its indexes, shared by scan, verify-data, inspect-index and repair.
 * The strict scan is the storage engine's own SegmentScanner (same verdict as recovery on open); the index check
 * rebuilds the sparse index in memory with the storage engine's SegmentIndex and compares it with the files.
 */
import { promises as fsp } from 'node:fs';
import { ioError } from '../../common/errors.ts';
import { decodeIndexHeader, SegmentIndex, type IndexKind } from '../../storage/index-file.ts';
import { SegmentScanner, type EntryMeta, type ScanError } from '../../storage/segment-format.ts';
import type { EntryType } from '../../storage/types.ts';
import type { Progress } from '../progress.ts';
import { baseOffsetOf, indexPathsFor } from './layout.ts';
import { walkSegment, type LostRange } from './walk.ts';

/** The storage engine's default sparse-index interval (LogOptions.indexIntervalBytes), used when no index file
 *  exists to read the interval from. */
export const DEFAULT_INDEX_INTERVAL_BYTES = 4096;

export interface EntryRow {
  position: number;
  size: number;
  type: EntryType;
  term: number;
  index: number;
  firstOffset: number;
  offsetCount: number;
  maxTimestamp: number;
}

export interface SegmentCheck {
  file: string;
  sizeBytes: number;
  baseOffset: number | null;
  baseIndex: number | null;
  /** good entries before the first problem */
  entries: number;
  /** Kafka records in those entries (sum of offset counts) */
  records: number;
  firstOffset: number;
  lastOffset: number;
  nextOffset: number;
  firstIndex: number;
  lastIndex: number;
  lastTerm: number;
  maxTimestamp: number;
  /** byte position just after the last good entry */
  validEnd: number;
  /** the first problem (null = the whole file is good) */
  error: ScanError | null;
  /** beyond the first problem: how many entries still verify, and the damaged ranges (only when probed) */
  afterDamage: { validEntries: number; lost: LostRange[] } | null;
  /** every good entry (only with verbose) */
  rows: EntryRow[] | null;
  /** the index rebuilt from the good entries (for index checks and rebuild-index) */
  index: SegmentIndex;
}

export async function fileSize(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch (e) {
    throw ioError('stat', file, e);
  }
}

async function readOptional(file: string): Promise<Buffer | null> {
  try {
    return await fsp.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('read', file, e);
  }
}

/** The interval the existing index files were built with (so a rebuild matches what the broker expects). */
export async function indexIntervalFor(segmentFile: string): Promise<number> {
  const { idx, tix } = indexPathsFor(segmentFile);
  for (const f of [idx, tix]) {
    const b = await readOptional(f);
    if (!b) continue;
    const h = decodeIndexHeader(b);
    if (h.ok && h.value.intervalBytes > 0) return h.value.intervalBytes;
  }
  return DEFAULT_INDEX_INTERVAL_BYTES;
}

export async function checkSegment(
  file: string,
  opts: { verbose?: boolean; probeDamage?: boolean; progress?: Progress; intervalBytes?: number } = {},
): Promise<SegmentCheck> {
  const sizeBytes = await fileSize(file);
  const interval = opts.intervalBytes ?? (await indexIntervalFor(file));
  const s = await SegmentScanner.open(file);
  const rows: EntryRow[] | null = opts.verbose ? [] : null;
  const base = s.header?.baseOffset ?? baseOffsetOf(file) ?? 0;
  const index = new SegmentIndex(base, interval);
  const c: SegmentCheck = {
    file,
    sizeBytes,
    baseOffset: s.header?.baseOffset ?? null,
    baseIndex: s.header?.baseIndex ?? null,
    entries: 0,
    records: 0,
    firstOffset: -1,
    lastOffset: base - 1,
    nextOffset: base,
    firstIndex: 0,
    lastIndex: 0,
    lastTerm: s.header?.prevTerm ?? 0,
    maxTimestamp: -1,
    validEnd: 0,
    error: null,
    afterDamage: null,
    rows,
    index,
  };
  try {
    let m: EntryMeta | null;
    let last = 0;
    while ((m = await s.next())) {
      index.add(m);
      if (c.entries === 0) c.firstIndex = m.index;
      c.entries++;
      c.records += m.offsetCount;
      if (m.offsetCount > 0) {
        if (c.firstOffset === -1) c.firstOffset = m.firstOffset;
        c.lastOffset = m.firstOffset + m.offsetCount - 1;
      }
      c.nextOffset = m.firstOffset + m.offsetCount;
      c.lastIndex = m.index;
      c.lastTerm = m.term;
      if (m.maxTimestamp > c.maxTimestamp) c.maxTimestamp = m.maxTimestamp;
      rows?.push({ position: m.position, size: m.size, type: m.type, term: m.term, index: m.index, firstOffset: m.firstOffset, offsetCount: m.offsetCount, maxTimestamp: m.maxTimestamp });
      opts.progress?.advance(s.validEnd - last);
      last = s.validEnd;
    }
    c.validEnd = s.validEnd;
    c.error = s.error;
  } finally {
    await s.close();
  }
  if (c.error && opts.probeDamage) {
    const w = await walkSegment(file, { from: c.validEnd, expectIndex: c.entries > 0 ? c.lastIndex + 1 : c.baseIndex ?? -1, expectOffset: c.nextOffset });
    c.afterDamage = { validEntries: w.entries, lost: w.lost };
  }
  opts.progress?.advance(sizeBytes - c.validEnd);
  return c;
}

export type IndexStatus = 'ok' | 'missing' | 'stale' | 'mismatch' | 'unreadable';

export interface IndexCheck {
  file: string;
  kind: IndexKind;
  status: IndexStatus;
  /** samples in the file / samples the segment's good entries give */
  entriesOnDisk: number;
  entriesExpected: number;
  detail: string | null;
}

/**
 * Compares a segment's .idx and .tix with the index rebuilt from its good entries.
 * 'stale' = the file is a correct prefix that lacks the newest samples (normal for an active segment after a crash;
 * the broker completes it on open); 'mismatch' = a sample differs or points past the good data.
 */
export async function checkIndexes(segmentFile: string, seg: SegmentCheck): Promise<IndexCheck[]> {
  const { idx, tix } = indexPathsFor(segmentFile);
  const out: IndexCheck[] = [];
  for (const [file, kind, expected, count] of [
    [idx, 'offset', seg.index.idxFile(), seg.index.offsetEntryCount],
    [tix, 'time', seg.index.tixFile(), seg.index.timeEntryCount],
  ] as const) {
    out.push(compareIndexFile(file, kind, await readOptional(file), expected, count, seg.error ? seg.validEnd : null));
  }
  return out;
}

const HEADER = 24;
const ENTRY = 16;

/**
 * @param damagedFrom when the segment is damaged from this byte on, samples pointing there are not compared (the
 *   segment's damage is the problem to report, and repair rebuilds the index anyway)
 */
export function compareIndexFile(file: string, kind: IndexKind, disk: Buffer | null, expected: Buffer, expectedCount: number, damagedFrom: number | null = null): IndexCheck {
  const r = (status: IndexStatus, entriesOnDisk: number, detail: string | null): IndexCheck => ({ file, kind, status, entriesOnDisk, entriesExpected: expectedCount, detail });
  if (!disk) return r('missing', 0, 'file does not exist (lnc rebuild-index recreates it)');
  const h = decodeIndexHeader(disk);
  if (!h.ok) return r('unreadable', 0, h.error.reason);
  if (h.value.kind !== kind) return r('mismatch', 0, `file holds a ${h.value.kind} index, expected a ${kind} index`);
  const onDisk = Math.floor((disk.length - HEADER) / ENTRY);
  if ((disk.length - HEADER) % ENTRY !== 0) return r('mismatch', onDisk, `torn entry: ${(disk.length - HEADER) % ENTRY} trailing bytes at byte ${HEADER + onDisk * ENTRY}`);
  if (!disk.subarray(0, HEADER).equals(expected.subarray(0, HEADER))) return r('mismatch', onDisk, 'header differs from the segment (base offset or interval)');
  for (let i = 0; i < onDisk; i++) {
    const a = HEADER + i * ENTRY;
    const position = disk.readUInt32BE(a + (kind === 'offset' ? 4 : 12));
    if (damagedFrom !== null && position >= damagedFrom) return r('ok', onDisk, `samples from entry ${i} on point into the damaged part of the segment`);
    if (a + ENTRY > expected.length) return r('mismatch', onDisk, `entry ${i} at byte ${a} points past the segment's last good entry`);
    if (!disk.subarray(a, a + ENTRY).equals(expected.subarray(a, a + ENTRY))) return r('mismatch', onDisk, `entry ${i} at byte ${a} differs from the segment`);
  }
  if (onDisk < expectedCount) return r('stale', onDisk, `${expectedCount - onDisk} newest sample(s) missing`);
  return r('ok', onDisk, null);
}
