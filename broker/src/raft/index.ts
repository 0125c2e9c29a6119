/** Public surface of the Raft core (see README.md). */
export { RaftNode, type RaftOptions } from './node.ts';
export { MemoryRaftLog } from './memory-log.ts';
export { encodeConfig, decodeConfig, normalizeConfig, quorum, sameConfig } from './config.ts';
export * from './types.ts';
