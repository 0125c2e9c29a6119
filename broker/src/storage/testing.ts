/**
 * Test helpers for code that uses the segment store (not used at runtime). makeBatch builds a RecordBatch v2
 * header with an opaque, deterministic body: enough for the store, which reads only header fields.
 */
import { crc32c } from './crc.ts';
import { RECORD_BATCH_HEADER_BYTES } from './record-batch.ts';
import { writeI64 } from './segment-format.ts';
import { EntryType, type NewEntry } from './types.ts';

export function makeBatch(records: number, maxTimestamp: number, bodyBytes: number, seed = 0): Buffer {
  const b = Buffer.alloc(RECORD_BATCH_HEADER_BYTES + bodyBytes);
  writeI64(b, 0, 0); // baseOffset: rewritten by the log
  b.writeInt32BE(b.length - 12, 8);
  b.writeInt32BE(0, 12);
  b[16] = 2;
  b.writeInt16BE(0, 21);
  b.writeInt32BE(records - 1, 23);
  writeI64(b, maxTimestamp, 27);
  writeI64(b, maxTimestamp, 35);
  writeI64(b, -1, 43);
  b.writeInt16BE(-1, 51);
  b.writeInt32BE(-1, 53);
  b.writeInt32BE(records, 57);
  let x = (seed * 2654435761) >>> 0;
  for (let i = RECORD_BATCH_HEADER_BYTES; i < b.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  b.writeUInt32BE(crc32c(b.subarray(21)), 17);
  return b;
}

export function dataEntry(term: number, records: number, maxTimestamp: number, bodyBytes: number, seed = 0): NewEntry {
  return { type: EntryType.DATA, term, offsetCount: records, maxTimestamp, payload: makeBatch(records, maxTimestamp, bodyBytes, seed) };
}

export function noopEntry(term: number): NewEntry {
  return { type: EntryType.NOOP, term, offsetCount: 0, maxTimestamp: -1, payload: Buffer.alloc(0) };
}

/** Entry number `i` of the crash test: content is a pure function of i, so the parent can check it. */
export function crashEntry(i: number, term: number): NewEntry {
  return dataEntry(term, 1 + (i % 5), 1_700_000_000_000 + i, 50 + ((i * 7919) % 3000), i);
}
