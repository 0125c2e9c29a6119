/**
 * Reads entries of an uploaded segment from the object store: the segment's .idx (whole object, CRC32C-verified)
 * gives the position of a sample at or before the wanted offset, then fixed-size blocks of the .lnc object are
 * range-read and kept in a bounded LRU. Range reads are not checksummed by the store, so every entry's own
 * CRC32C is checked (checkEntry); a bad entry drops the segment's cached blocks and is read once more from the
 * store, and still bad → CORRUPT. Wrong bytes are never returned.
 */
import { LanceError, isLanceError } from '../common/errors.ts';
import { checkEntry, entryFromBuffer, isScanError, SEGMENT_HEADER_BYTES } from '../storage/segment-format.ts';
import { decodeIndexFile } from '../storage/index-file.ts';
import type { StoredEntry } from '../storage/types.ts';
import type { RemoteSegment } from './manifest.ts';
import type { ObjectStore } from './object-store.ts';

/** A byte-bounded LRU (Map keeps insertion order; a hit re-inserts). */
export class LruCache {
  private readonly map = new Map<string, Buffer>();
  private total = 0;
  constructor(readonly capacityBytes: number) {}
  get(key: string): Buffer | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: Buffer): void {
    this.delete(key);
    if (v.length > this.capacityBytes) return;
    this.map.set(key, v);
    this.total += v.length;
    while (this.total > this.capacityBytes) {
      const oldest = this.map.keys().next().value as string;
      this.delete(oldest);
    }
  }
  delete(key: string): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    this.map.delete(key);
    this.total -= v.length;
  }
  deleteWhere(pred: (key: string) => boolean): void {
    for (const k of [...this.map.keys()]) if (pred(k)) this.delete(k);
  }
  get sizeBytes(): number {
    return this.total;
  }
}

export class RemoteSegmentReader {
  constructor(
    private readonly store: ObjectStore,
    private readonly cache: LruCache,
    private readonly blockBytes: number,
    private readonly onFetched: (bytes: number) => void = () => undefined,
  ) {}

  private async block(seg: RemoteSegment, n: number): Promise<Buffer> {
    const ck = `${seg.data.key}#${n}`;
    const hit = this.cache.get(ck);
    if (hit) return hit;
    const offset = n * this.blockBytes;
    const length = Math.min(this.blockBytes, seg.data.size - offset);
    const buf = await this.store.get(seg.data.key, { range: { offset, length } });
    if (buf.length !== length) {
      throw new LanceError('CORRUPT', `remote segment ${seg.data.key}: range ${offset}+${length} returned ${buf.length} bytes`, { key: seg.data.key, offset });
    }
    this.onFetched(buf.length);
    this.cache.set(ck, buf);
    return buf;
  }

  /** Byte position of the last index sample at or before `offset` (the segment's first entry without one). */
  private async startPosition(seg: RemoteSegment, offset: number): Promise<number> {
    if (!seg.idx) return SEGMENT_HEADER_BYTES;
    const ck = `${seg.idx.key}#idx`;
    let file = this.cache.get(ck);
    try {
      if (!file) {
        file = await this.store.get(seg.idx.key);
        this.onFetched(file.length);
        this.cache.set(ck, file);
      }
      const d = decodeIndexFile(file, seg.idx.key);
      let pos = SEGMENT_HEADER_BYTES;
      for (const e of d.offsetEntries) {
        if (e.offset > offset) break;
        if (e.position < seg.data.size) pos = e.position;
      }
      return pos;
    } catch (e) {
      // The index only speeds the read up: without it, scan from the first entry (entries are checked anyway).
      if (isLanceError(e) && (e.code === 'CORRUPT' || e.code === 'NOT_FOUND')) return SEGMENT_HEADER_BYTES;
      throw e;
    }
  }

  /** Entries from the one holding `offset`, up to `maxBytes` of payload (at least one), within this segment. */
  async read(seg: RemoteSegment, offset: number, maxBytes: number): Promise<StoredEntry[]> {
    try {
      return await this.readOnce(seg, offset, maxBytes);
    } catch (e) {
      if (!isLanceError(e) || e.code !== 'CORRUPT') throw e;
      // Possibly damaged in transit or in the cache: drop what we hold of this segment and read it again once.
      this.cache.deleteWhere((k) => k.startsWith(`${seg.data.key}#`) || (seg.idx !== undefined && k.startsWith(`${seg.idx.key}#`)));
      return this.readOnce(seg, offset, maxBytes);
    }
  }

  private async readOnce(seg: RemoteSegment, offset: number, maxBytes: number): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    let bytes = 0;
    let pos = await this.startPosition(seg, offset);
    let buf: Buffer = Buffer.alloc(0);
    let bufStart = pos;
    while (pos < seg.data.size) {
      const at = pos - bufStart;
      const atEof = bufStart + buf.length >= seg.data.size;
      const m = checkEntry(buf, at, pos, atEof);
      if (m === 'more') {
        // Append the next block (drop what is already consumed so the buffer stays small).
        const nextByte = bufStart + buf.length;
        const n = Math.floor(nextByte / this.blockBytes);
        const b = await this.block(seg, n);
        const from = nextByte - n * this.blockBytes;
        buf = Buffer.concat([buf.subarray(at), b.subarray(from)]);
        bufStart = pos;
        continue;
      }
      if (isScanError(m)) {
        throw new LanceError('CORRUPT', `remote segment ${seg.data.key}: ${m.reason}`, { key: seg.data.key, position: m.position });
      }
      if (m.firstOffset < seg.baseOffset || m.firstOffset + m.offsetCount - 1 > seg.lastOffset) {
        throw new LanceError('CORRUPT', `remote segment ${seg.data.key}: entry at byte ${pos} holds offsets ${m.firstOffset}.. outside the manifest's ${seg.baseOffset}..${seg.lastOffset}`, { key: seg.data.key, position: pos });
      }
      pos += m.size;
      if (m.firstOffset + m.offsetCount <= offset) continue;
      if (out.length > 0 && bytes + (m.size - 48) > maxBytes) break;
      out.push(entryFromBuffer(buf, at, m));
      bytes += m.size - 48;
      if (bytes >= maxBytes) break;
    }
    return out;
  }
}
