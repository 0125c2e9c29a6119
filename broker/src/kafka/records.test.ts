import { describe, expect, it } from 'vitest';
import { buildRecordBatch, decodeRecordBatches, setBaseOffset, validateRecordSet, type KafkaRecord } from './records.ts';

const recs: KafkaRecord[] = [
  { key: Buffer.from('k1'), value: Buffer.from('v1'), headers: [{ key: 'h', value: Buffer.from('x') }], timestamp: 1_700_000_000_000 },
  { key: null, value: Buffer.from('v2'), headers: [], timestamp: 1_700_000_000_500 },
  { key: Buffer.from('k3'), value: null, headers: [{ key: 'n', value: null }], timestamp: 1_700_000_000_100 },
];

describe('RecordBatch v2 validation', () => {
  it('accepts valid batches (uncompressed and gzip, concatenated) and reports counts and timestamps', () => {
    const a = buildRecordBatch(recs);
    const b = buildRecordBatch(recs.slice(0, 2), { compression: 'gzip' });
    const v = validateRecordSet(Buffer.concat([a, b]));
    expect(v.map((x) => [x.offsetCount, x.compression, x.firstTimestamp, x.maxTimestamp])).toEqual([
      [3, 0, 1_700_000_000_000, 1_700_000_000_500],
      [2, 1, 1_700_000_000_000, 1_700_000_000_500],
    ]);
    expect(v[0]!.bytes.equals(a)).toBe(true);
  });

  it('round trips records with keys, headers, null values and timestamps', () => {
    const batch = buildRecordBatch(recs, { compression: 'gzip' });
    setBaseOffset(batch, 40);
    validateRecordSet(batch); // CRC does not cover baseOffset
    const out = decodeRecordBatches(batch);
    expect(out.map((r) => r.offset)).toEqual([40, 41, 42]);
    expect(out.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp }))).toEqual(recs);
  });

  it('rejects every single-bit flip after the baseOffset field (CRC, magic or length)', () => {
    const batch = buildRecordBatch(recs);
    let rejected = 0;
    for (let byte = 8; byte < batch.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(batch);
        copy[byte]! ^= 1 << bit;
        // partitionLeaderEpoch (bytes 12..15) is outside the CRC and not validated, like Kafka
        if (byte >= 12 && byte < 16) continue;
        expect(() => validateRecordSet(copy), `flip byte ${byte} bit ${bit}`).toThrow();
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(100);
  });

  it('rejects truncation at every length with a message naming the byte', () => {
    const batch = buildRecordBatch(recs);
    for (let n = 1; n < batch.length; n++) {
      expect(() => validateRecordSet(batch.subarray(0, n))).toThrow(/at byte 0/);
    }
  });

  it('rejects magic 1 and a count/offset mismatch with CORRUPT errors', () => {
    const batch = buildRecordBatch(recs);
    const m1 = Buffer.from(batch);
    m1[16] = 1;
    expect(() => validateRecordSet(m1)).toThrow(/magic 1; only v2/);
    try {
      validateRecordSet(m1);
    } catch (e) {
      expect((e as { code: string }).code).toBe('CORRUPT');
    }
    expect(() => validateRecordSet(Buffer.alloc(0))).toThrow(/empty record set/);
  });
});
