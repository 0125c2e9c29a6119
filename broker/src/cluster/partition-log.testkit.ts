/**
 * Fixtures shared by the PartitionRaftLog file-level tests (segment-transfer-crash, segment-transfer-race): temp
 * data dirs and logs closed/removed after each test, the founding CONFIG entry and DATA entries of real batches.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach } from 'vitest';
import type { RaftEntry } from '../raft/types.ts';
import { encodeRecordBatch } from '../server/records.ts';
import { EntryType } from '../storage/types.ts';
import type { PartitionRaftLog } from './partition-raft-log.ts';

export const CONFIG = Buffer.from('{"voters":[1,2,3],"learners":[]}');

/** A DATA entry of 3 records whose values name the index and term (so entries of different terms differ). */
export function dataEntry(index: number, term: number): RaftEntry {
  const recs = Array.from({ length: 3 }, (_, i) => ({ key: null, value: Buffer.from(`record ${index}.${i} term ${term} ${'x'.repeat(100)}`), headers: [], timestamp: 1000 + index }));
  return { index, term, type: EntryType.DATA, data: encodeRecordBatch(recs).bytes };
}

/** Registers an afterEach that closes every tracked log and removes every temp dir made by `tmp()`. */
export function useTempLogs(prefix: string): { tmp: () => Promise<string>; track: (l: PartitionRaftLog) => PartitionRaftLog } {
  const dirs: string[] = [];
  const logs: PartitionRaftLog[] = [];
  afterEach(async () => {
    for (const l of logs.splice(0)) await l.close().catch(() => undefined);
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  return {
    async tmp() {
      const d = await mkdtemp(path.join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    track(l) {
      logs.push(l);
      return l;
    },
  };
}
