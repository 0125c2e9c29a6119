import { describe, expect, it } from 'vitest';
import { LanceError } from '../common/errors.ts';
import { classifyS3Error } from './s3-store.ts';
import { backoffDelayMs, withRetry, type RetryPolicy } from './retry.ts';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 4 };

describe('backoffDelayMs', () => {
  const p: RetryPolicy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
  it('doubles per failure up to the cap, half fixed and half jitter', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, p, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, p, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999]);
  });
  it('stays within [step/2, step) for any random draw', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(3, p, Math.random);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThan(400);
    }
  });
});

describe('withRetry', () => {
  const classify = (e: unknown) => ({ error: e as LanceError, retryable: (e as LanceError).details?.retryable === true });
  it('retries retryable failures and returns the first success', async () => {
    let calls = 0;
    const r = await withRetry('op', { policy, classify }, async () => {
      calls++;
      if (calls < 3) throw new LanceError('IO', 'flaky', { retryable: true });
      return 'ok';
    });
    expect(r).toBe('ok');
    expect(calls).toBe(3);
  });
  it('gives up after maxAttempts keeping the last code and saying so', async () => {
    let calls = 0;
    const p = withRetry('op', { policy, classify }, async () => {
      calls++;
      throw new LanceError('TIMEOUT', 'stalled', { retryable: true });
    });
    await expect(p).rejects.toMatchObject({ code: 'TIMEOUT', message: 'stalled (gave up after 4 attempts)' });
    expect(calls).toBe(4);
  });
  it('does not retry a non-retryable failure', async () => {
    let calls = 0;
    await expect(withRetry('op', { policy, classify }, async () => {
      calls++;
      throw new LanceError('NOT_FOUND', 'gone');
    })).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'gone' });
    expect(calls).toBe(1);
  });
});

describe('classifyS3Error', () => {
  const sdk = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(`${name} happened`), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}), ...extra });
  const cases: [unknown, string, boolean][] = [
    [sdk('NoSuchKey', 404), 'NOT_FOUND', false],
    [sdk('NotFound', 404), 'NOT_FOUND', false],
    [sdk('NoSuchBucket', 404), 'NOT_FOUND', false],
    [sdk('InvalidRange', 416), 'INVALID_ARGUMENT', false],
    [sdk('AccessDenied', 403), 'IO', false],
    [sdk('InvalidPart', 400), 'IO', false],
    [sdk('InternalError', 500), 'IO', true],
    [sdk('SlowDown', 503), 'IO', true],
    [sdk('Whatever', 502), 'IO', true],
    [sdk('TooManyRequests', 429), 'IO', true],
    [sdk('BadDigest', 400), 'IO', true],
    [sdk('RequestTimeout', 400), 'IO', true],
    [sdk('TimeoutError'), 'TIMEOUT', true],
    [sdk('Error', undefined, { code: 'ECONNRESET' }), 'IO', true],
    [sdk('Error', undefined, { code: 'ECONNREFUSED' }), 'IO', true],
    [new LanceError('CORRUPT', 'in transit', { retryable: true }), 'CORRUPT', true],
    [new LanceError('CORRUPT', 'at rest'), 'CORRUPT', false],
  ];
  it.each(cases)('%s → %s (retryable %s)', (e, code, retryable) => {
    const c = classifyS3Error(e, 'GetObject s3://b/k');
    expect(c.error.code).toBe(code);
    expect(c.retryable).toBe(retryable);
    if (!(e instanceof LanceError)) expect(c.error.message).toContain('GetObject s3://b/k');
  });
});
