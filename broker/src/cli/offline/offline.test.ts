import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { isLanceError } from '../../common/errors.ts';
import { crc32c } from '../../storage/crc.ts';
import { createTopic, partitionDir } from '../../storage/catalog.ts';
import { PartitionLog } from '../../storage/partition-log.ts';
import { checkRecordBatch, readRecordBatchHeader } from '../../storage/record-batch.ts';
import { SegmentScanner } from '../../storage/segment-format.ts';
import { dataEntry, noopEntry } from '../../storage/testing.ts';
import { EntryType, type StoredEntry } from '../../storage/types.ts';
import { commands } from '../commands.ts';
import { createProgress } from '../progress.ts';
import { runCli } from '../run.ts';
import { checkIndexes, checkSegment } from './segment-check.ts';
import { emptyRecordBatch, placeholderEntries, skipCorruptLog } from './skip-corrupt.ts';
import { walkSegment } from './walk.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'lance-offline-'));
  dirs.push(dir);
});

const OPTS = { segmentBytes: 24 * 1024, indexIntervalBytes: 1024 };

async function build(n: number): Promise<StoredEntry[]> {
  const log = await PartitionLog.open(dir, OPTS);
  for (let i = 0; i < n; i++) log.append([i % 40 === 3 ? noopEntry(1 + (i >> 6)) : dataEntry(1 + (i >> 6), 1 + (i % 3), 1_700_000_000_000 + i, 180 + (i % 90), i)]);
  await log.close();
  return readAll();
}

async function readAll(from = dir): Promise<StoredEntry[]> {
  const log = await PartitionLog.open(from, OPTS);
  try {
    const out: StoredEntry[] = [];
    let next = 1;
    while (next <= log.lastIndex) {
      const b = await log.readByIndex(next, 1000, 64 << 20);
      if (b.length === 0) break;
      out.push(...b);
      next = b[b.length - 1]!.index + 1;
    }
    return out;
  } finally {
    await log.close();
  }
}

async function segments(): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => /^\d{20}\.lnc$/.test(n)).sort().map((n) => path.join(dir, n));
}

async function positions(file: string): Promise<{ position: number; size: number; index: number }[]> {
  const s = await SegmentScanner.open(file);
  const out: { position: number; size: number; index: number }[] = [];
  let m;
  while ((m = await s.next())) out.push({ position: m.position, size: m.size, index: m.index });
  await s.close();
  return out;
}

