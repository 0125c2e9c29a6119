/**
 * Offline checks and repairs over segment files and partition directories, for `lnc` (scan, verify-data,
 * repair, rebuild-index, inspect-index) and tests. They never need a running broker; they must not be run on a
 * partition a broker has open (repair/rebuild write files).
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LanceError, ioError } from '../common/errors.ts';
import { atomicWriteFile } from '../common/fsutil.ts';
import { decodeIndexFile, decodeIndexHeader, rebuildIndexFromSegment } from './index-file.ts';
import { SEGMENT_HEADER_BYTES, SegmentScanner, type EntryMeta, type ScanError, type SegmentHeader } from './segment-format.ts';
import { EntryType } from './types.ts';

const SEGMENT_FILE_RE = /^(\d{20})\.lnc$/;

export interface SegmentScanSummary {
  path: string;
  sizeBytes: number;
  header: SegmentHeader | null;
  /** good entries before the first problem */
  entries: number;
  /** entries by type name (DATA, NOOP, CONFIG, CONTROL) */
  byType: Record<string, number>;
  /** Kafka records (sum of offsetCount) */
  records: number;
  firstIndex: number | null;
  lastIndex: number | null;
  firstOffset: number | null;
  /** last offset held (firstOffset - 1 when only zero-count entries) */
  lastOffset: number | null;
  /** offset after the last good entry (the header's base offset when empty) */
  nextOffset: number | null;
  firstTerm: number | null;
  lastTerm: number | null;
  minTimestamp: number | null;
  maxTimestamp: number | null;
  payloadBytes: number;
  /** first bad byte and why; null when the whole file is good */
  firstBad: ScanError | null;
  /** bytes from the start of the file that are good (header + good entries) */
  validBytes: number;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EntryType).map(([k, v]) => [v, k]));

export function entryTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `UNKNOWN(${t})`;
}

/**
 * Scans a whole segment file: header, framing, CRC and contiguity of every entry, stopping at the first problem.
 * `onEntry` sees every good entry's metadata (for `lnc scan --verbose`). Throws NOT_FOUND / IO on file errors.
 */
export async function scanSegmentFile(file: string, onEntry?: (m: EntryMeta) => void): Promise<SegmentScanSummary> {
  const s = await SegmentScanner.open(file);
  try {
    const sum: SegmentScanSummary = {
      path: file,
      sizeBytes: (await fsp.stat(file)).size,
      header: s.header,
      entries: 0,
      byType: {},
      records: 0,
      firstIndex: null,
      lastIndex: null,
      firstOffset: null,
      lastOffset: null,
      nextOffset: s.header ? s.header.baseOffset : null,
      firstTerm: null,
      lastTerm: null,
      minTimestamp: null,
      maxTimestamp: null,
      payloadBytes: 0,
      firstBad: null,
      validBytes: 0,
    };
    let m: EntryMeta | null;
    while ((m = await s.next())) {
      onEntry?.(m);
      sum.entries++;
      const tn = entryTypeName(m.type);
      sum.byType[tn] = (sum.byType[tn] ?? 0) + 1;
      sum.records += m.offsetCount;
      sum.firstIndex ??= m.index;
      sum.lastIndex = m.index;
      sum.firstOffset ??= m.firstOffset;
      sum.lastOffset = m.firstOffset + m.offsetCount - 1;
      sum.nextOffset = m.firstOffset + m.offsetCount;
      sum.firstTerm ??= m.term;
      sum.lastTerm = m.term;
      if (m.maxTimestamp >= 0) {
        sum.minTimestamp = sum.minTimestamp === null ? m.maxTimestamp : Math.min(sum.minTimestamp, m.maxTimestamp);
        sum.maxTimestamp = sum.maxTimestamp === null ? m.maxTimestamp : Math.max(sum.maxTimestamp, m.maxTimestamp);
      }
      sum.payloadBytes += m.size - 48;
    }
    sum.firstBad = s.error;
    sum.validBytes = s.validEnd;
    return sum;
  } finally {
    await s.close();
  }
}

