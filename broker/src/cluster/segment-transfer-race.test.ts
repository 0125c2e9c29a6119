/**
 * Races between serving a partition (snapshot descriptors, segment chunks, reads) and the operations that change
 * its files (retention, segment install). Deterministic: the racing call is made at the exact point in between.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
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

// ------------------------------------------------------------------------------------------------ fd lifetime

/**
 * Holds every libuv threadpool thread in a blocking read of a FIFO, so fs requests issued meanwhile are queued,
 * not run: an fd can then be closed (and its number reused) between a read's issue and its execution — the
 * window in which a concurrent close produced EBADF (or a read of another file). `release()` lets them run.
 */
async function blockThreadpool(dir: string): Promise<{ release: () => Promise<void> }> {
  const n = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
  const fifo = path.join(dir, 'block.fifo');
  execFileSync('mkfifo', [fifo]);
  // O_RDWR: opening does not wait for a writer; each read then blocks its thread until bytes arrive
  const fd = fs.openSync(fifo, 'r+');
  const reads = Array.from({ length: n }, () => new Promise<void>((res) => fs.read(fd, Buffer.alloc(1), 0, 1, null, () => res())));
  return {
    release: async () => {
      fs.writeSync(fd, Buffer.alloc(n, 1));
      await Promise.all(reads);
      fs.closeSync(fd);
    },
  };
}

describe('fd lifetime', () => {
  it('a log closed while a read is in flight (the install closes the old log) keeps that read\'s fd until it is done: no EBADF, never another file\'s bytes', async () => {
    const dir = await tmp();
    const log = await openLog(dir, 1, async () => Buffer.alloc(0));
    await fill(log, 1, 200);
    const pl = log.pl;
    await pl.flush(); // nothing left to fsync: close() then needs no threadpool work
    const others: number[] = [];
    const block = await blockThreadpool(dir);
    type Outcome = { ok?: Awaited<ReturnType<typeof pl.read>>; err?: unknown };
    let read: Promise<Outcome>;
    let long: Promise<Outcome>;
    try {
      // issued now, executed only after release(): the reads are in flight across the close. `read` stays in the
      // first segment; `long` would continue into segments whose fds close() did close.
      read = pl.read(0, 1024).then((ok) => ({ ok }), (err: unknown) => ({ err }));
      long = pl.read(0, 1 << 20).then((ok) => ({ ok }), (err: unknown) => ({ err }));
      await pl.close();
      // files opened now take the lowest free descriptor numbers — the read's, if close() released it
      for (let i = 0; i < 32; i++) {
        const f = path.join(dir, `other-${i}.bin`);
        fs.writeFileSync(f, Buffer.alloc(64 << 10, 0x5a));
        others.push(fs.openSync(f, 'r'));
      }
    } finally {
      await block.release();
    }
    const r = await read;
    for (const fd of others) fs.closeSync(fd);
    expect(r.err).toBeUndefined();
    expect(r.ok!.length).toBeGreaterThan(0);
    for (const e of r.ok!) {
      expect(e.payload.subarray(8).equals(Buffer.from(data(e.index, 1).data).subarray(8))).toBe(e.index > 1);
    }
    // the long read ends with a clean, retriable "closed" error (IO → KAFKA_STORAGE_ERROR), not CORRUPT or EBADF
    const l = await long!;
    expect(l.err).toMatchObject({ code: 'IO', message: expect.stringMatching(/closed during the read/) });
  }, 60_000);
});
