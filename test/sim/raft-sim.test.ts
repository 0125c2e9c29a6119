import { describe, expect, it } from 'vitest';
import { defaultSimOptions, runSim, type SimOptions, type SimResult } from './sim.ts';

const SEEDS = 200;

function opts(seed: number, extra: Partial<SimOptions> = {}): SimOptions {
  return { ...defaultSimOptions, seed, nodes: seed % 2 === 0 ? 5 : 3, ...extra };
}

function describeFailure(r: SimResult): string {
  return `seed ${r.seed}: ${r.error}\n  replay: ${r.replay}\n  ${r.traceTail.slice(-15).join('\n  ')}`;
}

describe('Raft deterministic simulation', () => {
  const results: SimResult[] = [];

  it(`${SEEDS} seeds (3 and 5 nodes, 3 groups; crashes losing unsynced writes, wiped disks, partitions, drops, duplicates, reorder, membership changes) keep every invariant and settle after healing`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) results.push(runSim(opts(seed)));
    const failures = results.filter((r) => !r.ok).map(describeFailure);
    expect(failures.join('\n\n')).toBe('');
    // the runs did exercise what they claim to (guards against a simulator that silently does nothing)
    const sum = (k: keyof SimResult['stats']): number => results.reduce((s, r) => s + r.stats[k], 0);
    expect(sum('crashes')).toBeGreaterThan(SEEDS);
    expect(sum('partitions')).toBeGreaterThan(SEEDS);
    expect(sum('acked')).toBeGreaterThan(SEEDS * 100);
    expect(sum('snapshotsInstalled')).toBeGreaterThan(0);
    expect(sum('configChanges')).toBeGreaterThan(SEEDS);
    expect(sum('dropped')).toBeGreaterThan(0);
    expect(sum('duplicated')).toBeGreaterThan(0);
    // wiped nodes came back under their ids and left the vote hold by catching up (rule 1); first starts by rule 2
    expect(sum('wipes')).toBeGreaterThan(SEEDS / 10);
    expect(sum('holdReleasedCaughtUp')).toBeGreaterThan(SEEDS / 10);
    expect(sum('holdReleasedBootstrap')).toBeGreaterThan(SEEDS);
  }, 300_000); // a cap for very loaded machines, not a speed assertion (≈ 20 s here)

  it('failover (leader crash -> first commit by the new leader) stays within the election timeout band in simulated time', () => {
    const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
    const p = (samples: number[], q: number): number => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)]!;
    // silent crash (no connection-loss report): followers time out 150-300 ms after the last heartbeat; then
    // pre-vote, vote and one replication round
    const silent = sorted(results.flatMap((r) => r.failoverMs));
    expect(silent.length).toBeGreaterThanOrEqual(SEEDS / 4);
    expect(p(silent, 0.5)).toBeGreaterThanOrEqual(100);
    expect(p(silent, 0.5)).toBeLessThanOrEqual(350);
    expect(p(silent, 0.99)).toBeLessThanOrEqual(700);
    // the survivors are told the leader's connections closed: they campaign after a rank-staggered 0-25 ms each
    // instead of an election timeout (simulated time, deterministic: not a speed assertion on this machine)
    const notified = sorted(results.flatMap((r) => r.failoverNotifiedMs));
    expect(notified.length).toBeGreaterThanOrEqual(SEEDS / 4);
    expect(p(notified, 0.5)).toBeLessThanOrEqual(100);
    expect(p(notified, 0.5)).toBeLessThan(p(silent, 0.5) / 2);
    // connection-loss reports did happen, also against live leaders (conn-reset faults), without breaking anything
    expect(results.reduce((s, r) => s + r.stats.peerDowns, 0)).toBeGreaterThan(SEEDS);
  });

  it('is deterministic: a seed replays to the same run', () => {
    const a = runSim(opts(4242));
    const b = runSim(opts(4242));
    expect(a.ok).toBe(true);
    expect(b.stats).toEqual(a.stats);
    expect(b.traceTail).toEqual(a.traceTail);
    expect(b.failoverMs).toEqual(a.failoverMs);
    expect(b.failoverNotifiedMs).toEqual(a.failoverNotifiedMs);
  });

  it('negative control: the same wipes WITHOUT the vote hold lose acknowledged entries, and the checks see it', () => {
    // fixed seeds that found it when this test was written (npm run sim -- --seeds 200 --no-vote-hold: 6 of 200)
    for (const seed of [1, 5, 35]) {
      const r = runSim(opts(seed, { voteHold: false }));
      expect(r.ok, `seed ${seed} should fail without the hold`).toBe(false);
      expect(r.error).toMatch(/leader completeness|two leaders|acknowledged/);
      expect(r.replay).toContain('--no-vote-hold');
      expect(r.stats.wipes).toBeGreaterThan(0);
      // and with the hold the same seed passes
      expect(runSim(opts(seed)).ok).toBe(true);
    }
  });

  it('the checks can fail: a driver that acknowledges fsyncs it never did is caught, with a replay command', () => {
    const bad: SimResult[] = [];
    for (let seed = 1; seed <= 20 && bad.length === 0; seed++) {
      const r = runSim(opts(seed, { driverBug: 'lying-fsync', livenessMs: 3000 }));
      if (!r.ok) bad.push(r);
    }
    expect(bad.length).toBe(1);
    expect(bad[0]!.replay).toMatch(/^npm run sim -- --seed \d+ --nodes [35] /);
    expect(bad[0]!.traceTail.length).toBeGreaterThan(0);
  });
});
