/**
 * Crash safety of the operations that remove entries from a partition log (segment install, truncation): a fault
 * hook throws at each durable step (a "crash" there: nothing after it runs), the log is reopened from its files,
 * and every removed entry must be in the log or in quarantine/ — never in neither — and, once the leader's
 * operation is redone, exactly once in quarantine/.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RaftEntry } from '../raft/types.ts';
import { EntryType } from '../storage/types.ts';
import { CONFIG, dataEntry, useTempLogs } from './partition-log.testkit.ts';
import { PartitionRaftLog, pendingQuarantineAction, QUARANTINE_PENDING_PREFIX, readQuarantine, type RemovalStep } from './partition-raft-log.ts';
import type { ChunkRequest } from './segment-transfer.ts';

const silent = pino({ level: 'silent' });
const { tmp, track } = useTempLogs('qcrash-');
const data = dataEntry;

class Crash extends Error {}

let seq = 0;
async function openLog(dataDir: string, id: number, fetch: (src: number, req: ChunkRequest) => Promise<Buffer>, crashAt?: RemovalStep): Promise<PartitionRaftLog> {
  let armed = crashAt !== undefined;
  const log = await PartitionRaftLog.open({
    dir: path.join(dataDir, 'topic_1', '0'), dataDir, group: 'topic_1/0', logger: silent, logOptions: { segmentBytes: 4096 },
    transfer: { nodeId: id, fetch, leaderHint: () => 1, chunkBytes: 1000, minTailBytes: 4096 },
    faultHook: (step) => {
      if (armed && step === crashAt) {
        armed = false;
        throw new Crash(`crash at ${step}`);
      }
    },
  });
  track(log);
  return log;
}

async function fill(log: PartitionRaftLog, from: number, to: number, term: number, commit: number): Promise<void> {
  const es: RaftEntry[] = [];
  for (let i = from; i <= to; i++) es.push(i === 1 ? { index: 1, term: 0, type: EntryType.CONFIG, data: CONFIG } : data(i, term));
  log.append(es);
  await log.persist({ seq: ++seq, hardState: { term, vote: null, commit }, sync: true, snapshot: null });
  log.refreshFloor();
}

/** the divergent entries 41..70 (term 2): where are they now? */
async function whereAre(dataDir: string, log: PartitionRaftLog): Promise<{ inLog: number[]; inQuarantine: number[][]; pending: string[] }> {
  const inLog: number[] = [];
  for (let i = 41; i <= 70; i++) if (i <= log.pl.lastIndex && i >= log.pl.firstIndex && (await log.pl.termAt(i)) === 2) inLog.push(i);
  const qdir = path.join(dataDir, 'quarantine');
  const inQuarantine: number[][] = [];
  for (const f of (await readdir(qdir).catch(() => [] as string[])).sort()) {
    const q = readQuarantine(await readFile(path.join(qdir, f)), f);
    for (const e of q.entries) {
      // the stored batch is the produced one with its base offset rewritten (bytes 0..7)
      expect(e.payload.subarray(8).equals(Buffer.from(data(e.index, 2).data).subarray(8))).toBe(true);
      expect(e.term).toBe(2);
    }
    inQuarantine.push(q.entries.map((e) => e.index));
  }
  const pending = (await readdir(path.join(dataDir, 'topic_1', '0'))).filter((n) => n.startsWith(QUARANTINE_PENDING_PREFIX));
  return { inLog, inQuarantine, pending };
}

const DIVERGENT = Array.from({ length: 30 }, (_, i) => 41 + i);

