/**
 * Minimal, pure helpers for the Kafka RecordBatch v2 header (the full codec lives in broker/src/kafka).
 * Layout (big endian): baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32 @12 | magic i8 @16 |
 * crc u32 @17 (CRC32C over bytes 21..end) | attributes i16 @21 | lastOffsetDelta i32 @23 | baseTimestamp i64 @27 |
 * maxTimestamp i64 @35 | producerId i64 @43 | producerEpoch i16 @51 | baseSequence i32 @53 | recordCount i32 @57 |
 * records @61. The batch CRC does not cover baseOffset, batchLength or partitionLeaderEpoch, so a broker may
 * rewrite those without touching the CRC.
 */
import { LanceError } from '../common/errors.ts';

export const RECORD_BATCH_HEADER_BYTES = 61;
export const RECORD_BATCH_MAGIC = 2;

export interface RecordBatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Throws INVALID_ARGUMENT naming the field when `buf` cannot be a v2 RecordBatch. */
export function checkRecordBatch(buf: Uint8Array, what = 'record batch'): void {
  if (buf.length < RECORD_BATCH_HEADER_BYTES) {
    throw new LanceError('INVALID_ARGUMENT', `${what}: ${buf.length} bytes is shorter than the ${RECORD_BATCH_HEADER_BYTES}-byte RecordBatch v2 header`, { length: buf.length });
  }
  if (buf[16] !== RECORD_BATCH_MAGIC) {
    throw new LanceError('INVALID_ARGUMENT', `${what}: magic byte at offset 16 is ${buf[16]}, expected ${RECORD_BATCH_MAGIC}`, { magic: buf[16] });
  }
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Rewrites baseOffset (bytes 0..7) in place. */
export function setBaseOffset(buf: Uint8Array, baseOffset: number): void {
  view(buf).setBigInt64(0, BigInt(baseOffset), false);
}

export function getBaseOffset(buf: Uint8Array): number {
  return Number(view(buf).getBigInt64(0, false));
}

/** Rewrites partitionLeaderEpoch (bytes 12..15) in place. */
export function setPartitionLeaderEpoch(buf: Uint8Array, epoch: number): void {
  view(buf).setInt32(12, epoch, false);
}

export function readRecordBatchHeader(buf: Uint8Array): RecordBatchHeader {
  checkRecordBatch(buf);
  const v = view(buf);
  return {
    baseOffset: Number(v.getBigInt64(0, false)),
    batchLength: v.getInt32(8, false),
    partitionLeaderEpoch: v.getInt32(12, false),
    magic: v.getInt8(16),
    crc: v.getUint32(17, false),
    attributes: v.getInt16(21, false),
    lastOffsetDelta: v.getInt32(23, false),
    baseTimestamp: Number(v.getBigInt64(27, false)),
    maxTimestamp: Number(v.getBigInt64(35, false)),
    producerId: Number(v.getBigInt64(43, false)),
    producerEpoch: v.getInt16(51, false),
    baseSequence: v.getInt32(53, false),
    recordCount: v.getInt32(57, false),
  };
}
