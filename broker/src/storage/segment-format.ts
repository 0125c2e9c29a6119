/**
 * Segment file byte format (documented byte by byte in docs/format.md). Pure encode/decode plus a streaming
 * scanner over a segment file. All integers are BIG ENDIAN (like Kafka).
 *
 * File header (40 bytes):
 *   0  magic "LNCSEG" (6 bytes ASCII)
 *   6  format version u8 (= 1)
 *   7  flags u8 (= 0)
 *   8  base offset i64      (first Kafka offset of this segment; also in the file name)
 *   16 base index  u64      (Raft index of the first entry in this segment)
 *   24 prev term   u64      (Raft term of entry base index - 1; 0 if none) so an empty segment still knows lastTerm
 *   32 reserved u32 (= 0)
 *   36 crc32c u32 over bytes 0..35
 *
 * Entry (48-byte header + payload):
 *   0  length u32           bytes after this field (= 44 + payload length)
 *   4  crc32c u32           over bytes 8 .. end of payload
 *   8  version u8 (= 1)
 *   9  type u8              EntryType
 *   10 flags u16 (= 0)
 *   12 term u64
 *   20 index u64            Raft index
 *   28 first offset i64
 *   36 offset count u32
 *   40 max timestamp i64    (-1 = none)
 *   48 payload
 */
import { promises as fsp } from 'node:fs';
import { LanceError, ioError } from '../common/errors.ts';
import { crc32c } from './crc.ts';
import { EntryType, type StoredEntry } from './types.ts';

export const SEGMENT_MAGIC = 'LNCSEG';
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 40;
export const ENTRY_HEADER_BYTES = 48;
export const ENTRY_VERSION = 1;
/** length field counts everything after itself: 44 header bytes + payload */
export const ENTRY_LENGTH_OVERHEAD = ENTRY_HEADER_BYTES - 4;
/** A length above this is treated as corruption, not as a huge entry. */
export const MAX_ENTRY_PAYLOAD_BYTES = 64 * 1024 * 1024;

const TWO32 = 4294967296;
const VALID_TYPES: ReadonlySet<number> = new Set(Object.values(EntryType));

// --- 64-bit integers as two 32-bit halves: no BigInt allocation on the hot path (safe for |x| < 2^53) ---
export function writeI64(buf: Buffer, value: number, pos: number): void {
  const hi = Math.floor(value / TWO32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(value - hi * TWO32, pos + 4);
}
export function readI64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO32 + buf.readUInt32BE(pos + 4);
}

export interface SegmentHeader {
  version: number;
  baseOffset: number;
  baseIndex: number;
  prevTerm: number;
}

export function encodeSegmentHeader(h: { baseOffset: number; baseIndex: number; prevTerm: number }): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  b.write(SEGMENT_MAGIC, 0, 'latin1');
  b[6] = SEGMENT_FORMAT_VERSION;
  b[7] = 0;
  writeI64(b, h.baseOffset, 8);
  writeI64(b, h.baseIndex, 16);
  writeI64(b, h.prevTerm, 24);
  b.writeUInt32BE(0, 32);
  b.writeUInt32BE(crc32c(b.subarray(0, 36)), 36);
  return b;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: ScanError };

export function decodeSegmentHeader(b: Buffer): Decoded<SegmentHeader> {
  if (b.length < SEGMENT_HEADER_BYTES) {
    return { ok: false, error: { position: 0, reason: `torn segment header: ${b.length} of ${SEGMENT_HEADER_BYTES} bytes present` } };
  }
  const magic = b.toString('latin1', 0, 6);
  if (magic !== SEGMENT_MAGIC) {
    return { ok: false, error: { position: 0, reason: `bad segment magic ${JSON.stringify(magic)} at byte 0, expected "${SEGMENT_MAGIC}"` } };
  }
  const stored = b.readUInt32BE(36);
  const computed = crc32c(b.subarray(0, 36));
  if (stored !== computed) {
    return { ok: false, error: { position: 36, reason: `segment header crc mismatch at byte 36: stored ${hex(stored)}, computed ${hex(computed)}` } };
  }
  if (b[6] !== SEGMENT_FORMAT_VERSION) {
    return { ok: false, error: { position: 6, reason: `unsupported segment format version ${b[6]} at byte 6` } };
  }
  return { ok: true, value: { version: b[6]!, baseOffset: readI64(b, 8), baseIndex: readI64(b, 16), prevTerm: readI64(b, 24) } };
}

