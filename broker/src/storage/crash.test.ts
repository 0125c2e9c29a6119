import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PartitionLog } from './partition-log.ts';
import { crashEntry } from './testing.ts';
import { listSegmentFiles, scanSegmentFile, verifyPartitionDir } from './verify.ts';
import { getBaseOffset } from './record-batch.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const writer = path.join(here, 'fixtures', 'crash-writer.ts');
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Deterministic PRNG so a failing round can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x * 1664525 + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

interface Round {
  maxAcked: number;
  ready: string;
}

/** Runs the writer until it has acknowledged at least `acks` appends, then SIGKILLs it. */
function runAndKill(dir: string, term: number, acks: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, String(term)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let maxAcked = 0;
    let seen = 0;
    let ready = '';
    let stderr = '';
    let killed = false;
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (line.startsWith('ready ')) ready = line;
      const m = /^ack (\d+) (\d+)$/.exec(line);
      if (!m || killed) return;
      maxAcked = Math.max(maxAcked, Number(m[2]));
      if (++seen >= acks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ maxAcked, ready });
      else reject(new Error(`writer exited with ${code}/${signal} before being killed: ${stderr}`));
    });
  });
}

describe('crash safety (SIGKILL a real writer process)', () => {
  it('every acknowledged entry survives SIGKILL plus loss of unsynced bytes; torn tails are cut', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-crash-'));
    dirs.push(dir);
    const rnd = prng(20261122);
    let acked = 0;
    let tornTailsCut = 0;
    for (let round = 1; round <= 5; round++) {
      const r = await runAndKill(dir, round, 30 + Math.floor(rnd() * 200));
      expect(r.ready).toMatch(/^ready /);
      expect(r.maxAcked).toBeGreaterThan(acked);
      acked = r.maxAcked;

      // SIGKILL keeps the page cache; a power loss would not. Simulate losing unsynced bytes: cut the active
      // segment at a random byte after the end of the last acknowledged entry.
      const segs = await listSegmentFiles(dir);
      const active = segs[segs.length - 1]!;
      let ackedEnd = 40;
      await scanSegmentFile(active, (m) => {
        if (m.index <= acked) ackedEnd = m.position + m.size;
      });
      const size = fs.statSync(active).size;
      let chopped = false;
      if (size > ackedEnd) {
        const cut = ackedEnd + Math.floor(rnd() * (size - ackedEnd));
        fs.truncateSync(active, cut);
        chopped = true;
        // and a torn half-entry of garbage on top, sometimes
        if (rnd() < 0.5) fs.appendFileSync(active, Buffer.from([0, 0, 1, 0, 0xde, 0xad]));
      }

      const log = await PartitionLog.open(dir, { segmentBytes: 64 * 1024, indexIntervalBytes: 1024 });
      try {
        expect(log.lastIndex).toBeGreaterThanOrEqual(acked);
        const all = await log.readByIndex(1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        expect(all.length).toBe(log.lastIndex);
        let off = 0;
        for (const e of all) {
          const want = crashEntry(e.index, e.term);
          expect(e.payload.subarray(8).equals(want.payload.subarray(8))).toBe(true);
          expect(getBaseOffset(e.payload)).toBe(off);
          expect(e.firstOffset).toBe(off);
          off += e.offsetCount;
        }
        expect(log.nextOffset).toBe(off);
        // nothing torn is left: the whole partition verifies clean, index files included
        const v = await verifyPartitionDir(dir, { indexIntervalBytes: 1024 });
        expect(v.problems).toEqual([]);
        if (log.recovery.truncatedBytes > 0) {
          tornTailsCut++;
          expect(chopped).toBe(true);
          expect(log.recovery.corruptCopies.length).toBeGreaterThan(0);
        }
      } finally {
        await log.close();
      }
    }
    // the random cuts land inside entries (practically always): recovery must have cut torn tails
    expect(tornTailsCut).toBeGreaterThan(0);
  }, 240_000);
});
