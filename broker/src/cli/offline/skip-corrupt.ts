/**
 * `lnc repair --path <log dir> --skip-corrupt`: keeps every entry that still verifies after damaged bytes.
 *
 * The storage engine (rightly) refuses a log whose Raft indexes or offsets are not contiguous, so a plain "skip"
 * would leave a log the broker cuts or refuses on open. The hole is therefore filled with placeholders:
 *   - lost Raft indexes → NOOP entries (offset count 0), in the term of the last entry kept before the hole;
 *   - lost offsets      → the first placeholder is a DATA entry holding an EMPTY Kafka RecordBatch (recordCount 0,
 *                         lastOffsetDelta = lost offsets − 1), the same shape Kafka's compaction leaves, so
 *                         consumers step over the range.
 * A follower repaired this way is corrected by its leader (the placeholder terms will not match, Raft truncates
 * and re-replicates); on a leader or a single node the records in the hole are gone, and the report says which.
 *
 * Every rewritten segment: original copied to `<segment>.lnc.corrupt-<ms>` (fsynced) first, new content written
 * to a temp file, fsynced, renamed over the segment, dir fsynced, indexes rebuilt.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ioError, LanceError } from '../../common/errors.ts';
import { fsyncDir } from '../../common/fsutil.ts';
import { SegmentIndex } from '../../storage/index-file.ts';
import { encodeEntry, encodeSegmentHeader, SEGMENT_HEADER_BYTES, type EntryMeta } from '../../storage/segment-format.ts';
import { crc32c } from '../../storage/crc.ts';
import { EntryType, type StoredEntry } from '../../storage/types.ts';
import type { Progress } from '../progress.ts';
import { baseOffsetOf, indexPathsFor, listSegments, segmentFileName } from './layout.ts';
import { copyAside, writeIndexFiles } from './repair-ops.ts';
import { checkIndexes, checkSegment, indexIntervalFor, type SegmentCheck } from './segment-check.ts';
import { walkSegment, type LostRange } from './walk.ts';

const RB_HEADER = 61;

/** Pure: a Kafka RecordBatch v2 with no records that spans `count` offsets from `baseOffset`. */
export function emptyRecordBatch(baseOffset: number, count: number): Buffer {
  const b = Buffer.alloc(RB_HEADER);
  b.writeBigInt64BE(BigInt(baseOffset), 0);
  b.writeInt32BE(RB_HEADER - 12, 8); // batchLength: bytes after this field
  b.writeInt32BE(-1, 12); // partitionLeaderEpoch
  b.writeInt8(2, 16); // magic
  b.writeInt16BE(0, 21); // attributes
  b.writeInt32BE(count - 1, 23); // lastOffsetDelta
  b.writeBigInt64BE(-1n, 27); // baseTimestamp
  b.writeBigInt64BE(-1n, 35); // maxTimestamp
  b.writeBigInt64BE(-1n, 43); // producerId
  b.writeInt16BE(-1, 51); // producerEpoch
  b.writeInt32BE(-1, 53); // baseSequence
  b.writeInt32BE(0, 57); // recordCount
  b.writeUInt32BE(crc32c(b.subarray(21)), 17);
  return b;
}

/**
 * Pure: placeholder entries for Raft indexes [fromIndex, toIndex) and offsets [fromOffset, toOffset).
 * Throws CORRUPT when offsets are missing but no index is (nothing could have held them).
 */
export function placeholderEntries(fromIndex: number, toIndex: number, fromOffset: number, toOffset: number, term: number): StoredEntry[] {
  const nIdx = toIndex - fromIndex;
  const nOff = toOffset - fromOffset;
  if (nIdx < 0 || nOff < 0) throw new LanceError('INTERNAL', `placeholders: negative range (indexes ${fromIndex}..${toIndex}, offsets ${fromOffset}..${toOffset})`);
  if (nIdx === 0 && nOff > 0) {
    throw new LanceError('CORRUPT', `offsets ${fromOffset} .. ${toOffset - 1} are missing but Raft index ${fromIndex} is not: the entries disagree with each other`, { offset: fromOffset });
  }
  const out: StoredEntry[] = [];
  for (let k = 0; k < nIdx; k++) {
    const data = k === 0 && nOff > 0;
    out.push({
      type: data ? EntryType.DATA : EntryType.NOOP,
      term,
      index: fromIndex + k,
      firstOffset: fromOffset + (data ? 0 : nOff),
      offsetCount: data ? nOff : 0,
      maxTimestamp: -1,
      payload: data ? emptyRecordBatch(fromOffset, nOff) : Buffer.alloc(0),
    });
  }
  return out;
}

