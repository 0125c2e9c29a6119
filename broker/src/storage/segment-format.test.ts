import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SEGMENT_HEADER_BYTES, SegmentScanner, checkEntry, decodeSegmentHeader, encodeEntry, encodeSegmentHeader, isScanError, readI64, writeI64 } from './segment-format.ts';
import { SegmentIndex, decodeIndexFile, rebuildIndexFromSegment } from './index-file.ts';
import { getBaseOffset, readRecordBatchHeader } from './record-batch.ts';
import { makeBatch } from './testing.ts';
import { EntryType, type StoredEntry } from './types.ts';

function entry(index: number, firstOffset: number, count: number, ts: number, body = 20): StoredEntry {
  return { type: EntryType.DATA, term: 3, index, firstOffset, offsetCount: count, maxTimestamp: ts, payload: makeBatch(count, ts, body, index) };
}

describe('segment format', () => {
  it('i64 halves round trip, including negatives and values near 2^53', () => {
    const b = Buffer.alloc(8);
    for (const v of [0, 1, -1, 2 ** 32, 2 ** 32 - 1, -(2 ** 32), 1_700_000_000_000, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
      writeI64(b, v, 0);
      expect(readI64(b, 0)).toBe(v);
      expect(b.readBigInt64BE(0)).toBe(BigInt(v));
    }
  });

  it('header and entries round trip; the entry header fields sit at the documented bytes', () => {
    const h = encodeSegmentHeader({ baseOffset: 12345, baseIndex: 77, prevTerm: 4 });
    expect(h.length).toBe(SEGMENT_HEADER_BYTES);
    expect(h.toString('latin1', 0, 6)).toBe('LNCSEG');
    const d = decodeSegmentHeader(h);
    expect(d.ok && d.value).toEqual({ version: 1, baseOffset: 12345, baseIndex: 77, prevTerm: 4 });
    const e = entry(77, 12345, 3, 1_700_000_000_123);
    const b = encodeEntry(e);
    expect(b.readUInt32BE(0)).toBe(b.length - 4);
    expect(b[8]).toBe(1);
    expect(b[9]).toBe(EntryType.DATA);
    expect(readI64(b, 12)).toBe(3);
    expect(readI64(b, 20)).toBe(77);
    expect(readI64(b, 28)).toBe(12345);
    expect(b.readUInt32BE(36)).toBe(3);
    expect(readI64(b, 40)).toBe(1_700_000_000_123);
    const m = checkEntry(b, 0, 40, true);
    expect(m).toMatchObject({ position: 40, size: b.length, index: 77, firstOffset: 12345, offsetCount: 3, term: 3 });
  });

  it('patchBaseOffset writes the first offset into the stored RecordBatch copy without breaking its header', async () => {
    const { encodeEntryInto } = await import('./segment-format.ts');
    const e = entry(1, 500, 2, 10);
    const b = Buffer.alloc(48 + e.payload.length);
    encodeEntryInto(b, 0, e, true);
    expect(getBaseOffset(b.subarray(48))).toBe(500);
    expect(getBaseOffset(e.payload)).toBe(0);
    expect(readRecordBatchHeader(b.subarray(48)).recordCount).toBe(2);
    expect(isScanError(checkEntry(b, 0, 0, true))).toBe(false);
  });

  it('reports torn, invalid-length, crc and contiguity problems at the exact byte', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-segfmt-'));
    try {
      const e1 = encodeEntry(entry(1, 0, 2, 5));
      const e2 = encodeEntry(entry(2, 2, 1, 6));
      const e3bad = encodeEntry(entry(4, 3, 1, 7)); // index gap
      const head = encodeSegmentHeader({ baseOffset: 0, baseIndex: 1, prevTerm: 0 });
      const f = path.join(dir, '00000000000000000000.lnc');
      const cases: [Buffer, number, RegExp][] = [
        [Buffer.concat([head, e1, e2, e3bad]), 40 + e1.length + e2.length, /non-contiguous raft index at byte \d+: expected 3, found 4/],
        [Buffer.concat([head, e1, e2.subarray(0, 10)]), 40 + e1.length, /torn entry at byte \d+: length field says/],
        [Buffer.concat([head, e1, e2.subarray(0, 3)]), 40 + e1.length, /torn entry length field/],
        [Buffer.concat([head, e1, Buffer.alloc(100)]), 40 + e1.length, /invalid entry length 0/],
        [Buffer.concat([head.subarray(0, 30)]), 0, /torn segment header/],
      ];
      const flipped = Buffer.concat([head, e1, e2]);
      flipped[40 + e1.length + 60]! ^= 4;
      cases.push([flipped, 40 + e1.length, /crc mismatch in entry at byte/]);
      for (const [bytes, pos, re] of cases) {
        await writeFile(f, bytes);
        const s = await SegmentScanner.open(f, { chunkBytes: 64 }); // tiny chunks exercise entries spanning reads
        while (await s.next()) {
          /* drain */
        }
        await s.close();
        expect(s.error?.position).toBe(pos);
        expect(s.error?.reason).toMatch(re);
        expect(s.validEnd).toBe(pos);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('index files', () => {
  it('samples deterministically, looks up offsets/indexes/timestamps, and rebuilds byte-identically', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-idx-'));
    try {
      const parts: Buffer[] = [encodeSegmentHeader({ baseOffset: 100, baseIndex: 10, prevTerm: 1 })];
      const idx = new SegmentIndex(100, 200);
      let pos = 40;
      let off = 100;
      const stamps = [50, 40, 60, 55, 90, 10, 100, 95, 120, 5, 130, 131];
      const metas: { position: number; firstOffset: number; maxTimestamp: number }[] = [];
      for (let i = 0; i < stamps.length; i++) {
        const b = encodeEntry(entry(10 + i, off, 2, stamps[i]!, 60));
        idx.add({ position: pos, index: 10 + i, firstOffset: off, maxTimestamp: stamps[i]! });
        metas.push({ position: pos, firstOffset: off, maxTimestamp: stamps[i]! });
        parts.push(b);
        pos += b.length;
        off += 2;
      }
      const f = path.join(dir, '00000000000000000100.lnc');
      await writeFile(f, Buffer.concat(parts));
      const r = await rebuildIndexFromSegment(f, 100, 200);
      expect(r.error).toBeNull();
      expect(r.index.idxFile().equals(idx.idxFile())).toBe(true);
      expect(r.index.tixFile().equals(idx.tixFile())).toBe(true);
      const dec = decodeIndexFile(idx.idxFile());
      expect(dec.header).toEqual({ kind: 'offset', baseOffset: 100, intervalBytes: 200 });
      expect(dec.offsetEntries[0]).toEqual({ offset: 100, position: 40, index: 10 });
      for (let k = 1; k < dec.offsetEntries.length; k++) expect(dec.offsetEntries[k]!.position - dec.offsetEntries[k - 1]!.position).toBeGreaterThanOrEqual(200);
      expect(decodeIndexFile(idx.tixFile()).problems).toEqual([]);
      // lookups never land after the target
      for (let o = 100; o < off; o++) expect(idx.lookupOffset(o)!.offset).toBeLessThanOrEqual(o);
      for (let i = 10; i < 10 + stamps.length; i++) expect(idx.lookupIndex(i)!.index).toBeLessThanOrEqual(i);
      // a time sample never skips an entry whose timestamp ≥ ts
      for (let ts = 0; ts <= 140; ts++) {
        const first = metas.find((m) => m.maxTimestamp >= ts);
        const t = idx.lookupTimestamp(ts);
        if (first && t) expect(t.position).toBeLessThanOrEqual(first.position);
      }
      // fromFiles resumes exactly
      const again = SegmentIndex.fromFiles(idx.idxFile(), idx.tixFile(), 100, 200);
      expect(typeof again).not.toBe('string');
      expect(SegmentIndex.fromFiles(idx.idxFile(), idx.tixFile(), 100, 300)).toMatch(/interval/);
      expect(SegmentIndex.fromFiles(idx.idxFile().subarray(0, idx.idxFile().length - 3), idx.tixFile(), 100, 200)).toMatch(/torn index entry/);
      expect(() => decodeIndexFile(Buffer.from('not an index at all, really'), 'x.idx')).toThrow(/x\.idx: bad index magic/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
