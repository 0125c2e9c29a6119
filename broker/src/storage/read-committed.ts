import { EntryType, type StoredEntry } from './types.ts';

/**
 * Kafka Fetch over a log: the record batches from `offset` up to (not including) the high watermark `hw`,
 * at most `maxBytes` except that the first batch is always returned whole (KIP-74). `read(from, maxBytes)` returns
 * whole entries starting with the one containing `from` (a local PartitionLog, or tiering's remote reader).
 * Shared by the standalone and the cluster broker so both answer Fetch identically.
 */
export async function readCommittedBatches(
  read: (from: number, maxBytes: number) => Promise<StoredEntry[]>,
  offset: number,
  hw: number,
  maxBytes: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let from = offset;
  while (from < hw) {
    const entries = await read(from, Math.max(1, maxBytes - size));
    if (entries.length === 0) break;
    let progressed = false;
    for (const e of entries) {
      const end = e.firstOffset + e.offsetCount;
      if (end <= from) continue;
      if (end > hw) { from = hw; break; }
      if (e.type === EntryType.DATA) {
        if (chunks.length > 0 && size + e.payload.length > maxBytes) { from = hw; break; }
        chunks.push(e.payload);
        size += e.payload.length;
      }
      from = end;
      progressed = true;
    }
    if (!progressed || size >= maxBytes) break;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