export interface SkipLost extends LostRange {
  file: string;
}

export interface SkipReport {
  path: string;
  segments: number;
  rewritten: string[];
  originals: string[];
  keptEntries: number;
  lost: SkipLost[];
  placeholders: { entries: number; offsets: number };
}

/** Buffered bytes before the rewriter writes them to its temp file (it never holds a whole segment). */
const REWRITE_BUFFER_BYTES = 4 << 20;

/**
 * Writes one new segment, streaming: header, kept entries verbatim, placeholders, into a temp file beside the
 * segment; tracks the sparse index. Nothing replaces the segment before commit().
 */
class SegmentRewriter {
  private parts: Buffer[] = [];
  private buffered = 0;
  private size = SEGMENT_HEADER_BYTES;
  private fh: fsp.FileHandle | null = null;
  private readonly tmp: string;
  nextIndex: number;
  nextOffset: number;
  lastTerm: number;
  readonly index: SegmentIndex;
  placeholders = { entries: 0, offsets: 0 };

  /** the segment's file name follows its base offset: it changes when a hole before the segment is filled */
  readonly target: string;

  constructor(
    readonly file: string,
    header: { baseOffset: number; baseIndex: number; prevTerm: number },
    intervalBytes: number,
  ) {
    this.target = path.join(path.dirname(file), segmentFileName(header.baseOffset));
    this.tmp = path.join(path.dirname(file), `.${path.basename(this.target)}.skip-${process.pid}`);
    const h = encodeSegmentHeader(header);
    this.parts.push(h);
    this.buffered = h.length;
    this.nextIndex = header.baseIndex;
    this.nextOffset = header.baseOffset;
    this.lastTerm = header.prevTerm;
    this.index = new SegmentIndex(header.baseOffset, intervalBytes);
  }

  private add(m: Pick<EntryMeta, 'index' | 'firstOffset' | 'offsetCount' | 'maxTimestamp' | 'term'>, bytes: Buffer): void {
    this.index.add({ position: this.size, index: m.index, firstOffset: m.firstOffset, maxTimestamp: m.maxTimestamp });
    this.parts.push(Buffer.from(bytes));
    this.buffered += bytes.length;
    this.size += bytes.length;
    this.nextIndex = m.index + 1;
    this.nextOffset = m.firstOffset + m.offsetCount;
    this.lastTerm = m.term;
  }

  private async drain(): Promise<void> {
    try {
      this.fh ??= await fsp.open(this.tmp, 'w', 0o644);
      for (const p of this.parts) await this.fh.write(p);
    } catch (e) {
      throw ioError('write', this.tmp, e);
    }
    this.parts = [];
    this.buffered = 0;
  }

  fillTo(index: number, offset: number): void {
    for (const p of placeholderEntries(this.nextIndex, index, this.nextOffset, offset, this.lastTerm)) {
      this.placeholders.entries++;
      this.placeholders.offsets += p.offsetCount;
      this.add(p, encodeEntry(p));
    }
  }

  async keep(m: EntryMeta, bytes: Buffer): Promise<void> {
    if (m.index > this.nextIndex) this.fillTo(m.index, m.firstOffset);
    this.add(m, bytes);
    if (this.buffered >= REWRITE_BUFFER_BYTES) await this.drain();
  }

  /** Original → .corrupt-<ms> copy (durable), then temp → fsync → rename over the segment → fsync(dir). */
  async commit(): Promise<string> {
    await this.drain();
    const original = await copyAside(this.file, 0, (await fsp.stat(this.file)).size);
    try {
      await this.fh!.sync();
      await this.fh!.close();
      this.fh = null;
      await fsp.rename(this.tmp, this.target);
      if (this.target !== this.file) {
        // renamed to its new base offset: the old name and its indexes go (the original is in the .corrupt copy)
        const old = indexPathsFor(this.file);
        for (const f of [this.file, old.idx, old.tix]) await fsp.rm(f, { force: true });
      }
    } catch (e) {
      await this.abort();
      throw ioError('rewrite segment', this.file, e);
    }
    await fsyncDir(path.dirname(this.file));
    await writeIndexFiles(this.target, this.index);
    return original;
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
    await fsp.rm(this.tmp, { force: true });
  }
}