export interface IndexCheck {
  path: string;
  /** 'ok' | 'missing' | 'stale' (differs from a rebuild) | 'unreadable' */
  status: 'ok' | 'missing' | 'stale' | 'unreadable';
  detail: string | null;
}

export interface SegmentVerification {
  segment: SegmentScanSummary;
  idx: IndexCheck;
  tix: IndexCheck;
}

export interface PartitionVerification {
  dir: string;
  segments: SegmentVerification[];
  /** one line per problem, each naming the file and byte where known */
  problems: string[];
  ok: boolean;
}

/** Index files of a segment path (`…/00000000000000000000.lnc` → `.idx`, `.tix`). */
export function indexPathsOf(segmentPath: string): { idx: string; tix: string } {
  const stem = segmentPath.replace(/\.lnc$/, '');
  return { idx: stem + '.idx', tix: stem + '.tix' };
}

/** Segment files of a partition directory, oldest first. */
export async function listSegmentFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    throw ioError('list partition dir', dir, e);
  }
  return names.filter((n) => SEGMENT_FILE_RE.test(n)).sort().map((n) => path.join(dir, n));
}

/** The interval an existing .idx was built with (its header), else the default 4096. */
async function intervalOf(idxPath: string): Promise<number> {
  const b = await readOrNull(idxPath);
  const h = b ? decodeIndexHeader(b) : null;
  return h && h.ok && h.value.intervalBytes > 0 ? h.value.intervalBytes : 4096;
}

async function readOrNull(p: string): Promise<Buffer | null> {
  try {
    return await fsp.readFile(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('read', p, e);
  }
}

function compareIndex(p: string, have: Buffer | null, want: Buffer): IndexCheck {
  if (!have) return { path: p, status: 'missing', detail: 'file does not exist' };
  if (have.equals(want)) return { path: p, status: 'ok', detail: null };
  try {
    decodeIndexFile(have, p);
  } catch (e) {
    return { path: p, status: 'unreadable', detail: (e as Error).message };
  }
  let i = 0;
  while (i < have.length && i < want.length && have[i] === want[i]) i++;
  return { path: p, status: 'stale', detail: `differs from a rebuild at byte ${i} (file ${have.length} bytes, rebuild ${want.length} bytes)` };
}

/**
 * Verifies every segment of a partition directory fully (framing, CRC, contiguity within and across segments)
 * and that each .idx/.tix equals a rebuild byte for byte. `failFast` stops at the first problem.
 */
export async function verifyPartitionDir(dir: string, opts: { indexIntervalBytes?: number; failFast?: boolean; onSegment?: (file: string, i: number, n: number) => void } = {}): Promise<PartitionVerification> {
  const files = await listSegmentFiles(dir);
  const out: PartitionVerification = { dir, segments: [], problems: [], ok: true };
  let prev: SegmentScanSummary | null = null;
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    opts.onSegment?.(file, i, files.length);
    const seg = await scanSegmentFile(file);
    const base = Number(SEGMENT_FILE_RE.exec(path.basename(file))![1]);
    if (seg.firstBad) out.problems.push(`${file}: ${seg.firstBad.reason} (${seg.sizeBytes - seg.validBytes} bytes from byte ${seg.validBytes} unreadable)`);
    if (seg.header && seg.header.baseOffset !== base) out.problems.push(`${file}: header base offset ${seg.header.baseOffset} does not match the file name`);
    if (prev && prev.header && seg.header) {
      const prevLastIndex = prev.lastIndex ?? prev.header.baseIndex - 1;
      if (seg.header.baseIndex !== prevLastIndex + 1 || seg.header.baseOffset !== prev.nextOffset) {
        out.problems.push(`${file}: does not continue ${path.basename(prev.path)} (expected base index ${prevLastIndex + 1} and offset ${prev.nextOffset}, header has ${seg.header.baseIndex} and ${seg.header.baseOffset})`);
      }
    }
    const { idx, tix } = indexPathsOf(file);
    let idxCheck: IndexCheck;
    let tixCheck: IndexCheck;
    const haveIdx = await readOrNull(idx);
    const rebuilt = await rebuildIndexFromSegment(file, base, opts.indexIntervalBytes ?? (await intervalOf(idx)));
    idxCheck = compareIndex(idx, haveIdx, rebuilt.index.idxFile());
    tixCheck = compareIndex(tix, await readOrNull(tix), rebuilt.index.tixFile());
    for (const c of [idxCheck, tixCheck]) if (c.status !== 'ok') out.problems.push(`${c.path}: ${c.status}${c.detail ? ': ' + c.detail : ''}`);
    out.segments.push({ segment: seg, idx: idxCheck, tix: tixCheck });
    prev = seg;
    if (opts.failFast && out.problems.length) break;
  }
  out.ok = out.problems.length === 0;
  return out;
}

