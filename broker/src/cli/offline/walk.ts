/**
 * A forgiving walk over a segment file: unlike the storage engine's SegmentScanner (which stops at the first bad
 * byte, as recovery must), this one resynchronises after damage by searching forward, byte by byte, for the next
 * position where a whole entry frame verifies (plausible length, version, type, flags, and then its CRC32C).
 * Used by `scan` to say what lies beyond the damage and by `repair --skip-corrupt` to keep the later valid entries.
 *
 * A false resync needs a 32-bit CRC to match on random bytes after the cheap checks pass: ~2^-32 per candidate.
 */
import { promises as fsp } from 'node:fs';
import { ioError } from '../../common/errors.ts';
import {
  checkEntry,
  decodeSegmentHeader,
  ENTRY_LENGTH_OVERHEAD,
  ENTRY_VERSION,
  isScanError,
  MAX_ENTRY_PAYLOAD_BYTES,
  SEGMENT_HEADER_BYTES,
  type EntryMeta,
  type ScanError,
  type SegmentHeader,
} from '../../storage/segment-format.ts';
import { EntryType } from '../../storage/types.ts';

const VALID_TYPES: ReadonlySet<number> = new Set(Object.values(EntryType));
const WINDOW_BYTES = 1 << 20;

/** A byte range that was skipped, and what the log lost with it. */
export interface LostRange {
  start: number;
  /** exclusive */
  end: number;
  bytes: number;
  /** why the first byte of the range was rejected */
  reason: string;
  /** Raft indexes and Kafka offsets missing between the entry before and the entry after the range (null = unknown,
   *  e.g. up to the end of the file) */
  lostIndexes: { from: number; to: number | null } | null;
  lostOffsets: { from: number; to: number | null } | null;
}

export interface WalkResult {
  size: number;
  header: SegmentHeader | null;
  headerError: ScanError | null;
  /** entries kept, in file order */
  entries: number;
  firstIndex: number;
  lastIndex: number;
  firstOffset: number;
  /** next offset after the last kept entry */
  nextOffset: number;
  lost: LostRange[];
}

export interface WalkOptions {
  /** start here (default: just after the segment header) */
  from?: number;
  /** what the entry at `from` should carry (defaults from the header) */
  expectIndex?: number;
  expectOffset?: number;
  /** called for every kept entry with its bytes (valid only during the call) */
  onEntry?: (m: EntryMeta, bytes: Buffer) => void | Promise<void>;
  onProgress?: (position: number) => void;
}

