import { crc32c } from '@node-rs/crc32';
import { gunzipSync, gzipSync } from 'node:zlib';
import { LanceError } from '../common/errors.ts';
import type { ValidatedBatch } from './backend.ts';
import { Reader, Writer } from './protocol/wire.ts';

/**
 * Kafka RecordBatch v2 ("magic 2"):
 *   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 (CRC32C of
 *   everything after it) | attributes int16 | lastOffsetDelta int32 | firstTimestamp int64 | maxTimestamp int64 |
 *   producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32 | records...
 */
export const BATCH_HEADER_BYTES = 61;
const CRC_START = 21;
const OFF = {
  baseOffset: 0,
  batchLength: 8,
  leaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  firstTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
} as const;

function corrupt(message: string, byte: number): LanceError {
  return new LanceError('CORRUPT', message, { byte, field: 'records' });
}

function readInt64(b: Buffer, at: number): number {
  return b.readInt32BE(at) * 4294967296 + b.readUInt32BE(at + 4);
}

/**
 * Validates a Produce request's record set (one or more concatenated v2 batches): sizes, magic, CRC32C, the
 * offset/record counts, and for uncompressed batches the record framing. Throws LanceError('CORRUPT') naming the
 * byte offset within the record set. Compressed payloads are not decompressed (they are stored as-is).
 */
export function validateRecordSet(records: Buffer): ValidatedBatch[] {
  const out: ValidatedBatch[] = [];
  let pos = 0;
  if (records.length === 0) throw corrupt('empty record set', 0);
  while (pos < records.length) {
    const left = records.length - pos;
    if (left < BATCH_HEADER_BYTES) throw corrupt(`truncated RecordBatch at byte ${pos}: ${left} bytes, header needs ${BATCH_HEADER_BYTES}`, pos);
    const magic = records.readInt8(pos + OFF.magic);
    if (magic !== 2) throw corrupt(`RecordBatch at byte ${pos} has magic ${magic}; only v2 (magic 2) is supported`, pos + OFF.magic);
    const batchLength = records.readInt32BE(pos + OFF.batchLength);
    const total = batchLength + 12;
    if (batchLength < BATCH_HEADER_BYTES - 12 || total > left) {
      throw corrupt(`RecordBatch at byte ${pos} declares batchLength ${batchLength}, but ${left - 12} bytes follow (minimum ${BATCH_HEADER_BYTES - 12})`, pos + OFF.batchLength);
    }
    const batch = records.subarray(pos, pos + total);
    const expected = batch.readUInt32BE(OFF.crc);
    const actual = crc32c(batch.subarray(CRC_START)) >>> 0;
    if (expected !== actual) {
      throw corrupt(`RecordBatch at byte ${pos}: CRC32C mismatch (stored ${expected.toString(16)}, computed ${actual.toString(16)})`, pos + OFF.crc);
    }
    const attributes = batch.readInt16BE(OFF.attributes);
    const lastOffsetDelta = batch.readInt32BE(OFF.lastOffsetDelta);
    const recordCount = batch.readInt32BE(OFF.recordCount);
    if (recordCount <= 0 || lastOffsetDelta !== recordCount - 1) {
      throw corrupt(`RecordBatch at byte ${pos}: recordCount ${recordCount} and lastOffsetDelta ${lastOffsetDelta} disagree (a produced batch has offsets 0..n-1)`, pos + OFF.recordCount);
    }
    const compression = attributes & 0x07;
    if (compression > 4) throw corrupt(`RecordBatch at byte ${pos}: unknown compression codec ${compression}`, pos + OFF.attributes);
    if (compression === 0) checkRecordFraming(batch, recordCount, pos);
    out.push({
      bytes: batch,
      offsetCount: lastOffsetDelta + 1,
      recordCount,
      firstTimestamp: readInt64(batch, OFF.firstTimestamp),
      maxTimestamp: readInt64(batch, OFF.maxTimestamp),
      compression,
      logAppendTime: (attributes & 0x08) !== 0,
      producerId: readInt64(batch, OFF.producerId),
      producerEpoch: batch.readInt16BE(OFF.producerEpoch),
      baseSequence: batch.readInt32BE(OFF.baseSequence),
      isTransactional: (attributes & 0x10) !== 0,
      isControl: (attributes & 0x20) !== 0,
    });
    pos += total;
  }
  return out;
}

/** Each record is `length varint` + that many bytes; they must exactly fill the batch. */
function checkRecordFraming(batch: Buffer, recordCount: number, batchPos: number): void {
  const r = new Reader(batch, BATCH_HEADER_BYTES);
  r.field = 'records';
  for (let i = 0; i < recordCount; i++) {
    let len: number;
    try {
      len = r.varint();
    } catch {
      throw corrupt(`RecordBatch at byte ${batchPos}: record ${i} length varint is truncated`, batchPos + r.pos);
    }
    if (len <= 0 || len > r.remaining()) {
      throw corrupt(`RecordBatch at byte ${batchPos}: record ${i} declares ${len} bytes, ${r.remaining()} left`, batchPos + r.pos);
    }
    r.pos += len;
  }
  if (r.remaining() !== 0) throw corrupt(`RecordBatch at byte ${batchPos}: ${r.remaining()} trailing bytes after ${recordCount} records`, batchPos + r.pos);
}

