/**
 * Races between serving a partition (snapshot descriptors, segment chunks, reads) and the operations that change
 * its files (retention, segment install). Deterministic: the racing call is made at the exact point in between.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RaftEntry } from '../raft/types.ts';
import { EntryType } from '../storage/types.ts';
import { CONFIG, dataEntry, useTempLogs } from './partition-log.testkit.ts';
import { PartitionRaftLog, type TransferOptions } from './partition-raft-log.ts';
import { decodeDescriptor, type ChunkRequest } from './segment-transfer.ts';
import { KafkaError, toKafkaError } from '../kafka/errors.ts';

const silent = pino({ level: 'silent' });
const { tmp, track } = useTempLogs('segrace-');
const data = dataEntry;

let seq = 0;
async function openLog(dataDir: string, id: number, fetch: (src: number, req: ChunkRequest) => Promise<Buffer>, transfer: Partial<TransferOptions> = {}): Promise<PartitionRaftLog> {
  const log = await PartitionRaftLog.open({
    dir: path.join(dataDir, 'topic_1', '0'), dataDir, group: 'topic_1/0', logger: silent, logOptions: { segmentBytes: 4096 },
    transfer: Object.assign(transfer, { nodeId: id, fetch, leaderHint: () => 1, chunkBytes: 1000, minTailBytes: transfer.minTailBytes ?? 4096 }),
  });
  track(log);
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
    expect(during?.data, 'snapshot() taken inside the retention window').toBeInstanceOf(Uint8Array);
    const d = decodeDescriptor(during!.data, 'during');
    expect(d.logStart.index).toBe(log.pl.firstIndex - 1);
    expect(d.segments[0]?.baseIndex ?? d.index + 1).toBe(log.pl.firstIndex);
    expect(decodeDescriptor(log.snapshot()!.data, 'after')).toEqual(d);
  }, 60_000);

  it('the floor recomputed in that window never falls below the new log start (the core would get no snapshot at all)', async () => {
    const transfer: Partial<TransferOptions> = {};
    const log = await openLog(await tmp(), 1, async () => Buffer.alloc(0), transfer);
    await fill(log, 1, 200);
    const pl = log.pl;
    const orig = pl.truncateBeforeOffset.bind(pl);
    let during: ReturnType<PartitionRaftLog['snapshot']> | undefined;
    pl.truncateBeforeOffset = async (...a) => {
      const r = await orig(...a);
      // a persist in that window recomputes the floor; with no sealed segment qualifying it falls to the log start
      transfer.minTailBytes = 1 << 30;
      log.refreshFloor();
      during = log.snapshot();
      return r;
    };
    await log.enforceRetention({ retentionBytes: 3 * 4096, retentionMs: 0 }, 200);
    expect(during?.data, 'snapshot() taken inside the retention window').toBeInstanceOf(Uint8Array);
    const d = decodeDescriptor(during!.data, 'during');
    // the new log start itself: an empty descriptor (a follower starts empty there)
    expect(d.index).toBe(log.pl.firstIndex - 1);
    expect(d.segments).toEqual([]);
    expect(log.snapshotIndex()).toBe(log.pl.firstIndex - 1);
  }, 60_000);
});

describe('Kafka reads on a follower that installs segments', () => {
  it('answer a retriable NOT_LEADER_OR_FOLLOWER while the install runs (also for a read it overtook), and the installed log afterwards', async () => {
    const leaderDir = await tmp();
    const followerDir = await tmp();
    let leader: PartitionRaftLog | null = null;
    let gate: Promise<void> | null = null;
    let openGate!: () => void;
    let asked = 0;
    const fetch = async (_src: number, req: ChunkRequest): Promise<Buffer> => {
      asked++;
      if (gate) await gate;
      return leader!.readSegmentChunk(req);
    };
    leader = await openLog(leaderDir, 1, fetch);
    await fill(leader, 1, 200);
    const snap = leader.snapshot()!;
    const follower = await openLog(followerDir, 2, fetch);
    await fill(follower, 1, 30);
    // a fetch that got its log before the install (its read comes after the install began)
    const before = follower.clientLog('t-0');
    gate = new Promise<void>((r) => { openGate = r; });
    follower.installSnapshot(snap.meta, snap.data);
    const installing = follower.persist({ seq: ++seq, hardState: { term: 1, vote: null, commit: snap.meta.index }, sync: true, snapshot: snap });
    await waitFor(() => asked > 0);
    const refused = [
      await Promise.resolve().then(() => follower.clientLog('t-0')).then(() => null, (e: unknown) => e),
      await before.read(0, 1 << 20).then(() => null, (e: unknown) => e),
    ];
    for (const e of refused) {
      expect(e).toMatchObject({ code: 'NOT_LEADER', message: expect.stringMatching(/installing segments/) });
      // retriable for every Kafka client (not UNKNOWN_SERVER_ERROR, not OFFSET_OUT_OF_RANGE that resets a consumer)
      expect(toKafkaError(e).code).toBe(KafkaError.NOT_LEADER_OR_FOLLOWER);
    }
    openGate();
    await installing;
    const after = follower.clientLog('t-0');
    const got = await after.read(after.logStartOffset, 1 << 20);
    expect(got.length).toBeGreaterThan(0);
    expect(got.map((e) => [e.index, e.term, e.firstOffset])).toEqual((await leader.pl.read(0, 1 << 20)).filter((e) => e.index <= snap.meta.index).map((e) => [e.index, e.term, e.firstOffset]));
    expect(got[got.length - 1]!.index).toBe(snap.meta.index);
  }, 60_000);
});

async function waitFor(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5)); // polling a condition, not a race fix
  }
}

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
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    clearTimeout(safety);
    fs.writeSync(fd, Buffer.alloc(n, 1));
    await Promise.all(reads);
    fs.closeSync(fd);
  };
  // deadlock breaker, not a timing assertion: should the code under test ever wait on the threadpool while it is
  // held, the pool is freed anyway (the test then checks what happened) instead of hanging this worker process
  const safety = setTimeout(() => void release(), 20_000);
  return { release };
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