export async function skipCorruptLog(dir: string, progress?: (label: string, total: number) => Progress): Promise<SkipReport> {
  const segs = await listSegments(dir);
  const report: SkipReport = { path: dir, segments: segs.length, rewritten: [], originals: [], keptEntries: 0, lost: [], placeholders: { entries: 0, offsets: 0 } };
  let carried: { index: number; offset: number; term: number } | null = null;
  /** a rewritten segment whose damaged tail can only be filled once the next segment's start is known */
  let pending: SegmentRewriter | null = null;
  let pendingLost: SkipLost | null = null;
  const finish = async (rw: SegmentRewriter): Promise<void> => {
    report.originals.push(await rw.commit());
    report.rewritten.push(rw.target);
    report.placeholders.entries += rw.placeholders.entries;
    report.placeholders.offsets += rw.placeholders.offsets;
  };
  let total = 0;
  for (const f of segs) total += (await fsp.stat(f)).size;
  const bar = progress?.('repair', total);
  for (const f of segs) {
    const strict: SegmentCheck = await checkSegment(f, { progress: bar });
    let startIndex = strict.baseIndex ?? carried?.index ?? null;
    let startOffset = strict.baseOffset ?? carried?.offset ?? baseOffsetOf(f) ?? 0;
    if (startIndex === null) {
      // first segment with a damaged header: its first entry that verifies says where the log starts
      const w = await walkSegment(f);
      startIndex = w.entries > 0 ? w.firstIndex : 1;
      if (w.entries > 0) startOffset = w.firstOffset;
    }
    if (pending) {
      try {
        pending.fillTo(startIndex, startOffset);
      } catch (e) {
        await pending.abort();
        throw e;
      }
      if (pendingLost?.lostIndexes) pendingLost.lostIndexes.to = startIndex - 1;
      if (pendingLost?.lostOffsets) pendingLost.lostOffsets.to = startOffset - 1;
      await finish(pending);
      carried = { index: pending.nextIndex, offset: pending.nextOffset, term: pending.lastTerm };
      pending = null;
    }
    const continues = carried === null || (startIndex === carried.index && startOffset === carried.offset);
    if (!strict.error && strict.baseIndex !== null && continues) {
      report.keptEntries += strict.entries;
      carried = { index: strict.lastIndex > 0 ? strict.lastIndex + 1 : strict.baseIndex, offset: strict.nextOffset, term: strict.lastTerm };
      const ix = await checkIndexes(f, strict);
      if (ix.some((x) => x.status === 'missing' || x.status === 'mismatch' || x.status === 'unreadable')) await writeIndexFiles(f, strict.index);
      continue;
    }
    // When a range between two segments is missing (a segment cut or deleted before this one), this segment is
    // rewritten to start where the log ends: the walk sees its first entry jump ahead, and keep() fills the hole.
    const head: { index: number; offset: number; term: number } = carried ?? { index: startIndex, offset: startOffset, term: 0 };
    if (head.offset > startOffset || head.index > startIndex) {
      throw new LanceError('CORRUPT', `${f}: starts at index ${startIndex}, offset ${startOffset}, inside what the log before it already holds (up to index ${head.index - 1}, offset ${head.offset - 1}); move it aside by hand (runbook 4.2)`, { path: f });
    }
    const rw: SegmentRewriter = new SegmentRewriter(f, { baseOffset: head.offset, baseIndex: head.index, prevTerm: head.term }, await indexIntervalFor(f));
    let w: Awaited<ReturnType<typeof walkSegment>>;
    try {
      w = await walkSegment(f, { expectIndex: head.index, expectOffset: head.offset, onEntry: (m, bytes) => rw.keep(m, bytes) });
    } catch (e) {
      await rw.abort(); // (no other rewriter is pending here: it was committed above)
      throw e;
    }
    if (w.headerError) report.lost.push({ file: f, start: 0, end: SEGMENT_HEADER_BYTES, bytes: SEGMENT_HEADER_BYTES, reason: `segment header: ${w.headerError.reason} (rewritten)`, lostIndexes: null, lostOffsets: null });
    for (const l of w.lost) report.lost.push({ ...l, file: f });
    report.keptEntries += w.entries;
    const tailLost = w.lost.length > 0 && w.lost[w.lost.length - 1]!.end === w.size && w.lost[w.lost.length - 1]!.bytes > 0;
    if (tailLost) {
      pending = rw;
      pendingLost = report.lost[report.lost.length - 1]!;
    }
    else {
      await finish(rw);
      carried = { index: rw.nextIndex, offset: rw.nextOffset, term: rw.lastTerm };
    }
  }
  if (pending) await finish(pending); // the log's own tail: nothing after it to fill towards
  bar?.done();
  return report;
}
