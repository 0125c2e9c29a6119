import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from './hist.ts';
import { OpenLoopSchedule, runOpenLoop } from './openloop.ts';
import { evaluateGoals, mdTable, parseRestoreOutput, renderMarkdown, type BenchResults } from './report.ts';

describe('LatencyHistogram', () => {
  it('percentiles of 1..1000 ms', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.recordMs(i);
    const s = h.summary();
    expect(s.count).toBe(1000);
    // HDR with 3 significant digits: within 0.1 % of the exact value
    expect(s.p50).toBeCloseTo(500, -0.3);
    expect(Math.abs(s.p99 - 990) / 990).toBeLessThan(0.002);
    expect(Math.abs(s.p999 - 999) / 999).toBeLessThan(0.002);
    expect(Math.abs(s.max - 1000) / 1000).toBeLessThan(0.002);
  });
  it('sub-millisecond values keep microsecond resolution', () => {
    const h = new LatencyHistogram();
    h.recordMs(0.25);
    expect(h.percentileMs(50)).toBeCloseTo(0.25, 3);
  });
  it('nearestRank on small samples', () => {
    expect(LatencyHistogram.nearestRank([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(LatencyHistogram.nearestRank([5, 1, 3, 2, 4], 99)).toBe(5);
    expect(LatencyHistogram.nearestRank(Array.from({ length: 20 }, (_, i) => i + 1), 50)).toBe(10);
    expect(Number.isNaN(LatencyHistogram.nearestRank([], 50))).toBe(true);
  });
});

describe('OpenLoopSchedule', () => {
  it('operations are due at t0 + i/rate regardless of completions', () => {
    const s = new OpenLoopSchedule(1000, 100, 50);
    expect(s.total).toBe(50);
    expect(s.intended(0)).toBe(100);
    expect(s.intended(10)).toBe(110);
    expect(s.dueBy(99)).toBe(0);
    expect(s.dueBy(100)).toBe(1);
    expect(s.dueBy(109.5)).toBe(10);
    expect(s.dueBy(1e9)).toBe(50);
    expect(s.waitFor(20, 115)).toBe(5);
  });
  it('rejects a non-positive rate', () => {
    expect(() => new OpenLoopSchedule(0, 0, 10)).toThrow(/ratePerSec/);
  });
  it('a stalled system shows its stall in the latency of every operation due during it (virtual clock)', async () => {
    let clock = 0;
    const now = (): number => clock;
    // the system answers instantly except one 100 ms stall at the start; the generator's clock is virtual, so the
    // schedule fires 10 ops/ms worth of time by advancing the clock in send()
    let first = true;
    const r = await runOpenLoop({
      ratePerSec: 100, // one op per 10 ms
      durationMs: 1000,
      now,
      sleep: async (ms) => {
        clock += Math.max(ms, 0.01);
      },
      send: async () => {
        if (first) {
          first = false;
          clock += 100; // the first op blocks the (single-threaded) generator for 100 ms
        }
        clock += 0.001;
      },
    });
    expect(r.intendedOps).toBe(100);
    expect(r.completedOps).toBe(100);
    // ops 1..9 were due during the stall: their latency counts from their intended time, so ≥ 10 ms for several
    expect(r.latency.max).toBeGreaterThanOrEqual(90);
    // 10 of 100 ops (op 0 and the 9 due during the stall) are ≥ 10 ms late: p99 sees them. Measured from the fire
    // time instead, only op 0 would be slow and p99 would be ~0.
    expect(r.latency.p99).toBeGreaterThanOrEqual(10);
    expect(r.sendLag.max).toBeGreaterThanOrEqual(80);
  });
});

describe('report', () => {
  it('mdTable escapes pipes and checks row width', () => {
    expect(mdTable(['a', 'b'], [['1', 'x|y']])).toBe('| a | b |\n|---|---|\n| 1 | x\\|y |');
    expect(() => mdTable(['a'], [['1', '2']])).toThrow(/2 cells/);
  });
  const base: BenchResults = {
    meta: { startedAt: 's', finishedAt: 'f', quick: true, node: 'v20', cpus: 2, loadAvgStart: [1, 1, 1], loadAvgEnd: [2, 2, 2], seconds: 60, notes: [] },
    limits: { ddFdatasyncMBps: 900, fdatasync4kOpsPerSec: 4000, fdatasync4kP50Ms: 0.2, loopbackTcpMBps: 2000 },
    systems: [{ key: 'lance-3-acksall', label: 'Lance 3 nodes RF=3 acks=all', durability: 'fsync on a majority' }, { key: 'jetstream-r3', label: 'JetStream R3', durability: 'page cache on a majority' }],
    produce: [
      { system: 'lance-3-acksall', recordBytes: 1024, recordsPerUnit: 64, peakRecordsPerSec: 150_000, peakMBps: 153.6, at50: { offeredRecordsPerSec: 75_000, achievedRecordsPerSec: 75_000, errors: 0, latency: { count: 10, p50: 1, p99: 4, p999: 6, max: 7, mean: 1 }, sendLag: { count: 10, p50: 0, p99: 0, p999: 0, max: 0, mean: 0 } } },
      { system: 'jetstream-r3', recordBytes: 1024, recordsPerUnit: 64, peakRecordsPerSec: 50_000, peakMBps: 51.2 },
    ],
    restore: { measured: false, reason: 'no bench:restore script' },
    e2e: [],
    failover: { samplesMs: [200, 300, 600], p50Ms: 300, p99Ms: 600, maxMs: 600 },
  };
  it('goals: met / not met / not measured', () => {
    const g = evaluateGoals(base);
    expect(g[0]).toMatchObject({ met: true, value: '3.00×' });
    expect(g[1]!.met).toBe(true); // 153.6 / 300 = 51 %
    expect(g[2]).toMatchObject({ met: null, value: 'not measured' }); // lance-1-acks1 absent
    expect(g[3]).toMatchObject({ met: true, value: '4.00 ms' });
    expect(g[4]).toMatchObject({ met: false });
  });
  it('renders every section', () => {
    const md = renderMarkdown(base);
    expect(md).toContain('| 1024 | Lance 3 nodes RF=3 acks=all | fsync on a majority | 64 × ? | 150,000 | 154 | 1.00 / 4.00 / 6.00 | n/a |  |');
    expect(md).toContain('| 1024 | 3.00× | 0.51× |');
    expect(md).toContain('not measured (no bench:restore script)');
    expect(md).toContain('**not met**');
  });
});

describe('RESP reply scanner', async () => {
  const { scanReplies, respCommand } = await import('./redis.ts');
  it('counts complete replies and stops at a partial one', () => {
    const b = Buffer.from('$15\r\n1700000000000-0\r\n+OK\r\n:5\r\n-ERR boom\r\n$10\r\n12345');
    const r = scanReplies(b);
    expect(r.count).toBe(4);
    expect(r.error).toBe('ERR boom');
    expect(b.subarray(r.bytes).toString()).toBe('$10\r\n12345');
    expect(scanReplies(b, 2).count).toBe(2);
  });
  it('encodes a command', () => {
    expect(respCommand(['XADD', 'k', '*', 'v', Buffer.from('ab')]).toString()).toBe('*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n$1\r\nv\r\n$2\r\nab\r\n');
  });
});

describe('parseRestoreOutput', () => {
  it('reads bench:restore text', () => {
    const text = [
      'restore bench: 256 MiB in 9 objects from s3rver (8 partitions, 64 MiB segments, concurrency 8)',
      '  plain parallel GetObject → files: 2.10 s (122 MiB/s)   [runs: 2.10, 2.30]',
      '  lnc restore (restoreDataDir):     2.50 s (102 MiB/s)   [runs: 2.50, 2.60]',
      '  ratio restore / plain GetObject throughput: 0.84 (goal ≥ 0.7) OK',
    ].join('\n');
    expect(parseRestoreOutput(text)).toEqual({ mib: 256, restoreMiBps: 102, plainGetMiBps: 122, ratio: 0.84 });
    expect(parseRestoreOutput('setup done')).toBeUndefined();
  });
});