async function flip(file: string, at: number): Promise<void> {
  const b = await fsp.readFile(file);
  b[at]! ^= 0x5a;
  await fsp.writeFile(file, b);
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough().on('data', (b: Buffer) => out.push(b));
  const stderr = new PassThrough().on('data', (b: Buffer) => err.push(b));
  const code = await runCli(argv, commands, { stdout, stderr, stdin: new PassThrough() });
  return { code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
}

/**
 * Every original entry is back unchanged, except `lost` indexes, which are placeholders: same Raft indexes, the
 * first placeholder of a hole holds all its offsets (an empty batch), the rest are NOOPs; later offsets unchanged.
 */
function expectPlaceholders(after: StoredEntry[], before: StoredEntry[], lost: Set<number>): void {
  expect(after.map((e) => e.index)).toEqual(before.map((e) => e.index));
  let holeStart: StoredEntry | null = null;
  let holeOffsets = 0;
  let placed = 0;
  for (const [i, e] of before.entries()) {
    const a = after[i]!;
    if (!lost.has(e.index)) {
      if (holeStart) expect(placed, `offsets of the hole before index ${e.index}`).toBe(holeOffsets);
      holeStart = null;
      expect(a).toEqual(e);
      continue;
    }
    if (!holeStart) {
      holeStart = e;
      holeOffsets = 0;
      placed = 0;
      expect(a.firstOffset).toBe(e.firstOffset);
    }
    holeOffsets += e.offsetCount;
    placed += a.offsetCount;
    expect(a.maxTimestamp).toBe(-1);
    if (a.type === EntryType.DATA) expect(readRecordBatchHeader(a.payload).recordCount).toBe(0);
    else expect(a.type).toBe(EntryType.NOOP);
  }
  const last = (xs: StoredEntry[]): number => xs.at(-1)!.firstOffset + xs.at(-1)!.offsetCount;
  expect(last(after)).toBe(last(before));
}

describe('placeholders', () => {
  it('an empty RecordBatch spans the lost offsets and has a valid batch CRC', () => {
    const b = emptyRecordBatch(100, 5);
    checkRecordBatch(b);
    const h = readRecordBatchHeader(b);
    expect(h).toMatchObject({ baseOffset: 100, lastOffsetDelta: 4, recordCount: 0, magic: 2, batchLength: 49 });
    expect(h.crc).toBe(crc32c(b.subarray(21)));
  });

  it('fills indexes with NOOPs and offsets with one DATA entry; refuses offsets without indexes', () => {
    const p = placeholderEntries(10, 13, 100, 105, 3);
    expect(p.map((e) => [e.type, e.index, e.firstOffset, e.offsetCount, e.term])).toEqual([
      [EntryType.DATA, 10, 100, 5, 3],
      [EntryType.NOOP, 11, 105, 0, 3],
      [EntryType.NOOP, 12, 105, 0, 3],
    ]);
    expect(placeholderEntries(4, 6, 7, 7, 1).every((e) => e.type === EntryType.NOOP)).toBe(true);
    try {
      placeholderEntries(5, 5, 10, 12, 1);
      expect.unreachable();
    } catch (e) {
      expect(isLanceError(e, 'CORRUPT')).toBe(true);
    }
  });
});

describe('walkSegment', () => {
  it('resyncs after two damaged entries and reports exact byte ranges and lost indexes', async () => {
    await build(120);
    const f = (await segments())[0]!;
    const pos = await positions(f);
    const a = pos[5]!;
    const b = pos[20]!;
    await flip(f, a.position + 50);
    await flip(f, b.position + 9); // the type byte: no longer a plausible frame either
    const w = await walkSegment(f);
    expect(w.entries).toBe(pos.length - 2);
    expect(w.lost.map((l) => [l.start, l.end, l.lostIndexes])).toEqual([
      [a.position, a.position + a.size, { from: a.index, to: a.index }],
      [b.position, b.position + b.size, { from: b.index, to: b.index }],
    ]);
  });
});

describe('repair --skip-corrupt on a log dir', () => {
  it('a torn tail inside a sealed segment is filled up to the next segment; the engine opens the log', async () => {
    const before = await build(300);
    const segs = await segments();
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const pos = await positions(segs[0]!);
    const torn = pos.at(-2)!;
    await fsp.truncate(segs[0]!, torn.position + 20); // the last two entries of the first segment are gone
    const r = await skipCorruptLog(dir);
    expect(r.lost).toHaveLength(1);
    expect(r.lost[0]).toMatchObject({ start: torn.position, lostIndexes: { from: torn.index, to: torn.index + 1 } });
    expect(r.placeholders.entries).toBe(2);
    expectPlaceholders(await readAll(), before, new Set([torn.index, torn.index + 1]));
    // idempotent: a second run finds nothing
    expect((await skipCorruptLog(dir)).lost).toEqual([]);
  });

  it('repair of a middle segment warns about the gap (exit 1); --skip-corrupt then closes it', async () => {
    const before = await build(300);
    const segs = await segments();
    const pos = await positions(segs[1]!);
    const victim = pos[Math.floor(pos.length / 2)]!;
    await flip(segs[1]!, victim.position + 55);
    const rep = await cli(['repair', '--path', segs[1]!]);
    expect(rep.code).toBe(1);
    expect(rep.out).toContain('the log now has a gap at offsets');
    await expect(PartitionLog.open(dir, OPTS)).rejects.toThrow(/does not continue/);

    const skip = await cli(['repair', '--path', dir, '--skip-corrupt', '--json']);
    expect(skip.code, skip.err).toBe(0);
    const lostIdx = new Set(before.filter((e) => e.index >= victim.index && e.index <= pos.at(-1)!.index).map((e) => e.index));
    expectPlaceholders(await readAll(), before, lostIdx);
    // the next segment was rewritten to start where the cut one ends (new base offset, new name); all verify
    const after = await segments();
    expect(after).not.toContain(segs[2]!);
    for (const s of after) {
      const c = await checkSegment(s);
      expect(c.error).toBeNull();
      expect((await checkIndexes(s, c)).map((x) => x.status)).toEqual(['ok', 'ok']);
    }
  });

  it('a damaged header of the first segment is rewritten from its first valid entry', async () => {
    const before = await build(150);
    const segs = await segments();
    await flip(segs[0]!, 10);
    const plain = await cli(['repair', '--path', segs[0]!]);
    expect(plain.code).toBe(1);
    expect(plain.out).toContain('NOT repaired');
    await fsp.cp(dir, `${dir}.copy`, { recursive: true });
    dirs.push(`${dir}.copy`);
    const r = await skipCorruptLog(dir);
    expect(r.lost[0]!.reason).toContain('segment header');
    expect(await readAll()).toEqual(before);
    // without --skip-corrupt the log is cut at that segment: it and every later one go aside, listed in the report
    const cut = await cli(['repair', '--path', `${dir}.copy`]);
    expect(cut.code, cut.err).toBe(0);
    expect(cut.out).toContain('segments from the damaged one on moved aside');
    expect(cut.out).toContain(path.basename(segs[0]!));
    expect(await readAll(`${dir}.copy`)).toEqual([]);
  });
});

describe('progress bar', () => {
  it('draws on a TTY stream only, and erases itself', () => {
    const chunks: string[] = [];
    const tty = Object.assign(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString()), cb()) }), { isTTY: true, columns: 100 });
    const p = createProgress(tty, 'scan', 1000, { enabled: true, showAfterMs: 0 });
    p.advance(1000);
    p.done();
    expect(chunks.join('')).toContain('scan [');
    expect(chunks.at(-1)).toBe('\r\x1b[K');
    const pipe: string[] = [];
    const notTty = new Writable({ write: (c: Buffer, _e, cb) => (pipe.push(c.toString()), cb()) });
    const q = createProgress(notTty, 'scan', 1000, { enabled: true, showAfterMs: 0 });
    q.advance(1000);
    q.done();
    expect(pipe).toEqual([]);
  });
});

