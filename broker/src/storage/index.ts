/**
 * Public surface of the segment store. Import from here (`broker/src/storage/index.ts`), not from the files.
 *
 *  - PartitionLog            one partition's log: open (with recovery), append / appendReplicated (group commit),
 *                            read / readByIndex / termAt / offsetForTimestamp, truncateAfterIndex,
 *                            truncateBeforeOffset / enforceRetention, segments(), close()
 *  - scanSegmentFile         full check of one .lnc file → summary + first bad byte (lnc scan)
 *  - verifyPartitionDir      every segment + .idx/.tix of a partition dir (lnc verify-data)
 *  - repairSegmentFile       cut a segment after its last good entry, keeping `<segment>.lnc.corrupt` (lnc repair)
 *  - rebuildPartitionIndexes rewrite .idx/.tix of a partition dir from the data (lnc rebuild-index)
 *  - decodeIndexFile         decode a .idx/.tix file (lnc inspect-index)
 *  - catalog: createTopic / listTopics / getTopicById / getTopicByName / updateTopicConfig / deleteTopic,
 *             topicDir / partitionDir (the only code that knows where topic metadata lives)
 *  - segment-format / record-batch: pure encoders/decoders (entry framing, RecordBatch header fields)
 */
export * from './types.ts';
export { PartitionLog, DEFAULT_LOG_OPTIONS, planRetention, shouldRoll, segmentFileName, type TimestampLookup, type RetentionCandidate } from './partition-log.ts';
export {
  scanSegmentFile,
  verifyPartitionDir,
  repairSegmentFile,
  rebuildPartitionIndexes,
  listSegmentFiles,
  indexPathsOf,
  entryTypeName,
  type SegmentScanSummary,
  type PartitionVerification,
  type SegmentVerification,
  type IndexCheck,
  type RepairResult,
} from './verify.ts';
export {
  decodeIndexFile,
  decodeIndexHeader,
  rebuildIndexFromSegment,
  SegmentIndex,
  INDEX_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  type DecodedIndexFile,
  type IndexHeader,
  type OffsetIndexEntry,
  type TimeIndexEntry,
} from './index-file.ts';
export {
  SegmentScanner,
  encodeEntry,
  encodeEntryInto,
  encodeSegmentHeader,
  decodeSegmentHeader,
  checkEntry,
  entrySize,
  SEGMENT_HEADER_BYTES,
  ENTRY_HEADER_BYTES,
  MAX_ENTRY_PAYLOAD_BYTES,
  type EntryMeta,
  type ScanError,
  type SegmentHeader,
} from './segment-format.ts';
export * from './record-batch.ts';
export * from './catalog.ts';
export { crc32c } from './crc.ts';
