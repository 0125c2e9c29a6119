/**
 * The LANCE recovery runbook (shared/seeds/lance-recovery-runbook.md, sections 2–4 and 7), command by command, as
 * printed there, against a data dir the real storage engine wrote. Each command is a real `node bin/lnc.js`
 * process. Path mapping (documented in docs/operations.md): `/data/lance` → a temp data dir, `/backup` → a temp
 * backup dir, `<segment>` → `<partition>/<20-digit base offset>` (segments live in a partition dir).
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopic, partitionDir, PartitionLog, SegmentScanner, type StoredEntry } from '../../broker/src/storage/index.ts';
import { dataEntry, noopEntry } from '../../broker/src/storage/testing.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let tmp: string;
let DATA: string;
let BACKUP: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function lncArgv(argv: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/lnc.js'), ...argv], { cwd: ROOT, env: { ...process.env, LANCE_LOG_LEVEL: 'silent' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a runbook line exactly as printed, after the path mapping above. */
function runbook(line: string, vars: Record<string, string> = {}): Promise<Run> {
  let s = line.replaceAll('/data/lance', DATA).replaceAll('/backup', BACKUP);
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`<${k}>`, v);
  expect(s, 'unmapped placeholder').not.toMatch(/<[a-z_]+>/);
  const argv = s.split(/\s+/).filter(Boolean).map((a) => a.replace(/^"(.*)"$/, '$1'));
  expect(argv[0]).toBe('lnc');
  return lncArgv(argv.slice(1));
}

/** A non-lnc runbook line (mv, cp …) with the same mapping, run by bash. */
function runbookSh(line: string, vars: Record<string, string> = {}): Promise<Run> {
  let s = line.replaceAll('/data/lance', DATA).replaceAll('/backup', BACKUP);
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`<${k}>`, v);
  return sh(s);
}

function sh(cmd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', cmd], { cwd: ROOT, env: { ...process.env, PATH: `${path.join(tmp, 'bin')}:${process.env.PATH}` } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function readAll(dir: string): Promise<StoredEntry[]> {
  const log = await PartitionLog.open(dir);
  try {
    const out: StoredEntry[] = [];
    let next = log.firstIndex || 1;
    while (next <= log.lastIndex) {
      const batch = await log.readByIndex(next, 1000, 64 << 20);
      if (batch.length === 0) break;
      out.push(...batch);
      next = batch[batch.length - 1]!.index + 1;
    }
    return out;
  } finally {
    await log.close();
  }
}

async function entryPositions(file: string): Promise<{ position: number; size: number; index: number; firstOffset: number }[]> {
  const s = await SegmentScanner.open(file);
  const out: { position: number; size: number; index: number; firstOffset: number }[] = [];
  try {
    let m;
    while ((m = await s.next())) out.push({ position: m.position, size: m.size, index: m.index, firstOffset: m.firstOffset });
  } finally {
    await s.close();
  }
  return out;
}

async function segmentsOf(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => /^\d{20}\.lnc$/.test(n)).sort();
}

/** per test: several `node bin/lnc.js` processes on a shared 2-core box (a wait bound, not a speed assertion) */
const SLOW = 240_000;

const LOG_OPTS = { segmentBytes: 48 * 1024, indexIntervalBytes: 1024 };

/** Writes `n` entries through the real PartitionLog (several segments). */
async function fillLog(dir: string, n: number, seed: number): Promise<void> {
  const log = await PartitionLog.open(dir, LOG_OPTS);
  for (let i = 0; i < n; i++) {
    log.append([i % 50 === 7 ? noopEntry(1 + (i >> 7)) : dataEntry(1 + (i >> 7), 1 + ((i + seed) % 5), 1_700_000_000_000 + i * 10, 150 + ((i * 37 + seed) % 300), seed * 100_000 + i)]);
  }
  await log.close();
}