/** Metadata of one entry, as found in a segment (no payload). */
export interface EntryMeta {
  /** byte position of the entry's length field in the segment file */
  position: number;
  /** total bytes on disk (header + payload) */
  size: number;
  type: EntryType;
  term: number;
  index: number;
  firstOffset: number;
  offsetCount: number;
  maxTimestamp: number;
}

/** A precise description of the first bad byte range. */
export interface ScanError {
  position: number;
  reason: string;
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

export function entrySize(payloadLength: number): number {
  return ENTRY_HEADER_BYTES + payloadLength;
}

/**
 * Encodes one entry into `target` at `pos` (target must have entrySize(payload.length) bytes free).
 * Copies the payload (with patchBaseOffset, a DATA payload's RecordBatch baseOffset is set to firstOffset in the
 * copy); computes the CRC over the bytes as written. Returns the position after the entry.
 */
export function encodeEntryInto(target: Buffer, pos: number, e: StoredEntry, patchBaseOffset = false): number {
  return encodeEntryFields(target, pos, e.type, e.term, e.index, e.firstOffset, e.offsetCount, e.maxTimestamp, e.payload, patchBaseOffset);
}

/** encodeEntryInto with the fields as arguments (the append hot path: no object per entry). */
export function encodeEntryFields(
  target: Buffer,
  pos: number,
  type: EntryType,
  term: number,
  index: number,
  firstOffset: number,
  offsetCount: number,
  maxTimestamp: number,
  payload: Buffer,
  patchBaseOffset: boolean,
): number {
  const plen = payload.length;
  target.writeUInt32BE(ENTRY_LENGTH_OVERHEAD + plen, pos);
  target[pos + 8] = ENTRY_VERSION;
  target[pos + 9] = type;
  target.writeUInt16BE(0, pos + 10);
  writeI64(target, term, pos + 12);
  writeI64(target, index, pos + 20);
  writeI64(target, firstOffset, pos + 28);
  target.writeUInt32BE(offsetCount, pos + 36);
  writeI64(target, maxTimestamp, pos + 40);
  payload.copy(target, pos + ENTRY_HEADER_BYTES);
  // DATA payloads are RecordBatches whose baseOffset (bytes 0..7, outside the batch CRC) is the first offset.
  if (patchBaseOffset && type === EntryType.DATA) writeI64(target, firstOffset, pos + ENTRY_HEADER_BYTES);
  const end = pos + ENTRY_HEADER_BYTES + plen;
  target.writeUInt32BE(crc32c(target.subarray(pos + 8, end)), pos + 4);
  return end;
}

export function encodeEntry(e: StoredEntry): Buffer {
  const b = Buffer.allocUnsafe(entrySize(e.payload.length));
  encodeEntryInto(b, 0, e);
  return b;
}

/**
 * Checks the entry starting at `buf[at]` where `buf[at]` is file byte `filePos`. `atEof`: no bytes exist after
 * the end of `buf` (so a short entry is torn, not merely not-yet-read).
 * Returns the entry, an error, or 'more' when more bytes must be read to decide.
 */
export function checkEntry(buf: Buffer, at: number, filePos: number, atEof: boolean): EntryMeta | ScanError | 'more' {
  const avail = buf.length - at;
  if (avail < 4) {
    if (!atEof) return 'more';
    return { position: filePos, reason: `torn entry length field at byte ${filePos}: ${avail} of 4 bytes present` };
  }
  const length = buf.readUInt32BE(at);
  if (length < ENTRY_LENGTH_OVERHEAD) {
    return { position: filePos, reason: `invalid entry length ${length} at byte ${filePos} (minimum ${ENTRY_LENGTH_OVERHEAD})` };
  }
  if (length > ENTRY_LENGTH_OVERHEAD + MAX_ENTRY_PAYLOAD_BYTES) {
    return { position: filePos, reason: `invalid entry length ${length} at byte ${filePos} (maximum ${ENTRY_LENGTH_OVERHEAD + MAX_ENTRY_PAYLOAD_BYTES})` };
  }
  if (avail < 4 + length) {
    if (!atEof) return 'more';
    return { position: filePos, reason: `torn entry at byte ${filePos}: length field says ${4 + length} bytes, only ${avail} present` };
  }
  const stored = buf.readUInt32BE(at + 4);
  const computed = crc32c(buf.subarray(at + 8, at + 4 + length));
  if (stored !== computed) {
    return { position: filePos, reason: `crc mismatch in entry at byte ${filePos}: stored ${hex(stored)}, computed ${hex(computed)}` };
  }
  const version = buf[at + 8]!;
  if (version !== ENTRY_VERSION) {
    return { position: filePos, reason: `unsupported entry version ${version} at byte ${filePos + 8}` };
  }
  const type = buf[at + 9]!;
  if (!VALID_TYPES.has(type)) {
    return { position: filePos, reason: `unknown entry type ${type} at byte ${filePos + 9}` };
  }
  const flags = buf.readUInt16BE(at + 10);
  if (flags !== 0) {
    return { position: filePos, reason: `reserved entry flags 0x${flags.toString(16)} at byte ${filePos + 10} are not zero` };
  }
  return {
    position: filePos,
    size: 4 + length,
    type: type as EntryType,
    term: readI64(buf, at + 12),
    index: readI64(buf, at + 20),
    firstOffset: readI64(buf, at + 28),
    offsetCount: buf.readUInt32BE(at + 36),
    maxTimestamp: readI64(buf, at + 40),
  };
}

export function isScanError(x: EntryMeta | ScanError | 'more'): x is ScanError {
  return typeof x === 'object' && 'reason' in x;
}

/** Checks that `m` follows the previous entry (or the segment header) without a gap. */
export function checkContiguity(m: EntryMeta, expectIndex: number, expectOffset: number, prevTerm: number): ScanError | null {
  if (m.index !== expectIndex) {
    return { position: m.position, reason: `non-contiguous raft index at byte ${m.position}: expected ${expectIndex}, found ${m.index}` };
  }
  if (m.firstOffset !== expectOffset) {
    return { position: m.position, reason: `non-contiguous offset at byte ${m.position}: expected first offset ${expectOffset}, found ${m.firstOffset}` };
  }
  if (m.term < prevTerm) {
    return { position: m.position, reason: `raft term went backwards at byte ${m.position}: ${m.term} after ${prevTerm}` };
  }
  if (m.type !== EntryType.DATA && m.offsetCount !== 0) {
    return { position: m.position, reason: `entry of type ${m.type} at byte ${m.position} has offset count ${m.offsetCount}, expected 0` };
  }
  return null;
}

/** Copies the StoredEntry out of a buffer holding a checked entry at `at`. */
export function entryFromBuffer(buf: Buffer, at: number, m: EntryMeta): StoredEntry {
  return {
    type: m.type,
    term: m.term,
    index: m.index,
    firstOffset: m.firstOffset,
    offsetCount: m.offsetCount,
    maxTimestamp: m.maxTimestamp,
    payload: Buffer.from(buf.subarray(at + ENTRY_HEADER_BYTES, at + m.size)),
  };
}

/**
 * Streaming scanner over a segment file (or any range of it). Reads in chunks, verifies every entry's framing,
 * CRC and contiguity, and stops at the first problem, which it reports precisely in `error`.
 *
 *   const s = await SegmentScanner.open(path); let m; while ((m = await s.next())) {...}; s.error; s.validEnd
 */
export class SegmentScanner {
  /** first problem found (null while all entries were good) */
  error: ScanError | null = null;
  /** file position just after the last good entry */
  validEnd: number;
  header: SegmentHeader | null = null;
  private buf: Buffer;
  private bufStart: number; // file position of buf[0]
  private bufLen = 0;
  private eof = false;
  private expectIndex = -1;
  private expectOffset = -1;
  private lastTerm = 0;
  private ownsHandle: boolean;

