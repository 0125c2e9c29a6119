import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { LanceError } from '../common/errors.ts';
import { decodeRecordBatches, encodeRecordBatch, murmur2, partitionForKey, type SimpleRecord } from './records.ts';

// kafkajs (a dev dependency) is the independent reference: its internal RecordBatch codec and murmur2.
const require = createRequire(import.meta.url);
type KjsRecord = { key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer>; timestamp: string; offset: string };
const KjsDecoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => unknown;
const kjsDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: unknown) => Promise<{ records: KjsRecord[] }>;
const kjsRecordBatch = (require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (o: object) => Promise<{ buffer: Buffer }> }).RecordBatch;
const kjsRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (o: object) => unknown;
const kjsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (k: Buffer) => number;
const { CompressionTypes } = require('kafkajs') as { CompressionTypes: { GZIP: number } };

const sample: SimpleRecord[] = [
  { key: Buffer.from('k1'), value: Buffer.from('hello'), headers: [{ key: 'h', value: Buffer.from('v') }], timestamp: 1_700_000_000_000 },
  { key: null, value: Buffer.from('x'.repeat(300)), headers: [], timestamp: 1_700_000_000_500 },
  { key: Buffer.from(''), value: null, headers: [{ key: 'a', value: Buffer.from('1') }, { key: 'b', value: Buffer.from('') }], timestamp: 1_699_999_999_000 },
];

describe('record batches', () => {
  it('encodes a batch kafkajs decodes identically, and decodes it back', async () => {
    const batch = encodeRecordBatch(sample);
    expect(batch.offsetCount).toBe(3);
    expect(batch.maxTimestamp).toBe(1_700_000_000_500);
    expect(batch.firstTimestamp).toBe(1_699_999_999_000);
    const theirs = await kjsDecodeBatch(new KjsDecoder(batch.bytes));
    expect(theirs.records.map((r) => [r.key?.toString() ?? null, r.value?.toString() ?? null, r.timestamp, r.offset])).toEqual([
      ['k1', 'hello', '1700000000000', '0'],
      [null, 'x'.repeat(300), '1700000000500', '1'],
      ['', null, '1699999999000', '2'],
    ]);
    expect(theirs.records[2]!.headers['b']!.toString()).toBe('');
    const ours = decodeRecordBatches(batch.bytes);
    expect(ours).toEqual(sample.map((r, i) => ({ ...r, offset: i })));
  });

  it('decodes gzip batches written by kafkajs, and rejects a CRC mismatch', async () => {
    const base = 1_700_000_000_000;
    const records = [0, 1, 2].map((i) => kjsRecord({ offsetDelta: i, timestampDelta: i * 10, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), headers: { n: Buffer.from(String(i)) } }));
    const enc = await kjsRecordBatch({ compression: CompressionTypes.GZIP, firstTimestamp: base, maxTimestamp: base + 20, lastOffsetDelta: 2, records });
    const bytes = Buffer.from(enc.buffer);
    bytes.writeBigInt64BE(40n, 0); // as the log would after assigning offsets
    const ours = decodeRecordBatches(bytes);
    expect(ours.map((r) => [r.offset, r.timestamp, r.key?.toString(), r.value?.toString(), r.headers[0]?.value?.toString()])).toEqual([
      [40, base, 'k0', 'v0', '0'], [41, base + 10, 'k1', 'v1', '1'], [42, base + 20, 'k2', 'v2', '2'],
    ]);
    bytes[bytes.length - 1]! ^= 0xff;
    expect(() => decodeRecordBatches(bytes)).toThrow(LanceError);
  });

  it('concatenated batches decode in order; a partial trailing batch is ignored', () => {
    const a = encodeRecordBatch(sample.slice(0, 1)).bytes;
    const b = encodeRecordBatch(sample.slice(1)).bytes;
    b.writeBigInt64BE(1n, 0);
    const all = Buffer.concat([a, b, b.subarray(0, 30)]);
    expect(decodeRecordBatches(all).map((r) => r.offset)).toEqual([0, 1, 2]);
  });

  it('murmur2 and the key partitioner match kafkajs\'s DefaultPartitioner', () => {
    for (let i = 0; i < 500; i++) {
      const key = Buffer.from(`key-${i}-${'z'.repeat(i % 7)}`);
      expect(murmur2(key)).toBe(kjsMurmur2(key));
      expect(partitionForKey(key, 7)).toBe((kjsMurmur2(key) & 0x7fffffff) % 7);
    }
  });
});