let topicId: string;
let before: StoredEntry[][] = [];
let walBefore: StoredEntry[] = [];

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'lance-runbook-'));
  DATA = path.join(tmp, 'data/lance');
  BACKUP = path.join(tmp, 'backup');
  await fsp.mkdir(BACKUP, { recursive: true });
  // `lnc` on PATH for the runbook's shell loops (what `npm install -g` would provide)
  await fsp.mkdir(path.join(tmp, 'bin'));
  await fsp.writeFile(path.join(tmp, 'bin/lnc'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin/lnc.js')}" "$@"\n`, { mode: 0o755 });
  const t = await createTopic(DATA, 'orders', 2, { segmentBytes: LOG_OPTS.segmentBytes });
  topicId = String(t.id);
  for (let p = 0; p < 2; p++) await fillLog(partitionDir(DATA, t.id, p), 500, p + 1);
  await fillLog(path.join(DATA, 'wal'), 400, 9); // stand-in for the metadata log: a directory of .lnc segments
  before = [await readAll(partitionDir(DATA, t.id, 0)), await readAll(partitionDir(DATA, t.id, 1))];
  walBefore = await readAll(path.join(DATA, 'wal'));
});

afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe('runbook §3 data verification on a healthy data dir', () => {
  it('verify-data (plain, --fail-fast, --json) and scan report the data the engine wrote', async () => {
    const p0 = partitionDir(DATA, Number(topicId), 0);
    const segs = await segmentsOf(p0);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const seg = `0/${segs[1]!.replace(/\.lnc$/, '')}`;
    const [v, ff, scan, json] = await Promise.all([
      runbook('lnc verify-data --path /data/lance --topic <topic_id>', { topic_id: topicId }),
      runbook('lnc verify-data --path /data/lance --topic <topic_id> --fail-fast', { topic_id: topicId }),
      runbook('lnc scan --path /data/lance/topic_<id>/<segment>.lnc', { id: topicId, segment: seg }),
      lncArgv(['verify-data', '--path', DATA, '--topic', topicId, '--json']),
    ]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toContain('result: OK');
    expect(ff.code, ff.stdout + ff.stderr).toBe(0);
    expect(scan.code, scan.stdout + scan.stderr).toBe(0);
    // the scanned segment's record count = offsets of the entries the engine put there
    const entries = await entryPositions(path.join(p0, segs[1]!));
    const segEntries = before[0]!.filter((e) => e.index >= entries[0]!.index && e.index <= entries.at(-1)!.index);
    const records = segEntries.reduce((a, e) => a + e.offsetCount, 0);
    expect(scan.stdout).toMatch(new RegExp(`records:\\s+${records}\\n`));
    expect(scan.stdout).toMatch(new RegExp(`entries:\\s+${segEntries.length}\\n`));
    expect(scan.stdout).toContain(`offset range: ${segEntries[0]!.firstOffset} .. ${segEntries.at(-1)!.firstOffset + segEntries.at(-1)!.offsetCount - 1}`);
    expect(scan.stdout).toMatch(/crc status:\s+ok/);
    const j = JSON.parse(json.stdout) as { ok: boolean; records: number; segments: number };
    expect(j.ok, json.stdout).toBe(true);
    expect(j.records).toBe([...before[0]!, ...before[1]!].reduce((a, e) => a + e.offsetCount, 0));
  }, SLOW);
});

describe('runbook §2.1 / §4.1: corrupt tail after a crash', () => {
  it('verify-data and scan find the torn entry; repair cuts it and keeps every entry before it', async () => {
    const p0 = partitionDir(DATA, Number(topicId), 0);
    const segs = await segmentsOf(p0);
    const lastSeg = path.join(p0, segs.at(-1)!);
    const entries = await entryPositions(lastSeg);
    expect(entries.length).toBeGreaterThan(3);
    const torn = entries.at(-2)!; // a crash tore this entry and left the one after it unwritten
    const fullSize = (await fsp.stat(lastSeg)).size;
    await fsp.truncate(lastSeg, torn.position + Math.floor(torn.size / 2));
    const seg = `0/${segs.at(-1)!.replace(/\.lnc$/, '')}`;

    const [v, ff, scan] = await Promise.all([
      runbook('lnc verify-data --path /data/lance --topic <topic_id>', { topic_id: topicId }),
      runbook('lnc verify-data --path /data/lance --topic <topic_id> --fail-fast', { topic_id: topicId }),
      runbook('lnc scan --path /data/lance/topic_<id>/<segment>.lnc', { id: topicId, segment: seg }),
    ]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`corrupt at byte ${torn.position}`);
    expect(ff.code).toBe(1);
    expect(ff.stdout).toContain('--fail-fast');
    expect(scan.code).toBe(1);
    expect(scan.stdout).toContain(`CORRUPT at byte ${torn.position}`);
    expect(scan.stdout).toMatch(new RegExp(`last valid:\\s+offset ${torn.firstOffset - 1} `));
    expect(fullSize).toBeGreaterThan(torn.position);

    const rep = await runbook('lnc repair --path /data/lance/topic_<id>/<segment>.lnc', { id: topicId, segment: seg });
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout).toContain(`from byte ${torn.position}`);
    expect((await fsp.stat(lastSeg)).size).toBe(torn.position);
    const copies = (await fsp.readdir(p0)).filter((n) => n.startsWith(`${segs.at(-1)!}.corrupt-`));
    expect(copies).toHaveLength(1);
    expect((await fsp.stat(path.join(p0, copies[0]!))).size).toBe(Math.floor(torn.size / 2));

    const [again, rebuild, verify] = await Promise.all([
      runbook('lnc repair --path /data/lance/topic_<id>/<segment>.lnc', { id: topicId, segment: seg }),
      runbook('lnc rebuild-index --path /data/lance/topic_<id>', { id: topicId }),
      runbook('lnc verify-data --path /data/lance --topic <topic_id>', { topic_id: topicId }),
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to repair');
    expect(rebuild.code, rebuild.stdout).toBe(0);
    expect(verify.code, verify.stdout).toBe(0);

    // every entry before the damage is still there, byte for byte, and the engine opens the log
    const after = await readAll(p0);
    expect(after).toEqual(before[0]!.filter((e) => e.index < torn.index));
    before[0] = after;
  }, SLOW);

  it('a bit flip inside a sealed segment: found at its byte; the topic-level report names it', async () => {
    const p1 = partitionDir(DATA, Number(topicId), 1);
    const segs = await segmentsOf(p1);
    const file = path.join(p1, segs[0]!);
    const entries = await entryPositions(file);
    const victim = entries[Math.floor(entries.length / 2)]!;
    const original = await fsp.readFile(file);
    const bad = Buffer.from(original);
    bad[victim.position + 60]! ^= 0x10; // inside the payload
    await fsp.writeFile(file, bad);
    const seg = `1/${segs[0]!.replace(/\.lnc$/, '')}`;
    const [v, scan] = await Promise.all([
      runbook('lnc verify-data --path /data/lance --topic <topic_id> --fail-fast', { topic_id: topicId }),
      runbook('lnc scan --path /data/lance/topic_<id>/<segment>.lnc', { id: topicId, segment: seg }),
    ]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`corrupt at byte ${victim.position}: crc mismatch`);
    expect(scan.code).toBe(1);
    expect(scan.stdout).toContain(`CORRUPT at byte ${victim.position}`);
    expect(scan.stdout).toMatch(/after damage:\s+\d+ entries still verify/);
    await fsp.writeFile(file, original); // put it back for the next scenarios
  }, SLOW);
});

describe('runbook §2.2: lost index file', () => {
  it('verify-data reports it, rebuild-index recreates it byte-identical, inspect-index checks it', async () => {
    const p1 = partitionDir(DATA, Number(topicId), 1);
    const segs = await segmentsOf(p1);
    const idx = path.join(p1, segs[0]!.replace(/\.lnc$/, '.idx'));
    const tix = path.join(p1, segs[0]!.replace(/\.lnc$/, '.tix'));
    const origIdx = await fsp.readFile(idx);
    const origTix = await fsp.readFile(tix);
    await fsp.rm(idx);
    const v = await runbook('lnc verify-data --path /data/lance --topic <topic_id>', { topic_id: topicId });
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`${idx}: offset index missing`);

    const r = await runbook('lnc rebuild-index --path /data/lance/topic_<id>', { id: topicId });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await fsp.readFile(idx)).toEqual(origIdx);
    expect(await fsp.readFile(tix)).toEqual(origTix);

    // damage one index entry: inspect-index on the file says it does not match the segment
    const badIdx = Buffer.from(origIdx);
    badIdx[24 + 16 + 5]! ^= 0x01; // entry 1, position field
    await fsp.writeFile(idx, badIdx);
    const [ins, insBad, insFile] = await Promise.all([
      runbook('lnc inspect-index --path /data/lance/topic_<id>/index.idx', { id: topicId }),
      lncArgv(['inspect-index', '--path', idx]),
      lncArgv(['inspect-index', '--path', path.join(p1, segs[1]!.replace(/\.lnc$/, '.tix')), '--json']),
    ]);
    expect(ins.code).toBe(1);
    expect(ins.stderr).toContain('is not a file in this layout');
    expect(ins.stdout).toContain(`${idx}: offset index`);
    expect(insBad.code).toBe(1);
    expect(insBad.stdout).toContain('entry 1 at byte 40 differs from the segment');
    expect(insFile.code).toBe(0);
    expect((JSON.parse(insFile.stdout) as { indexes: { consistency: { status: string } }[] }).indexes[0]!.consistency.status).toBe('ok');
    const fix = await runbook('lnc rebuild-index --path /data/lance/topic_<id>', { id: topicId });
    expect(fix.code).toBe(0);
    expect(await fsp.readFile(idx)).toEqual(origIdx);
  }, SLOW);
});