  private constructor(
    private readonly fh: fsp.FileHandle,
    readonly path: string,
    start: number,
    private readonly end: number,
    ownsHandle: boolean,
    chunkBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
    this.bufStart = start;
    this.validEnd = start;
    this.ownsHandle = ownsHandle;
  }

  /**
   * Opens a scanner. Without `start` the file header is decoded and verified first (errors land in `error`).
   * `fh` lets a caller reuse an open handle (it is then not closed by close()).
   */
  static async open(
    path: string,
    opts: { start?: number; end?: number; fh?: fsp.FileHandle; chunkBytes?: number; expectIndex?: number; expectOffset?: number; prevTerm?: number } = {},
  ): Promise<SegmentScanner> {
    let fh = opts.fh;
    try {
      fh ??= await fsp.open(path, 'r');
    } catch (e) {
      throw ioError('open segment', path, e);
    }
    let end = opts.end;
    if (end === undefined) {
      try {
        end = (await fh.stat()).size;
      } catch (e) {
        if (!opts.fh) await fh.close();
        throw ioError('stat segment', path, e);
      }
    }
    const s = new SegmentScanner(fh, path, opts.start ?? 0, end, !opts.fh, opts.chunkBytes ?? 1024 * 1024);
    if (opts.start === undefined) {
      await s.readHeader();
    } else {
      s.expectIndex = opts.expectIndex ?? -1;
      s.expectOffset = opts.expectOffset ?? -1;
      s.lastTerm = opts.prevTerm ?? 0;
    }
    return s;
  }