export async function walkSegment(file: string, opts: WalkOptions = {}): Promise<WalkResult> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    throw ioError('open segment', file, e);
  }
  try {
    const size = (await fh.stat()).size;
    let win = Buffer.alloc(0);
    let winStart = 0;
    const ensure = async (pos: number, n: number): Promise<void> => {
      const want = Math.min(n, size - pos);
      if (pos >= winStart && pos + want <= winStart + win.length) return;
      const len = Math.min(Math.max(n, WINDOW_BYTES), size - pos);
      const b = Buffer.allocUnsafe(len);
      let done = 0;
      while (done < len) {
        const { bytesRead } = await fh.read(b, done, len - done, pos + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      win = b.subarray(0, done);
      winStart = pos;
    };

    await ensure(0, SEGMENT_HEADER_BYTES);
    const hd = decodeSegmentHeader(win.subarray(0, Math.min(SEGMENT_HEADER_BYTES, win.length)));
    const header = hd.ok ? hd.value : null;
    const headerError = hd.ok ? null : hd.error;

    const res: WalkResult = { size, header, headerError, entries: 0, firstIndex: 0, lastIndex: 0, firstOffset: -1, nextOffset: -1, lost: [] };
    let expectIndex = opts.expectIndex ?? header?.baseIndex ?? -1;
    let expectOffset = opts.expectOffset ?? header?.baseOffset ?? -1;
    let pos = opts.from ?? Math.min(SEGMENT_HEADER_BYTES, size);
    let bad: { start: number; reason: string } | null = null;

    /** an entry that verifies at `p`, or the reason it does not */
    const entryAt = async (p: number): Promise<EntryMeta | ScanError> => {
      for (;;) {
        await ensure(p, 4);
        const at = p - winStart;
        const atEof = winStart + win.length >= size;
        const r = checkEntry(win, at, p, atEof);
        if (r !== 'more') return r;
        const need = win.length - at >= 4 ? 4 + win.readUInt32BE(at) : 4;
        const before = win;
        await ensure(p, need);
        // the window now holds the whole entry or reaches EOF; if it did not move, checkEntry cannot say 'more' again
        if (before === win) return checkEntry(win, p - winStart, p, true) as EntryMeta | ScanError;
      }
    };
    /** cheap checks before computing a CRC at candidate `p`, which must lie in the window with 12 bytes */
    const plausibleInWindow = (p: number): boolean => {
      const at = p - winStart;
      if (win[at + 8] !== ENTRY_VERSION || win[at + 10] !== 0 || win[at + 11] !== 0 || !VALID_TYPES.has(win[at + 9]!)) return false;
      const len = win.readUInt32BE(at);
      return len >= ENTRY_LENGTH_OVERHEAD && len <= ENTRY_LENGTH_OVERHEAD + MAX_ENTRY_PAYLOAD_BYTES && p + 4 + len <= size;
    };
    const closeBad = (end: number, next: EntryMeta | null): void => {
      if (!bad) return;
      const idxFrom = expectIndex >= 0 ? expectIndex : null;
      const offFrom = expectOffset >= 0 ? expectOffset : null;
      res.lost.push({
        start: bad.start,
        end,
        bytes: end - bad.start,
        reason: bad.reason,
        lostIndexes: idxFrom === null ? null : { from: idxFrom, to: next ? next.index - 1 : null },
        lostOffsets: offFrom === null ? null : { from: offFrom, to: next ? next.firstOffset - 1 : null },
      });
      bad = null;
    };

    while (pos < size) {
      const r = await entryAt(pos);
      let problem: string | null = isScanError(r) ? r.reason : null;
      if (!isScanError(r) && res.entries > 0 && r.index <= res.lastIndex) problem = `entry at byte ${pos} repeats Raft index ${r.index} (already at ${res.lastIndex})`;
      else if (!isScanError(r) && expectIndex >= 0 && r.index < expectIndex) problem = `entry at byte ${pos} has Raft index ${r.index}, expected ${expectIndex}`;
      else if (!isScanError(r) && expectOffset >= 0 && r.firstOffset < expectOffset) problem = `entry at byte ${pos} goes back to offset ${r.firstOffset} (expected ${expectOffset})`;
      if (problem === null && !isScanError(r)) {
        if (bad) closeBad(pos, r);
        else if (expectIndex >= 0 && r.index !== expectIndex) {
          // a clean jump (no damaged bytes): still a gap the operator must know about
          res.lost.push({ start: pos, end: pos, bytes: 0, reason: `Raft index jumps from ${expectIndex - 1} to ${r.index} at byte ${pos}`, lostIndexes: { from: expectIndex, to: r.index - 1 }, lostOffsets: { from: expectOffset, to: r.firstOffset - 1 } });
        }
        if (res.entries === 0) {
          res.firstIndex = r.index;
          res.firstOffset = r.firstOffset;
        }
        res.entries++;
        res.lastIndex = r.index;
        res.nextOffset = r.firstOffset + r.offsetCount;
        expectIndex = r.index + 1;
        expectOffset = r.firstOffset + r.offsetCount;
        if (opts.onEntry) {
          await ensure(pos, r.size);
          await opts.onEntry(r, win.subarray(pos - winStart, pos - winStart + r.size));
        }
        pos += r.size;
        opts.onProgress?.(pos);
        continue;
      }
      bad ??= { start: pos, reason: problem ?? 'unknown' };
      // resync: the next position where a whole frame verifies
      let q = pos + 1;
      let found = false;
      while (q + 12 <= size && !found) {
        if (q < winStart || q + 12 > winStart + win.length) await ensure(q, 12);
        // synchronous sweep over the window: this runs once per byte of a damaged range
        const last = Math.min(size, winStart + win.length) - 12;
        while (q <= last && !plausibleInWindow(q)) q++;
        if (q > last) continue;
        const c = await entryAt(q);
        if (!isScanError(c) && (res.entries === 0 ? expectIndex < 0 || c.index >= expectIndex : c.index > res.lastIndex) && (expectOffset < 0 || c.firstOffset >= expectOffset)) {
          found = true;
          break;
        }
        q++;
        opts.onProgress?.(q);
      }
      if (!found) {
        closeBad(size, null);
        pos = size;
        break;
      }
      pos = q;
    }
    closeBad(size, null);
    if (res.nextOffset === -1 && expectOffset >= 0) res.nextOffset = expectOffset;
    return res;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
