import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftEntry } from '../raft/types.ts';
import { encodeRecordBatch } from '../server/records.ts';
import { verifyExport } from '../storage/export-format.ts';
import { EntryType } from '../storage/types.ts';
import { HARD_STATE_FILE, PartitionRaftLog, QUARANTINE_MAGIC, readQuarantine, termOf } from './partition-raft-log.ts';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function data(index: number, term: number, n: number): RaftEntry {
  const recs = Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`r${index}.${i}`), headers: [], timestamp: 1000 + index }));
  return { index, term, type: EntryType.DATA, data: encodeRecordBatch(recs).bytes };
}

async function open(dataDir: string): Promise<PartitionRaftLog> {
  return PartitionRaftLog.open({ dir: path.join(dataDir, 'topic_1', '0'), dataDir, group: 'topic_1/0', logger: silent });
}

async function hardStateOnDisk(dataDir: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path.join(dataDir, 'topic_1', '0', HARD_STATE_FILE), 'utf8'));
  } catch {
    return null;
  }
}

describe('PartitionRaftLog', () => {
  it('makes log writes durable before the hard state that refers to them, and restarts from both', async () => {
    const d = await mkdtemp(path.join(tmpdir(), 'prl-'));
    dirs.push(d);
    const log = await open(d);
    // observe the order: at the moment the log is fsynced, the new hard state must not be on disk yet
    const seenAtFlush: unknown[] = [];
    const flush = log.pl.flush.bind(log.pl);
    log.pl.flush = async () => {
      seenAtFlush.push(await hardStateOnDisk(d));
      await flush();
    };
    log.append([{ index: 1, term: 0, type: EntryType.CONFIG, data: Buffer.from('{"voters":[1],"learners":[]}') }, data(2, 1, 3), data(3, 1, 2)]);
    expect(log.lastIndex()).toBe(3);
    expect(log.term(2)).toBe(1);
    expect(log.nextOffset).toBe(5);
    await log.persist({ seq: 1, hardState: { term: 1, vote: 1, commit: 3 }, sync: true, snapshot: null });
    expect(seenAtFlush).toEqual([null]);
    expect(await hardStateOnDisk(d)).toEqual({ term: 1, vote: 1, commit: 3 });
    expect(log.pl.durableIndex).toBe(3);

    log.append([data(4, 2, 1)]);
    await log.persist({ seq: 2, hardState: { term: 2, vote: null, commit: 3 }, sync: true, snapshot: null });
    expect(seenAtFlush[1]).toEqual({ term: 1, vote: 1, commit: 3 });
    await log.close();

    const again = await open(d);
    expect(again.hardState).toEqual({ term: 2, vote: null, commit: 3 });
    expect(again.lastIndex()).toBe(4);
    expect([again.term(1), again.term(3), again.term(4), again.term(5)]).toEqual([0, 1, 2, undefined]);
    expect(again.entries(2, 5, 1 << 20).map((e) => e.index)).toEqual([2, 3, 4]);
    expect(again.nextOffset).toBe(6);
    await again.close();
  });

  it('quarantines truncated entries with their terms and offsets (lnc export-quarantine exports them), then continues with the new leader\'s entries', async () => {
    const d = await mkdtemp(path.join(tmpdir(), 'prl-'));
    dirs.push(d);
    const log = await open(d);
    log.append([data(1, 1, 2), data(2, 1, 2), data(3, 1, 2)]);
    await log.persist({ seq: 1, hardState: { term: 1, vote: 2, commit: 1 }, sync: true, snapshot: null });
    log.truncateAfter(1);
    expect(log.lastIndex()).toBe(1);
    expect(log.nextOffset).toBe(2);
    log.append([data(2, 3, 1)]);
    await log.persist({ seq: 2, hardState: { term: 3, vote: null, commit: 2 }, sync: true, snapshot: null });
    const qdir = path.join(d, 'quarantine');
    const files = await readdir(qdir);
    expect(files).toHaveLength(1);
    const buf = await readFile(path.join(qdir, files[0]!));
    expect(buf.subarray(0, 8).equals(QUARANTINE_MAGIC)).toBe(true);
    const hl = buf.readUInt32BE(8);
    const header = JSON.parse(buf.toString('utf8', 12, 12 + hl)) as Record<string, unknown>;
    expect(header).toMatchObject({ group: 'topic_1/0', truncatedAfter: 1, prevTerm: 1, entries: 2, firstIndex: 2, lastIndex: 3, firstOffset: 2, nextOffset: 6, terms: [1] });
    const parsed = readQuarantine(buf, files[0]!);
    expect(parsed.entries.map((e) => [e.index, e.term, e.firstOffset, e.offsetCount])).toEqual([[2, 1, 2, 2], [3, 1, 4, 2]]);
    const flipped = Buffer.from(buf);
    flipped[flipped.length - 10]! ^= 1;
    expect(() => readQuarantine(flipped, 'q')).toThrow(/q: byte \d+: entry crc32c mismatch/);
    await log.close();

    // lnc export-quarantine turns it into a standard export file that verifies
    const out = path.join(d, 'q.lance');
    const lnc = fileURLToPath(new URL('../../../bin/lnc.js', import.meta.url));
    await promisify(execFile)(process.execPath, [lnc, 'export-quarantine', '--file', path.join(qdir, files[0]!), '--output', out]);
    const verified = await verifyExport(createReadStream(out), out);
    expect(verified.trailer).toMatchObject({ partitions: 1, entries: 2, records: 4 });
    expect(verified.header.topic.id).toBe('topic_1/0');

    const again = await open(d);
    expect(again.lastIndex()).toBe(2);
    expect(again.term(2)).toBe(3);
    expect(again.nextOffset).toBe(3);
    await again.close();
  }, 60_000);

  it('term runs answer any index', () => {
    const runs = [{ start: 1, term: 0 }, { start: 2, term: 1 }, { start: 10, term: 4 }];
    expect([0, 1, 2, 9, 10, 12, 13].map((i) => termOf(runs, i, 12))).toEqual([0, 0, 1, 1, 4, 4, undefined]);
  });
});