  private async readHeader(): Promise<void> {
    const hb = Buffer.alloc(Math.min(SEGMENT_HEADER_BYTES, this.end));
    await this.readAt(hb, 0);
    const h = decodeSegmentHeader(hb);
    if (!h.ok) {
      this.error = h.error;
      this.validEnd = 0;
      this.eof = true;
      return;
    }
    this.header = h.value;
    this.bufStart = SEGMENT_HEADER_BYTES;
    this.validEnd = SEGMENT_HEADER_BYTES;
    this.expectIndex = h.value.baseIndex;
    this.expectOffset = h.value.baseOffset;
    this.lastTerm = h.value.prevTerm;
  }

  private async readAt(target: Buffer, pos: number): Promise<number> {
    let done = 0;
    while (done < target.length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(target, done, target.length - done, pos + done));
      } catch (e) {
        throw ioError('read segment', this.path, e);
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /** Position in `buf` of the next unread entry. */
  private cursor = 0;

  /** Buffer holding the most recently returned entry (valid until the next call to next()). */
  get currentBuffer(): Buffer {
    return this.buf;
  }
  /** Offset in currentBuffer of the most recently returned entry. */
  currentAt = 0;

  /** Returns the next good entry, or null at the end or at the first problem (see `error`). */
  async next(): Promise<EntryMeta | null> {
    if (this.error) return null;
    for (;;) {
      const filePos = this.bufStart + this.cursor;
      if (filePos >= this.end && this.cursor >= this.bufLen) return null;
      const window = this.buf.subarray(0, this.bufLen);
      const r = checkEntry(window, this.cursor, filePos, this.eof);
      if (r === 'more') {
        await this.fill();
        continue;
      }
      if (isScanError(r)) {
        this.error = r;
        return null;
      }
      if (this.expectIndex >= 0) {
        const gap = checkContiguity(r, this.expectIndex, this.expectOffset, this.lastTerm);
        if (gap) {
          this.error = gap;
          return null;
        }
      }
      this.expectIndex = r.index + 1;
      this.expectOffset = r.firstOffset + r.offsetCount;
      this.lastTerm = r.term;
      this.currentAt = this.cursor;
      this.cursor += r.size;
      this.validEnd = filePos + r.size;
      return r;
    }
  }

  /** Moves unread bytes to the front and reads more; grows the buffer for entries larger than it. */
  private async fill(): Promise<void> {
    const unread = this.bufLen - this.cursor;
    let need = this.buf.length;
    if (unread >= 4) {
      const len = 4 + this.buf.readUInt32BE(this.cursor);
      if (len > need) need = len;
    }
    if (need > this.buf.length) {
      const nb = Buffer.allocUnsafe(need);
      this.buf.copy(nb, 0, this.cursor, this.bufLen);
      this.buf = nb;
    } else {
      this.buf.copy(this.buf, 0, this.cursor, this.bufLen);
    }
    this.bufStart += this.cursor;
    this.cursor = 0;
    this.bufLen = unread;
    const want = Math.min(this.buf.length - unread, this.end - (this.bufStart + unread));
    const n = want > 0 ? await this.readAt(this.buf.subarray(unread, unread + want), this.bufStart + unread) : 0;
    this.bufLen += n;
    if (n < want || this.bufStart + this.bufLen >= this.end) this.eof = true;
  }

  /** The StoredEntry (with a copied payload) of the entry just returned by next(). */
  currentEntry(m: EntryMeta): StoredEntry {
    return entryFromBuffer(this.buf, this.currentAt, m);
  }

  async close(): Promise<void> {
    if (this.ownsHandle) await this.fh.close().catch(() => undefined);
  }
}