describe('quarantine is crash-safe', () => {
  it('decides pending quarantine files by whether the log still holds their last entry', () => {
    expect(pendingQuarantineAction({ lastIndex: 70, lastTerm: 2 }, { firstIndex: 1, lastIndex: 70 }, 2)).toBe('drop');
    expect(pendingQuarantineAction({ lastIndex: 70, lastTerm: 2 }, { firstIndex: 1, lastIndex: 90 }, 1)).toBe('finalize');
    expect(pendingQuarantineAction({ lastIndex: 70, lastTerm: 2 }, { firstIndex: 1, lastIndex: 40 }, undefined)).toBe('finalize');
    expect(pendingQuarantineAction({ lastIndex: 70, lastTerm: 2 }, { firstIndex: 100, lastIndex: 120 }, undefined)).toBe('finalize');
  });

  for (const step of ['install:quarantine-staged', 'install:committed', 'install:swapped', 'install:quarantine-final'] as const) {
    it(`segment install crashed at ${step}: the replaced divergent entries are in the log or in quarantine, and end up in quarantine exactly once`, async () => {
      const leaderDir = await tmp();
      const followerDir = await tmp();
      let leader: PartitionRaftLog | null = null;
      const fetch = async (_src: number, req: ChunkRequest): Promise<Buffer> => leader!.readSegmentChunk(req);
      leader = await openLog(leaderDir, 1, fetch);
      await fill(leader, 1, 200, 1, 200);
      const snap = leader.snapshot()!;
      expect(snap.meta.index).toBeGreaterThan(70);
      // follower: 1..40 as the leader's (committed), 41..70 written in term 2 and never committed
      let follower = await openLog(followerDir, 2, fetch, step);
      await fill(follower, 1, 40, 1, 40);
      follower.append(DIVERGENT.map((i) => data(i, 2)));
      await follower.persist({ seq: ++seq, hardState: { term: 2, vote: null, commit: 40 }, sync: true, snapshot: null });
      follower.installSnapshot(snap.meta, snap.data);
      await expect(follower.persist({ seq: ++seq, hardState: { term: 2, vote: null, commit: snap.meta.index }, sync: true, snapshot: snap })).rejects.toBeInstanceOf(Crash);
      // the process "dies" here; a restart opens the files
      await follower.close().catch(() => undefined);
      follower = await openLog(followerDir, 2, fetch);
      const after = await whereAre(followerDir, follower);
      expect(after.pending).toEqual([]);
      const quarantined = after.inQuarantine.flat();
      // nothing lost: every divergent entry is in the log or in quarantine
      expect([...new Set([...after.inLog, ...quarantined])].sort((a, b) => a - b)).toEqual(DIVERGENT);
      if (step === 'install:quarantine-staged') {
        // before the commit point: the old log, no quarantine file yet
        expect(after.inLog).toEqual(DIVERGENT);
        expect(after.inQuarantine).toEqual([]);
        // the leader re-sends its snapshot
        follower.installSnapshot(snap.meta, snap.data);
        await follower.persist({ seq: ++seq, hardState: { term: 2, vote: null, commit: snap.meta.index }, sync: true, snapshot: snap });
      } else {
        // after the commit point: open() completed the install and the quarantine
        expect(after.inLog).toEqual([]);
      }
      const end = await whereAre(followerDir, follower);
      expect(end.inLog).toEqual([]);
      expect(end.pending).toEqual([]);
      expect(end.inQuarantine).toEqual([DIVERGENT]);
      expect(follower.pl.lastIndex).toBe(snap.meta.index);
      expect(await follower.pl.termAt(50)).toBe(1);
    }, 60_000);
  }

  for (const step of ['truncate:quarantine-staged', 'truncate:truncated'] as const) {
    it(`truncation crashed at ${step}: the truncated entries are in the log or in quarantine, and end up in quarantine exactly once`, async () => {
      const dataDir = await tmp();
      const none = async (): Promise<Buffer> => Buffer.alloc(0);
      let log = await openLog(dataDir, 2, none, step);
      await fill(log, 1, 40, 1, 40);
      log.append(DIVERGENT.map((i) => data(i, 2)));
      await log.persist({ seq: ++seq, hardState: { term: 2, vote: null, commit: 40 }, sync: true, snapshot: null });
      log.truncateAfter(40);
      await expect(log.persist({ seq: ++seq, hardState: { term: 3, vote: null, commit: 40 }, sync: true, snapshot: null })).rejects.toBeInstanceOf(Crash);
      await log.close().catch(() => undefined);
      // a quarantine file whose temp never got renamed (crash inside the staging write) is dropped at open
      await writeFile(path.join(dataDir, 'topic_1', '0', `${QUARANTINE_PENDING_PREFIX}x.q.tmp`), 'partial');
      log = await openLog(dataDir, 2, none);
      const after = await whereAre(dataDir, log);
      expect(after.pending).toEqual([]);
      expect([...new Set([...after.inLog, ...after.inQuarantine.flat()])].sort((a, b) => a - b)).toEqual(DIVERGENT);
      if (step === 'truncate:quarantine-staged') {
        expect(after.inLog).toEqual(DIVERGENT);
        expect(after.inQuarantine).toEqual([]);
        // the new leader's append makes the follower truncate again
        log.truncateAfter(40);
        await log.persist({ seq: ++seq, hardState: { term: 3, vote: null, commit: 40 }, sync: true, snapshot: null });
      } else {
        expect(after.inLog).toEqual([]);
      }
      const end = await whereAre(dataDir, log);
      expect(end.inLog).toEqual([]);
      expect(end.inQuarantine).toEqual([DIVERGENT]);
      expect(log.pl.lastIndex).toBe(40);
      // the log goes on with the new leader's entries
      log.append([data(41, 3)]);
      await log.persist({ seq: ++seq, hardState: { term: 3, vote: null, commit: 41 }, sync: true, snapshot: null });
      expect(await log.pl.termAt(41)).toBe(3);
    }, 60_000);
  }

  it('an install that fails after staging its quarantine because a newer snapshot superseded it leaves no stale staged file (it would be quarantined twice)', async () => {
    const leaderDir = await tmp();
    const followerDir = await tmp();
    let leader: PartitionRaftLog | null = null;
    const fetch = async (_src: number, req: ChunkRequest): Promise<Buffer> => leader!.readSegmentChunk(req);
    leader = await openLog(leaderDir, 1, fetch);
    await fill(leader, 1, 150, 1, 150);
    const snap1 = leader.snapshot()!;
    await fill(leader, 151, 260, 1, 260);
    const snap2 = leader.snapshot()!;
    expect(snap2.meta.index).toBeGreaterThan(snap1.meta.index);
    let follower: PartitionRaftLog | null = null;
    let superseded = false;
    const log = await PartitionRaftLog.open({
      dir: path.join(followerDir, 'topic_1', '0'), dataDir: followerDir, group: 'topic_1/0', logger: silent, logOptions: { segmentBytes: 4096 },
      transfer: { nodeId: 2, fetch, leaderHint: () => 1, chunkBytes: 1000, minTailBytes: 4096 },
      faultHook: (step) => {
        if (step === 'install:quarantine-staged' && !superseded) {
          superseded = true;
          // the leader's newer snapshot arrives, and the running install then fails before its commit point
          follower!.installSnapshot(snap2.meta, snap2.data);
          throw new Error('storage hiccup');
        }
      },
    });
    track(log);
    follower = log;
    await fill(follower, 1, 40, 1, 40);
    follower.append(DIVERGENT.map((i) => data(i, 2)));
    await follower.persist({ seq: ++seq, hardState: { term: 2, vote: null, commit: 40 }, sync: true, snapshot: null });
    follower.installSnapshot(snap1.meta, snap1.data);
    await follower.persist({ seq: ++seq, hardState: { term: 2, vote: null, commit: snap2.meta.index }, sync: true, snapshot: snap2 });
    expect(superseded).toBe(true);
    expect(follower.pl.lastIndex).toBe(snap2.meta.index);
    const end = await whereAre(followerDir, follower);
    expect(end.pending).toEqual([]);
    expect(end.inQuarantine).toEqual([DIVERGENT]);
    // and a restart finds nothing left to quarantine
    await follower.close();
    const again = await openLog(followerDir, 2, fetch);
    expect((await whereAre(followerDir, again)).inQuarantine).toEqual([DIVERGENT]);
  }, 60_000);
});
