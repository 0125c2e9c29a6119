/**
 * Kafka RecordBatch v2 encode/decode for the admin API's simple produce/consume endpoints (`lnc produce` /
 * `lnc consume`), plus Kafka's murmur2 default partitioner. Pure functions. The Kafka wire path never uses this:
 * clients send batches that are stored as-is. (Layout: see broker/src/storage/record-batch.ts.)
 */
import { gunzipSync } from 'node:zlib';
import { LanceError } from '../common/errors.ts';
import { crc32c } from '../storage/crc.ts';
import { RECORD_BATCH_HEADER_BYTES, readRecordBatchHeader } from '../storage/record-batch.ts';
import type { ValidatedBatch } from '../kafka/backend.ts';

export interface SimpleRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<{ key: string; value: Buffer | null }>;
  timestamp: number;
}

export interface DecodedRecord extends SimpleRecord {
  offset: number;
}

// --- varints (zigzag), numbers up to 2^53 ---

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function writeVarint(out: number[], n: number): void {
  let v = zigzag(n);
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

class ByteReader {
  pos: number;
  constructor(private readonly buf: Buffer, start: number, private readonly what: string) {
    this.pos = start;
  }
  private fail(msg: string): never {
    throw new LanceError('CORRUPT', `${this.what}: ${msg} at byte ${this.pos}`, { position: this.pos });
  }
  varint(): number {
    let raw = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      raw += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
      mul *= 0x80;
    }
    return this.fail('varint longer than 10 bytes');
  }
  int8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated record');
    return this.buf.readInt8(this.pos++);
  }
  bytes(len: number): Buffer | null {
    if (len < 0) return null;
    if (this.pos + len > this.buf.length) this.fail(`field of ${len} bytes runs past the end`);
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
}

/**
 * Builds one uncompressed RecordBatch v2 (baseOffset 0; the log assigns offsets) with a valid CRC32C,
 * and the ValidatedBatch description KafkaBackend.produce takes.
 */
export function encodeRecordBatch(records: readonly SimpleRecord[]): ValidatedBatch {
  if (records.length === 0) throw new LanceError('INVALID_ARGUMENT', 'records: a batch needs at least one record', { field: 'records' });
  const baseTimestamp = Math.min(...records.map((r) => r.timestamp));
  const maxTimestamp = Math.max(...records.map((r) => r.timestamp));
  const chunks: Buffer[] = [];
  records.forEach((r, i) => {
    const rec: number[] = [];
    rec.push(0); // record attributes
    writeVarint(rec, r.timestamp - baseTimestamp);
    writeVarint(rec, i);
    const parts: Buffer[] = [];
    const flush = (): void => {
      if (rec.length) parts.push(Buffer.from(rec.splice(0)));
    };
    const field = (b: Buffer | null): void => {
      writeVarint(rec, b === null ? -1 : b.length);
      if (b) {
        flush();
        parts.push(b);
      }
    };
    field(r.key);
    field(r.value);
    writeVarint(rec, r.headers.length);
    for (const h of r.headers) {
      field(Buffer.from(h.key, 'utf8'));
      field(h.value);
    }
    flush();
    const payload = Buffer.concat(parts);
    const len: number[] = [];
    writeVarint(len, payload.length);
    chunks.push(Buffer.from(len), payload);
  });
  const recordsBytes = Buffer.concat(chunks);
  const buf = Buffer.alloc(RECORD_BATCH_HEADER_BYTES + recordsBytes.length);
  buf.writeBigInt64BE(0n, 0);
  buf.writeInt32BE(buf.length - 12, 8);
  buf.writeInt32BE(-1, 12); // partitionLeaderEpoch
  buf.writeInt8(2, 16);
  buf.writeInt16BE(0, 21); // attributes: no compression, CreateTime
  buf.writeInt32BE(records.length - 1, 23);
  buf.writeBigInt64BE(BigInt(baseTimestamp), 27);
  buf.writeBigInt64BE(BigInt(maxTimestamp), 35);
  buf.writeBigInt64BE(-1n, 43); // producerId
  buf.writeInt16BE(-1, 51);
  buf.writeInt32BE(-1, 53);
  buf.writeInt32BE(records.length, 57);
  recordsBytes.copy(buf, RECORD_BATCH_HEADER_BYTES);
  buf.writeUInt32BE(crc32c(buf.subarray(21)), 17);
  return {
    bytes: buf, offsetCount: records.length, recordCount: records.length, firstTimestamp: baseTimestamp, maxTimestamp,
    compression: 0, logAppendTime: false, producerId: -1, producerEpoch: -1, baseSequence: -1, isTransactional: false, isControl: false,
  };
}

const CODEC_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/**
 * Decodes the records of concatenated RecordBatch v2 bytes (as stored / as fetched). Control batches are skipped;
 * gzip is decompressed; other codecs → UNSUPPORTED naming the codec (use a Kafka client for those).
 * Verifies each batch's CRC32C.
 */
export function decodeRecordBatches(data: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  let pos = 0;
  while (pos + RECORD_BATCH_HEADER_BYTES <= data.length) {
    const batchLength = data.readInt32BE(pos + 8);
    const end = pos + 12 + batchLength;
    if (batchLength < RECORD_BATCH_HEADER_BYTES - 12 || end > data.length) break; // partial trailing batch
    const batch = data.subarray(pos, end);
    const h = readRecordBatchHeader(batch);
    const what = `record batch at offset ${h.baseOffset}`;
    if (crc32c(batch.subarray(21)) !== h.crc) throw new LanceError('CORRUPT', `${what}: CRC32C mismatch`, { offset: h.baseOffset });
    pos = end;
    if (h.attributes & 0x20) continue; // control batch (transaction markers): not user data
    const codec = h.attributes & 0x07;
    let records = batch.subarray(RECORD_BATCH_HEADER_BYTES);
    if (codec === 1) records = gunzipSync(records);
    else if (codec !== 0) {
      throw new LanceError('UNSUPPORTED', `${what}: ${CODEC_NAMES[codec] ?? `codec ${codec}`}-compressed batches cannot be decoded by the admin API; use a Kafka client`, { codec });
    }
    const logAppendTime = (h.attributes & 0x08) !== 0;
    const r = new ByteReader(records, 0, what);
    for (let i = 0; i < h.recordCount; i++) {
      r.varint(); // record length
      r.int8(); // attributes
      const tsDelta = r.varint();
      const offsetDelta = r.varint();
      const key = r.bytes(r.varint());
      const value = r.bytes(r.varint());
      const headerCount = r.varint();
      const headers: SimpleRecord['headers'] = [];
      for (let j = 0; j < headerCount; j++) {
        const hk = r.bytes(r.varint());
        headers.push({ key: hk ? hk.toString('utf8') : '', value: r.bytes(r.varint()) });
      }
      out.push({ offset: h.baseOffset + offsetDelta, timestamp: logAppendTime ? h.maxTimestamp : h.baseTimestamp + tsDelta, key, value, headers });
    }
  }
  return out;
}

/** Kafka's murmur2 (Java client / kafkajs DefaultPartitioner compatible). */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const len = data.length;
  let h = (0x9747b28c ^ len) | 0;
  const whole = len & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = len & 3;
  if (tail >= 3) h ^= data[whole + 2]! << 16;
  if (tail >= 2) h ^= data[whole + 1]! << 8;
  if (tail >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's default partition for a keyed record. */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