describe('runbook §2.3: WAL corruption', () => {
  it('repair cuts the log at the damage; --skip-corrupt keeps the later entries and reports the gap; the engine opens both', async () => {
    const wal = path.join(DATA, 'wal');
    const segs = await segmentsOf(wal);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const file = path.join(wal, segs[0]!);
    const entries = await entryPositions(file);
    const victim = entries[10]!;
    const buf = await fsp.readFile(file);
    buf[victim.position + 70]! ^= 0xff;
    await fsp.writeFile(file, buf);

    const cp = await sh(`cp -r ${DATA} ${DATA}.backup`); // runbook step 1, as printed
    expect(cp.code).toBe(0);
    const rep = await runbook('lnc repair --path /data/lance/wal');
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout).toContain(`from byte ${victim.position}`);
    expect(rep.stdout).toContain('later segments moved aside');
    const cut = await readAll(wal);
    expect(cut).toEqual(walBefore.filter((e) => e.index < victim.index));

    // step 3 on the backed-up (still corrupt) state
    await fsp.rm(DATA, { recursive: true });
    await sh(`cp -r ${DATA}.backup ${DATA}`);
    const skip = await runbook('lnc repair --path /data/lance/wal --skip-corrupt');
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.stdout).toContain('skipping creates a GAP');
    expect(skip.stdout).toMatch(new RegExp(`${victim.position} \\.\\. ${victim.position + victim.size} \\(${victim.size}\\)`));
    expect(skip.stdout).toContain(`${victim.index} .. ${victim.index}`);
    const kept = await readAll(wal); // the storage engine opens the repaired log
    expect(kept.map((e) => e.index)).toEqual(walBefore.map((e) => e.index));
    const byIndex = new Map(kept.map((e) => [e.index, e]));
    for (const e of walBefore) {
      if (e.index === victim.index) {
        const ph = byIndex.get(e.index)!;
        // placeholder: same offsets, no records
        expect(ph.firstOffset).toBe(e.firstOffset);
        expect(ph.offsetCount).toBe(e.offsetCount);
        expect(ph.payload.readInt32BE(57)).toBe(0);
      } else expect(byIndex.get(e.index)).toEqual(e);
    }
    await fsp.rm(`${DATA}.backup`, { recursive: true });
  }, SLOW);
});