/**
 * Rewrites the .idx/.tix of every segment in a partition directory from the segment data (atomically), with
 * `indexIntervalBytes` or else the interval in the existing .idx header (else 4096). Returns the files written. A segment with a bad entry gets an index of its good prefix (repair it first).
 */
export async function rebuildPartitionIndexes(dir: string, indexIntervalBytes?: number): Promise<{ written: string[]; problems: string[] }> {
  const written: string[] = [];
  const problems: string[] = [];
  for (const file of await listSegmentFiles(dir)) {
    const base = Number(SEGMENT_FILE_RE.exec(path.basename(file))![1]);
    const r = await rebuildIndexFromSegment(file, base, indexIntervalBytes ?? (await intervalOf(indexPathsOf(file).idx)));
    if (r.error) problems.push(`${file}: ${r.error.reason} (index covers the ${r.entries} entries before it)`);
    const { idx, tix } = indexPathsOf(file);
    await atomicWriteFile(idx, r.index.idxFile());
    await atomicWriteFile(tix, r.index.tixFile());
    written.push(idx, tix);
  }
  return { written, problems };
}

export interface RepairResult {
  path: string;
  /** bytes kept (header + good entries) */
  keptBytes: number;
  cutBytes: number;
  reason: string | null;
  /** where the cut bytes were copied (`<segment>.corrupt` or `.corrupt-<n>` if that exists); null if nothing cut */
  corruptCopy: string | null;
  entriesKept: number;
  lastOffset: number | null;
}

/**
 * `lnc repair --path <segment>.lnc`: truncates the segment after its last valid entry. The cut bytes are first
 * copied (fsynced) to `<segment>.lnc.corrupt`; the index files are then rebuilt. Nothing to cut → no change.
 */
export async function repairSegmentFile(file: string, indexIntervalBytes = 4096): Promise<RepairResult> {
  const sum = await scanSegmentFile(file);
  if (!sum.header) throw new LanceError('CORRUPT', `${file}: ${sum.firstBad?.reason ?? 'no valid header'}: not repairable by truncation`, { path: file, position: 0 });
  const res: RepairResult = { path: file, keptBytes: sum.validBytes, cutBytes: sum.sizeBytes - sum.validBytes, reason: sum.firstBad?.reason ?? null, corruptCopy: null, entriesKept: sum.entries, lastOffset: sum.lastOffset };
  if (res.cutBytes === 0) return res;
  let copy = `${file}.corrupt`;
  for (let n = 1; fs.existsSync(copy); n++) copy = `${file}.corrupt-${n}`;
  const fh = await fsp.open(file, 'r+');
  try {
    const buf = Buffer.alloc(res.cutBytes);
    await fh.read(buf, 0, buf.length, sum.validBytes);
    await atomicWriteFile(copy, buf);
    await fh.truncate(sum.validBytes);
    await fh.datasync();
  } catch (e) {
    throw e instanceof LanceError ? e : ioError('repair', file, e);
  } finally {
    await fh.close();
  }
  res.corruptCopy = copy;
  const base = sum.header.baseOffset;
  const r = await rebuildIndexFromSegment(file, base, indexIntervalBytes);
  const { idx, tix } = indexPathsOf(file);
  await atomicWriteFile(idx, r.index.idxFile());
  await atomicWriteFile(tix, r.index.tixFile());
  return res;
}

export { SEGMENT_HEADER_BYTES };