/** Rewrites baseOffset in place (the CRC does not cover it). */
export function setBaseOffset(batch: Buffer, baseOffset: number): void {
  batch.writeBigInt64BE(BigInt(baseOffset), OFF.baseOffset);
}

// ----------------------------------------------------------------- building and reading records (tests, lnc, bench)

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}
export interface KafkaRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  timestamp: number;
}
export interface DecodedRecord extends KafkaRecord {
  offset: number;
}

export interface BuildBatchOptions {
  baseOffset?: number;
  compression?: 'none' | 'gzip';
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
}

function encodeRecords(records: KafkaRecord[], firstTimestamp: number): Buffer {
  const w = new Writer();
  records.forEach((rec, i) => {
    const body = new Writer();
    body.int8(0).varlong(rec.timestamp - firstTimestamp).varint(i);
    if (rec.key === null) body.varint(-1);
    else body.varint(rec.key.length).raw(rec.key);
    if (rec.value === null) body.varint(-1);
    else body.varint(rec.value.length).raw(rec.value);
    body.varint(rec.headers.length);
    for (const h of rec.headers) {
      const k = Buffer.from(h.key, 'utf8');
      body.varint(k.length).raw(k);
      if (h.value === null) body.varint(-1);
      else body.varint(h.value.length).raw(h.value);
    }
    const b = body.toBuffer();
    w.varint(b.length).raw(b);
  });
  return w.toBuffer();
}

/** Builds a valid RecordBatch v2 (CRC32C computed). */
export function buildRecordBatch(records: KafkaRecord[], opts: BuildBatchOptions = {}): Buffer {
  if (records.length === 0) throw new LanceError('INVALID_ARGUMENT', 'a RecordBatch needs at least one record', { field: 'records' });
  const firstTimestamp = records[0]!.timestamp;
  const maxTimestamp = Math.max(...records.map((r) => r.timestamp));
  let payload = encodeRecords(records, firstTimestamp);
  let codec = 0;
  if (opts.compression === 'gzip') {
    payload = gzipSync(payload);
    codec = 1;
  }
  const batch = Buffer.alloc(BATCH_HEADER_BYTES + payload.length);
  batch.writeBigInt64BE(BigInt(opts.baseOffset ?? 0), OFF.baseOffset);
  batch.writeInt32BE(batch.length - 12, OFF.batchLength);
  batch.writeInt32BE(-1, OFF.leaderEpoch);
  batch.writeInt8(2, OFF.magic);
  batch.writeInt16BE(codec, OFF.attributes);
  batch.writeInt32BE(records.length - 1, OFF.lastOffsetDelta);
  batch.writeBigInt64BE(BigInt(firstTimestamp), OFF.firstTimestamp);
  batch.writeBigInt64BE(BigInt(maxTimestamp), OFF.maxTimestamp);
  batch.writeBigInt64BE(BigInt(opts.producerId ?? -1), OFF.producerId);
  batch.writeInt16BE(opts.producerEpoch ?? -1, OFF.producerEpoch);
  batch.writeInt32BE(opts.baseSequence ?? -1, OFF.baseSequence);
  batch.writeInt32BE(records.length, OFF.recordCount);
  payload.copy(batch, BATCH_HEADER_BYTES);
  batch.writeUInt32BE(crc32c(batch.subarray(CRC_START)) >>> 0, OFF.crc);
  return batch;
}

/** Decodes concatenated batches (gzip or uncompressed) into records with absolute offsets. A partial trailing batch is ignored (Fetch may cut one). */
export function decodeRecordBatches(buf: Buffer): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  let pos = 0;
  while (buf.length - pos >= BATCH_HEADER_BYTES) {
    const total = buf.readInt32BE(pos + OFF.batchLength) + 12;
    if (pos + total > buf.length) break;
    const batch = buf.subarray(pos, pos + total);
    const baseOffset = readInt64(batch, OFF.baseOffset);
    const firstTimestamp = readInt64(batch, OFF.firstTimestamp);
    const count = batch.readInt32BE(OFF.recordCount);
    const codec = batch.readInt16BE(OFF.attributes) & 0x07;
    let payload = batch.subarray(BATCH_HEADER_BYTES);
    if (codec === 1) payload = gunzipSync(payload);
    else if (codec !== 0) throw new LanceError('UNSUPPORTED', `decodeRecordBatches: compression codec ${codec} not supported here`, { byte: pos });
    const r = new Reader(payload);
    for (let i = 0; i < count; i++) {
      r.varint(); // record length
      r.int8(); // attributes
      const tsDelta = r.varlong();
      const offDelta = r.varint();
      const kl = r.varint();
      const key = kl < 0 ? null : Buffer.from(r.raw(kl));
      const vl = r.varint();
      const value = vl < 0 ? null : Buffer.from(r.raw(vl));
      const hn = r.varint();
      const headers: RecordHeader[] = [];
      for (let h = 0; h < hn; h++) {
        const hk = r.raw(r.varint()).toString('utf8');
        const hvl = r.varint();
        headers.push({ key: hk, value: hvl < 0 ? null : Buffer.from(r.raw(hvl)) });
      }
      out.push({ offset: baseOffset + offDelta, timestamp: firstTimestamp + tsDelta, key, value, headers });
    }
    pos += total;
  }
  return out;
}