describe('runbook §4.2: remove a corrupt segment', () => {
  it('after the segment is quarantined, rebuild-index names the hole; repair --skip-corrupt fills it and the engine opens the log', async () => {
    const p1 = partitionDir(DATA, Number(topicId), 1);
    const segs = await segmentsOf(p1);
    const gone = await entryPositions(path.join(p1, segs[1]!));
    const p1Before = await readAll(p1);
    await fsp.mkdir(path.join(DATA, 'quarantine'), { recursive: true }); // the broker creates it; this data dir was made without one
    const seg = `1/${segs[1]!.replace(/\.lnc$/, '')}`;
    const mv = await runbookSh('mv /data/lance/topic_<id>/<segment>.lnc /data/lance/quarantine/', { id: topicId, segment: seg });
    expect(mv.code, mv.stderr).toBe(0);
    const rb = await runbook('lnc rebuild-index --path /data/lance/topic_<id>', { id: topicId });
    expect(rb.code).toBe(1);
    expect(rb.stdout).toContain('removed orphan index');
    expect(rb.stdout).toMatch(/PROBLEM: offset gap: .* starts at \d+: the broker refuses a log with a hole/);
    const skip = await lncArgv(['repair', '--path', p1, '--skip-corrupt']);
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.stdout).toContain(`${gone[0]!.index} .. ${gone.at(-1)!.index}`);
    const v = await runbook('lnc verify-data --path /data/lance --topic <topic_id>', { topic_id: topicId });
    expect(v.code, v.stdout).toBe(0);
    const after = await readAll(p1);
    expect(after.map((e) => e.index)).toEqual(p1Before.map((e) => e.index));
    const lost = new Set(gone.map((g) => g.index));
    expect(after.filter((e) => !lost.has(e.index))).toEqual(p1Before.filter((e) => !lost.has(e.index)));
    expect(after.filter((e) => lost.has(e.index)).every((e) => e.maxTimestamp === -1)).toBe(true);
  }, SLOW);
});

