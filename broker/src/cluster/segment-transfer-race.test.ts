/**
 * Races between serving a partition (snapshot descriptors, segment chunks, reads) and the operations that change
 * its files (retention, segment install). Deterministic: the racing call is made at the exact point in between.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftEntry } from '../raft/types.ts';
import { encodeRecordBatch } from '../server/records.ts';
import { EntryType } from '../storage/types.ts';
import { PartitionRaftLog } from './partition-raft-log.ts';
import { decodeDescriptor, type ChunkRequest } from './segment-transfer.ts';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
const logs: PartitionRaftLog[] = [];
afterEach(async () => {
  for (const l of logs.splice(0)) await l.close().catch(() => undefined);
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'segrace-'));
  dirs.push(d);
  return d;
}

const CONFIG = Buffer.from('{"voters":[1,2,3],"learners":[]}');
function data(index: number, term: number): RaftEntry {
  const recs = Array.from({ length: 3 }, (_, i) => ({ key: null, value: Buffer.from(`record ${index}.${i} ${'x'.repeat(100)}`), headers: [], timestamp: 1000 + index }));
  return { index, term, type: EntryType.DATA, data: encodeRecordBatch(recs).bytes };
}

let seq = 0;
async function openLog(dataDir: string, id: number, fetch: (src: number, req: ChunkRequest) => Promise<Buffer>): Promise<PartitionRaftLog> {
  const log = await PartitionRaftLog.open({
    dir: path.join(dataDir, 'topic_1', '0'), dataDir, group: 'topic_1/0', logger: silent, logOptions: { segmentBytes: 4096 },
    transfer: { nodeId: id, fetch, leaderHint: () => 1, chunkBytes: 1000, minTailBytes: 4096 },
  });
  logs.push(log);
  return log;
}

async function fill(log: PartitionRaftLog, from: number, to: number): Promise<void> {
  const es: RaftEntry[] = [];
  for (let i = from; i <= to; i++) es.push(i === 1 ? { index: 1, term: 0, type: EntryType.CONFIG, data: CONFIG } : data(i, 1));
  log.append(es);
  await log.persist({ seq: ++seq, hardState: { term: 1, vote: null, commit: to }, sync: true, snapshot: null });
  log.refreshFloor();
}

describe('segment transfer races', () => {
  it('a snapshot taken while retention deletes segments describes the segments as they are (the leader\'s core asks at any time)', async () => {
    const log = await openLog(await tmp(), 1, async () => Buffer.alloc(0));
    await fill(log, 1, 200);
    const pl = log.pl;
    const orig = pl.truncateBeforeOffset.bind(pl);
    let during: ReturnType<PartitionRaftLog['snapshot']> | undefined;
    // the moment between the PartitionLog deleting the segments and the view moving its log start
    pl.truncateBeforeOffset = async (...a) => {
      const r = await orig(...a);
      during = log.snapshot();
      return r;
    };
    const gone = await log.enforceRetention({ retentionBytes: 3 * 4096, retentionMs: 0 }, 200);
    expect(gone.length).toBeGreaterThan(0);
    // before the fix: CORRUPT "snapshot descriptor segments.0: does not start at the log start" thrown into the core
    expect(during).toBeTruthy();
    const d = decodeDescriptor(during!.data, 'during');
    expect(d.logStart.index).toBe(log.pl.firstIndex - 1);
    expect(d.segments[0]?.baseIndex ?? d.index + 1).toBe(log.pl.firstIndex);
    expect(decodeDescriptor(log.snapshot()!.data, 'after')).toEqual(d);
  }, 60_000);
});
