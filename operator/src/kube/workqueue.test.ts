import { describe, expect, it } from 'vitest';
import { backoffDelay, WorkQueue, type WorkResult } from './workqueue.ts';

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('WorkQueue', () => {
  it('deduplicates a key added while it is queued', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    q.shutdown();
    expect(await q.get()).toBeUndefined();
  });

  it('a key added while processing is re-queued once, after done — never handed to a second worker', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.add('a');
    q.add('a');
    expect(q.length).toBe(0);
    expect(q.isProcessing('a')).toBe(true);
    q.done(k!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
    q.shutdown();
  });

  it('with several workers, the same key is never processed concurrently, and every add after a start is seen', async () => {
    const q = new WorkQueue({ qps: 1e6, burst: 1e6 });
    const active = new Map<string, number>();
    let maxSameKey = 0;
    let runs = 0;
    const gates: (() => void)[] = [];
    const handler = async (key: string): Promise<WorkResult> => {
      active.set(key, (active.get(key) ?? 0) + 1);
      maxSameKey = Math.max(maxSameKey, active.get(key)!);
      runs++;
      await new Promise<void>((r) => gates.push(r));
      active.set(key, active.get(key)! - 1);
      return 'ok';
    };
    const running = q.run(4, handler);
    q.add('x');
    await until(() => gates.length === 1, 'first run');
    for (let i = 0; i < 5; i++) q.add('x'); // while processing: coalesced into one more run
    q.add('y');
    await until(() => gates.length === 2, 'y runs in parallel with x');
    gates.shift()!();
    gates.shift()!();
    await until(() => gates.length === 1, 'x re-run');
    gates.shift()!();
    await until(() => q.length === 0 && !q.isProcessing('x'), 'drained');
    q.shutdown();
    await running;
    expect(maxSameKey).toBe(1);
    expect(runs).toBe(3);
  });

  it('failures back off exponentially per key and success forgets them', async () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, 5, 1000))).toEqual([5, 10, 20, 40, 1000]);
    const q = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 8 });
    expect(q.addRateLimited('k')).toBe(1);
    expect(q.addRateLimited('k')).toBe(2);
    expect(q.addRateLimited('k')).toBe(4);
    expect(q.addRateLimited('other')).toBe(1);
    expect(q.failuresOf('k')).toBe(3);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(1);
    await until(() => q.length === 2, 'delayed keys arrive');
    q.shutdown();
  });

  it('run(): a thrown error re-queues with backoff and is reported; a later success resets', async () => {
    const q = new WorkQueue({ baseDelayMs: 1, qps: 1e6, burst: 1e6 });
    let calls = 0;
    const errors: string[] = [];
    const running = q.run(1, async () => {
      calls++;
      if (calls < 3) throw new Error(`boom ${calls}`);
      return 'ok';
    }, (_k, e) => errors.push((e as Error).message));
    q.add('k');
    await until(() => calls === 3 && !q.isProcessing('k'), 'third call');
    expect(errors).toEqual(['boom 1', 'boom 2']);
    expect(q.failuresOf('k')).toBe(0);
    q.shutdown();
    await running;
  });

  it('the global token bucket delays keys beyond the burst', async () => {
    let now = 0;
    const q = new WorkQueue({ qps: 1, burst: 2, now: () => now });
    q.add('a');
    q.add('b');
    q.add('c');
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    let got: string | undefined;
    const p = q.get().then((k) => { got = k; });
    await new Promise((r) => setImmediate(r));
    expect(got).toBeUndefined(); // no token at the same instant
    now += 1000; // a token refills after 1/qps s of (injected) time
    await p;
    expect(got).toBe('c');
    q.shutdown();
  });

  it('addAfter keeps the sooner of two delays', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 60_000);
    q.addAfter('k', 1);
    await until(() => q.length === 1, 'sooner delay fires');
    q.shutdown();
  });
});