describe('runbook §7: backup and restore', () => {
  it('export → import → verify-data round-trips payloads and offsets; a truncated file is refused and leaves nothing', async () => {
    const exp = await runbook('lnc export-topic --path /data/lance --topic <id> --output /backup/topic_<id>.lance', { id: topicId });
    expect(exp.code, exp.stderr).toBe(0);
    // §7.1's loop, minus the online `lnc list-topics` (the topic ids come from the data dir here)
    const loop = await sh(
      `for topic in $(ls ${DATA} | sed -n 's/^topic_//p'); do lnc export-topic --path ${DATA} --topic $topic --output ${BACKUP}/topic_$topic.lance || exit 1; done`,
    );
    expect(loop.code, loop.stderr).toBe(0);
    await fsp.copyFile(path.join(BACKUP, `topic_${topicId}.lance`), path.join(BACKUP, 'topic.lance'));

    const imp = await runbook('lnc import-topic --path /data/lance --name "restored_topic" --input /backup/topic.lance');
    expect(imp.code, imp.stderr).toBe(0);
    const newId = /topic id:\s+(\d+)/.exec(imp.stdout)?.[1];
    expect(newId).toBeDefined();
    expect(newId).not.toBe(topicId);
    const ver = await runbook('lnc verify-data --path /data/lance --topic <new_id>', { new_id: newId! });
    expect(ver.code, ver.stdout).toBe(0);
    expect(ver.stdout).toContain('(restored_topic)');
    for (let p = 0; p < 2; p++) {
      const restored = await readAll(partitionDir(DATA, Number(newId), p));
      expect(restored).toEqual(await readAll(partitionDir(DATA, Number(topicId), p)));
    }

    // streaming through a pipe: --output - | --input -
    const pipe = await sh(`lnc export-topic --path ${DATA} --topic ${topicId} --output - | lnc import-topic --path ${DATA} --name piped --input - --json`);
    expect(pipe.code, pipe.stderr).toBe(0);
    const pipedId = (JSON.parse(pipe.stdout) as { topic: { id: number } }).topic.id;
    expect(await readAll(partitionDir(DATA, pipedId, 1))).toEqual(await readAll(partitionDir(DATA, Number(topicId), 1)));

    // a truncated backup: refused with the byte position, and no topic (and no staging dir) is left behind
    const full = await fsp.readFile(path.join(BACKUP, 'topic.lance'));
    await fsp.writeFile(path.join(BACKUP, 'cut.lance'), full.subarray(0, Math.floor(full.length * 0.6)));
    const flipped = Buffer.from(full);
    flipped[Math.floor(full.length / 3)]! ^= 0x04;
    await fsp.writeFile(path.join(BACKUP, 'flip.lance'), flipped);
    const dirBefore = (await fsp.readdir(DATA)).sort();
    const [cut, flip] = await Promise.all([
      lncArgv(['import-topic', '--path', DATA, '--name', 'again', '--input', path.join(BACKUP, 'cut.lance')]),
      lncArgv(['import-topic', '--path', DATA, '--name', 'again2', '--input', path.join(BACKUP, 'flip.lance')]),
    ]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/^lnc: CORRUPT: .*cut\.lance: truncated: .* at byte \d+\n$/);
    expect(flip.code).toBe(1);
    expect(flip.stderr).toMatch(/^lnc: CORRUPT: .*flip\.lance: .* at byte \d+\n$/);
    expect((await fsp.readdir(DATA)).sort()).toEqual(dirBefore);
  }, SLOW);
});

