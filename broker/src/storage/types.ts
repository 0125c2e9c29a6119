/**
 * The partition log contract. One PartitionLog per `topic_<id>/<partition>/` directory; it is both the
 * partition's Kafka log and (from the replication issue on) the partition's Raft log.
 *
 * Offsets, Raft indexes and timestamps are JS numbers (safe up to 2^53; stored as int64 on disk).
 * The implementation lives in ./partition-log.ts; the byte format is documented in docs/format.md.
 */

/** What an entry carries. DATA payloads are Kafka RecordBatch v2 bytes (stored as-is, baseOffset rewritten). */
export const EntryType = {
  DATA: 1,      // Kafka RecordBatch (offsetCount = records in the batch)
  NOOP: 2,      // Raft no-op a new leader appends (offsetCount = 0)
  CONFIG: 3,    // Raft membership configuration (offsetCount = 0; JSON payload)
  CONTROL: 4,   // broker-internal control record, e.g. producer state snapshot marker (offsetCount = 0)
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** An entry as handed to append() by a leader: offsets and Raft index are assigned by the log. */
export interface NewEntry {
  type: EntryType;
  term: number;
  /** number of Kafka offsets this entry occupies (records in the batch; 0 for NOOP/CONFIG/CONTROL) */
  offsetCount: number;
  /** max record timestamp in ms (-1 when not applicable) */
  maxTimestamp: number;
  payload: Buffer;
}

/** An entry as stored (and as replicated to followers, who append it verbatim with appendReplicated). */
export interface StoredEntry extends NewEntry {
  /** Raft index: 1-based, contiguous across the whole log */
  index: number;
  /** first Kafka offset (== the next offset when offsetCount is 0) */
  firstOffset: number;
}

export interface AppendResult {
  firstOffset: number;
  /** last offset written (firstOffset - 1 if only zero-count entries were appended) */
  lastOffset: number;
  firstIndex: number;
  lastIndex: number;
  /** resolves when the entries are fsynced according to the flush policy (group commit) */
  durable: Promise<void>;
}

export type FlushPolicy =
  | { mode: 'every-entry' }
  | { mode: 'interval'; ms: number }          // group commit: fsync at most every `ms`, batching appends
  | { mode: 'bytes'; bytes: number; maxDelayMs: number };

export interface RetentionPolicy {
  /** total bytes kept; 0 = unlimited */
  retentionBytes: number;
  /** age of a sealed segment's newest record before deletion, ms; 0 = unlimited */
  retentionMs: number;
}

export interface LogOptions {
  segmentBytes: number;        // roll when the active segment would exceed this (default 128 MiB)
  segmentMs: number;           // roll when the active segment's first entry is older than this; 0 = never
  indexIntervalBytes: number;  // sparse index: one .idx/.tix entry per this many bytes (default 4096)
  flush: FlushPolicy;
  retention: RetentionPolicy;
  /** clock for segment age (segmentMs) and retention age; tests inject one instead of sleeping (default Date.now) */
  now?: () => number;
}

export interface SegmentInfo {
  baseOffset: number;
  file: string;           // absolute path of the .lnc file
  sizeBytes: number;
  firstIndex: number;     // 0 if empty
  lastIndex: number;      // 0 if empty
  lastOffset: number;     // baseOffset - 1 if empty
  maxTimestamp: number;   // -1 if empty
  sealed: boolean;
}

/** What recovery on open did: logged, and returned so tests and `lnc` can check it. */
export interface RecoveryReport {
  segmentsScanned: number;
  truncatedBytes: number;        // bytes cut from a torn or corrupt tail
  truncatedAtPosition: number | null;
  reason: string | null;         // e.g. 'torn entry header at byte 1234', 'crc mismatch at byte 99'
  indexesRebuilt: string[];      // index files rebuilt because missing or stale
  /** copies of bytes cut from a segment (`<segment>.lnc.corrupt-<unix ms>`), kept beside the segment */
  corruptCopies: string[];
  /** segment files removed because a crash during a roll left them with no valid entry (their bytes are copied first) */
  segmentsRemoved: string[];
  /** every action taken, one human-readable line each (also logged) */
  actions: string[];
}