describe('topic-level commands (in-process)', () => {
  async function topic(): Promise<{ data: string; p0: string }> {
    const data = path.join(dir, 'data');
    const t = await createTopic(data, 'events', 1, { segmentBytes: OPTS.segmentBytes });
    const p0 = partitionDir(data, t.id, 0);
    const log = await PartitionLog.open(p0, OPTS);
    for (let i = 0; i < 250; i++) log.append([dataEntry(1, 2, 1_700_000_000_000 + i, 200, i)]);
    await log.close();
    return { data, p0 };
  }

  it('verify-data: a stale index is a warning on the newest segment and a problem on a sealed one', async () => {
    const { data, p0 } = await topic();
    const segs = (await fsp.readdir(p0)).filter((n) => n.endsWith('.idx')).sort();
    expect(segs.length).toBeGreaterThanOrEqual(2);
    const newest = path.join(p0, segs.at(-1)!);
    const sealed = path.join(p0, segs[0]!);
    const cutLast = async (f: string): Promise<void> => fsp.truncate(f, (await fsp.stat(f)).size - 16);
    await cutLast(newest);
    const w = await cli(['verify-data', '--path', data, '--topic', '1']);
    expect(w.code, w.out).toBe(0);
    expect(w.out).toMatch(/WARNING: .*offset index stale: 1 newest sample\(s\) missing/);
    await cutLast(sealed);
    const p = await cli(['verify-data', '--path', data, '--topic', 'events', '--json']);
    expect(p.code).toBe(1);
    const j = JSON.parse(p.out) as { findings: { severity: string; file: string }[] };
    expect(j.findings.filter((f) => f.severity === 'problem').map((f) => f.file)).toEqual([sealed]);
  });

  it('export-topic leaves out a torn tail of the newest segment with a warning (exit 1); the import has the rest', async () => {
    const { data, p0 } = await topic();
    const before = await readAll(p0);
    const last = (await fsp.readdir(p0)).filter((n) => n.endsWith('.lnc')).sort().at(-1)!;
    const pos = await positions(path.join(p0, last));
    await fsp.truncate(path.join(p0, last), pos.at(-1)!.position + 10);
    const out = path.join(dir, 'events.lance');
    const e = await cli(['export-topic', '--path', data, '--topic', '1', '--output', out]);
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/^lnc: warning: partition 0: .* has a damaged tail from byte \d+/);
    // a staging dir left by an import that was SIGKILLed (its pid no longer exists) is cleaned up
    await fsp.mkdir(path.join(data, '.import-999999999-1/topic_2'), { recursive: true });
    const i = await cli(['import-topic', '--path', data, '--name', 'events2', '--input', out, '--json']);
    expect((await fsp.readdir(data)).filter((n) => n.startsWith('.import-'))).toEqual([]);
    expect(i.code, i.err).toBe(0);
    const j = JSON.parse(i.out) as { topic: { id: number }; entries: number };
    expect(j.topic.id).toBe(2);
    expect(j.entries).toBe(before.length - 1);
    expect(await readAll(partitionDir(data, 2, 0))).toEqual(before.slice(0, -1));
  });
});

describe('a running broker (lance.lock)', () => {
  it('writing commands refuse a data dir a live broker holds; reading ones warn; a dead holder is ignored', async () => {
    const data = path.join(dir, 'data');
    const t = await createTopic(data, 'locked', 1, {});
    const p0 = partitionDir(data, t.id, 0);
    const log = await PartitionLog.open(p0, OPTS);
    log.append([dataEntry(1, 1, 1, 100, 1)]);
    await log.close();
    const seg = path.join(p0, '00000000000000000000.lnc');
    // a stand-in broker: a live process whose command line names lance (what the lock check looks for)
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'lance-broker-stand-in'], { stdio: 'ignore' });
    try {
      await fsp.writeFile(path.join(data, 'lance.lock'), JSON.stringify({ pid: child.pid, host: os.hostname(), startedAt: 'now' }));
      const rep = await cli(['repair', '--path', seg]);
      expect(rep.code).toBe(2);
      expect(rep.err).toMatch(new RegExp(`^lnc: CONFLICT: --path .*: the data dir is in use by a running broker \\(pid ${child.pid} `));
      const rb = await cli(['rebuild-index', '--path', path.dirname(p0)]);
      expect(rb.code).toBe(2);
      const scan = await cli(['scan', '--path', seg]);
      expect(scan.code).toBe(0);
      expect(scan.err).toContain('lnc: warning: a broker is running on this data dir');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // the same lock, its process gone: not a reason to refuse
    const again = await cli(['repair', '--path', seg]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('nothing to repair');
  });
});
