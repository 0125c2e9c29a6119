/**
 * A keyed, rate-limited work queue in the manner of client-go's: a key added while queued is deduplicated; a key
 * added while being processed is marked dirty and re-queued when its worker finishes (so no two workers ever hold
 * the same key); failures re-queue with per-key exponential backoff; a global token bucket bounds the overall rate.
 */
export interface WorkQueueOptions {
  /** First retry delay after a failure (ms); doubles per consecutive failure of that key. */
  baseDelayMs?: number;
  /** Cap of the per-key backoff (ms). */
  maxDelayMs?: number;
  /** Global token bucket: sustained keys per second and burst. */
  qps?: number;
  burst?: number;
  /** Injected clock and timer (tests); default Date.now / setTimeout. */
  now?: () => number;
}


/** Outcome of one processing: 'ok' forgets the key's failures; 'retry' re-queues with backoff; {after} re-queues later. */
export type WorkResult = 'ok' | 'retry' | { afterMs: number };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: (() => void)[] = [];
  private tokens: number;
  private lastRefill: number;
  private shuttingDown = false;
  private readonly opts: Required<Omit<WorkQueueOptions, 'now'>> & { now: () => number };

  constructor(opts: WorkQueueOptions = {}) {
    this.opts = { baseDelayMs: opts.baseDelayMs ?? 5, maxDelayMs: opts.maxDelayMs ?? 300_000, qps: opts.qps ?? 10, burst: opts.burst ?? 100, now: opts.now ?? Date.now };
    this.tokens = this.opts.burst;
    this.lastRefill = this.opts.now();
  }

  get length(): number {
    return this.queue.length;
  }

  /** Enqueue now (deduplicated). A key being processed is re-queued when its worker finishes. */
  add(key: string): void {
    if (this.shuttingDown) return;
    const d = this.delayed.get(key);
    if (d) {
      clearTimeout(d.timer);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.wake();
  }

  /** Enqueue after `ms`; an earlier pending delay for the key wins (the sooner one is kept). */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.opts.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** Re-queue after this key's next backoff step (exponential, capped). */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffDelay(n, this.opts.baseDelayMs, this.opts.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clear a key's failure count (it succeeded). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Next key to process, waiting for one and for a global rate-limit token. Undefined once shut down. */
  async get(): Promise<string | undefined> {
    for (;;) {
      if (this.shuttingDown) return undefined;
      if (this.queue.length > 0) {
        const wait = this.takeToken();
        if (wait > 0) {
          await new Promise<void>((r) => setTimeout(r, wait).unref?.());
          continue;
        }
        const key = this.queue.shift()!;
        this.queued.delete(key);
        this.processing.add(key);
        return key;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Mark a key's processing finished; a key added meanwhile goes back on the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.wake(true);
  }

  /**
   * Runs `workers` loops calling `handler` until shutdown. The handler's result decides forgetting/backoff; a thrown
   * error counts as 'retry' and is passed to `onError`.
   */
  run(workers: number, handler: (key: string) => Promise<WorkResult>, onError: (key: string, err: unknown) => void = () => undefined): Promise<void> {
    const loop = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        let result: WorkResult;
        try {
          result = await handler(key);
        } catch (e) {
          onError(key, e);
          result = 'retry';
        }
        if (result === 'ok') this.forget(key);
        else if (result === 'retry') this.addRateLimited(key);
        else {
          this.forget(key);
          this.addAfter(key, result.afterMs);
        }
        this.done(key);
      }
    };
    return Promise.all(Array.from({ length: workers }, loop)).then(() => undefined);
  }

  private takeToken(): number {
    const now = this.opts.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.opts.qps);
    this.lastRefill = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.opts.qps) * 1000);
  }

  private wake(all = false): void {
    if (all) {
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    this.waiters.shift()?.();
  }
}

/** base × 2^failures, capped at max (pure; the queue's backoff policy). */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(failures, 40));
}
