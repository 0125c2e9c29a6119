import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PartitionLog } from './partition-log.ts';
import { crashEntry } from './testing.ts';
import { verifyPartitionDir } from './verify.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('write failure (EFBIG from a real file-size limit, like a full disk)', () => {
  it('rejects durable, refuses later appends, and a reopen keeps every durable entry', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-efbig-'));
    dirs.push(dir);
    // `ulimit -f 256`: files may not grow past 256 KiB; SIGXFSZ ignored so write() returns EFBIG instead.
    const script = `trap '' XFSZ; ulimit -f 256; exec "${process.execPath}" --import tsx "${path.join(here, 'fixtures', 'efbig-writer.ts')}" "${dir}"`;
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { durableIndex: number; firstError: { code: string; message: string } | null; laterAppendError: string | null };
    expect(out.durableIndex).toBeGreaterThan(10);
    expect(out.firstError?.code).toBe('IO');
    expect(out.firstError?.message).toMatch(/00000000000000000000\.(lnc|idx|tix)/);
    expect(out.laterAppendError).toMatch(/failed earlier and must be reopened/);

    const log = await PartitionLog.open(dir, { indexIntervalBytes: 1024 });
    try {
      expect(log.lastIndex).toBeGreaterThanOrEqual(out.durableIndex);
      const all = await log.readByIndex(1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      for (const e of all) expect(e.payload.subarray(8).equals(crashEntry(e.index, 1).payload.subarray(8))).toBe(true);
      expect((await verifyPartitionDir(dir, { indexIntervalBytes: 1024 })).problems).toEqual([]);
    } finally {
      await log.close();
    }
  }, 180_000);
});