describe('progress bar', () => {
  it('is drawn on stderr when it is a terminal (script(1) gives the process a pty), never in a pipe', async () => {
    const cmd = `${process.execPath} ${path.join(ROOT, 'bin/lnc.js')} verify-data --path ${DATA} --topic ${topicId}`;
    const tty = await sh(`LNC_PROGRESS_DELAY_MS=0 script -qec '${cmd}' /dev/null`);
    expect(tty.code, tty.stdout + tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/verify \[[#.]+\]\s+\d+% /);
    expect(tty.stdout).toContain('result: OK');
    const pipe = await sh(`LNC_PROGRESS_DELAY_MS=0 ${cmd} 2>&1 | cat`);
    expect(pipe.stdout).not.toContain('verify [');
  }, SLOW);
});

describe('bad CLI input', () => {
  it('missing --path, a path that does not exist, a wrong file type, an unknown flag: one stderr line, exit 2', async () => {
    const p0 = partitionDir(DATA, Number(topicId), 0);
    const seg = (await segmentsOf(p0))[0]!;
    const text = path.join(tmp, 'notes.txt');
    await fsp.writeFile(text, 'hello\n');
    const cases: [string[], RegExp][] = [
      [['scan'], /^lnc: USAGE: missing required flag --path \(see lnc scan --help\)$/],
      [['scan', '--path', path.join(DATA, 'nope.lnc')], /^lnc: NOT_FOUND: --path .*nope\.lnc: no such file or directory$/],
      // the runbook's layout (no partition dir): the error names the real files
      [['scan', '--path', path.join(DATA, `topic_${topicId}`, seg)], new RegExp(`^lnc: NOT_FOUND: --path .*: no such file or directory \\(segments live in partition dirs: .*/0/${seg}`)],
      [['scan', '--path', path.join(p0, seg.replace('.lnc', '.idx'))], /^lnc: USAGE: --path .*\.idx: is an index file .*expected a segment file/],
      [['scan', '--path', text], /^lnc: USAGE: --path .*notes\.txt: is a file that is not a segment or index/],
      [['verify-data', '--path', DATA], /^lnc: USAGE: missing required flag --topic/],
      [['verify-data', '--path', DATA, '--topic', '99'], /^lnc: NOT_FOUND: --topic 99: no directory/],
      [['repair', '--path', path.join(p0, seg), '--force'], /^lnc: USAGE: unknown flag --force \(see lnc repair --help\)$/],
      [['import-topic', '--path', DATA, '--name', 'x', '--input', path.join(tmp, 'missing.lance')], /^lnc: NOT_FOUND: --input/],
    ];
    const runs = await Promise.all(cases.map(([argv]) => lncArgv(argv)));
    for (const [i, r] of runs.entries()) {
      const [argv, re] = cases[i]!;
      expect(r.code, argv.join(' ')).toBe(2);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines, argv.join(' ')).toHaveLength(1);
      expect(lines[0], argv.join(' ')).toMatch(re);
      expect(r.stdout, argv.join(' ')).toBe('');
    }
  }, SLOW);
});
