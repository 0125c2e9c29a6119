/**
 * Open-loop load: operations are due at fixed intended times t0 + i/rate, whatever the system under test does.
 * Latency is measured from the INTENDED send time, so a stall delays every operation due during it and shows up in
 * the percentiles (no coordinated omission). The generator's own lateness (fire time − intended time) is recorded
 * separately so a busy generator is visible instead of being blamed on the broker.
 */
import { LatencyHistogram, type LatencySummary } from './hist.ts';

/** Pure schedule: which operations are due at a given time. Times in ms on any monotonic clock. */
export class OpenLoopSchedule {
  constructor(readonly ratePerSec: number, readonly t0: number, readonly durationMs: number) {
    if (!(ratePerSec > 0)) throw new RangeError(`ratePerSec must be > 0, got ${ratePerSec}`);
  }

  /** total operations in the run */
  get total(): number {
    return Math.floor((this.durationMs * this.ratePerSec) / 1000);
  }

  /** intended send time of operation i (0-based) */
  intended(i: number): number {
    return this.t0 + (i * 1000) / this.ratePerSec;
  }

  /** number of operations due at `now` (those with intended time ≤ now), capped at total */
  dueBy(now: number): number {
    if (now < this.t0) return 0;
    return Math.min(this.total, Math.floor(((now - this.t0) * this.ratePerSec) / 1000) + 1);
  }

  /** ms from `now` until operation i is due (≤ 0: already due) */
  waitFor(i: number, now: number): number {
    return this.intended(i) - now;
  }
}

export interface OpenLoopResult {
  intendedOps: number;
  completedOps: number;
  errors: number;
  firstError?: string;
  /** completed ops per second over the run (until the last completion) */
  achievedOpsPerSec: number;
  latency: LatencySummary;
  /** generator lateness: fire time − intended time */
  sendLag: LatencySummary;
}

/**
 * Runs `send` on the schedule. The wait between operations is a timer when the next one is ≥ 1 ms away and
 * setImmediate when it is closer (Node timers have 1 ms resolution). Resolves after every operation has completed.
 */
export async function runOpenLoop(opts: { ratePerSec: number; durationMs: number; send: () => Promise<void>; now?: () => number; sleep?: (ms: number) => Promise<void> }): Promise<OpenLoopResult> {
  const now = opts.now ?? (() => performance.now());
  // the clock and the wait are injectable so the unit test can drive a virtual clock
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => (ms >= 1 ? setTimeout(r, Math.floor(ms)) : setImmediate(r))));
  const sched = new OpenLoopSchedule(opts.ratePerSec, now() + 5, opts.durationMs);
  const lat = new LatencyHistogram();
  const lag = new LatencyHistogram();
  let fired = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let lastDone = sched.t0;
  const inflight = new Set<Promise<void>>();
  while (fired < sched.total) {
    const t = now();
    const due = sched.dueBy(t);
    while (fired < due) {
      const intended = sched.intended(fired);
      lag.recordMs(t - intended);
      fired++;
      const p: Promise<void> = opts.send().then(
        () => {
          const done = now();
          lat.recordMs(done - intended);
          completed++;
          lastDone = done;
        },
        (e: unknown) => {
          errors++;
          firstError ??= String(e);
        },
      ).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (fired >= sched.total) break;
    const wait = sched.waitFor(fired, now());
    await sleep(wait);
  }
  await Promise.all([...inflight]);
  const secs = Math.max(1e-3, (lastDone - sched.t0) / 1000);
  return { intendedOps: sched.total, completedOps: completed, errors, firstError, achievedOpsPerSec: completed / secs, latency: lat.summary(), sendLag: lag.summary() };
}

/** Closed loop: `concurrency` workers each send, await, send again, for `durationMs` after a warm-up. */
export async function runClosedLoop(opts: { concurrency: number; warmupMs: number; durationMs: number; send: () => Promise<void> }): Promise<{ opsPerSec: number; ops: number; errors: number; firstError?: string; latency: LatencySummary }> {
  let measuring = false;
  let stop = false;
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  const lat = new LatencyHistogram();
  const worker = async (): Promise<void> => {
    while (!stop) {
      const t = performance.now();
      try {
        await opts.send();
        if (measuring) {
          ops++;
          lat.recordMs(performance.now() - t);
        }
      } catch (e) {
        errors++;
        firstError ??= String(e);
        if (errors > 1000) throw new Error('closed loop: more than 1000 failed sends');
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency }, worker);
  const all = Promise.all(workers);
  let failed: unknown = null;
  all.catch((e: unknown) => (failed = e));
  await new Promise((r) => setTimeout(r, opts.warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, opts.durationMs));
  measuring = false;
  const secs = (performance.now() - t0) / 1000;
  stop = true;
  await all.catch(() => undefined);
  if (failed) throw failed;
  return { opsPerSec: ops / secs, ops, errors, firstError, latency: lat.summary() };
}
