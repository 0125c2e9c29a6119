/**
 * Bounded retries with exponential backoff and jitter. The decisions (how long to wait, whether an error is worth
 * another attempt) are pure functions; withRetry is the small loop that applies them.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { LanceError, type LanceErrorCode } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';

export interface RetryPolicy {
  /** total attempts including the first (1 = no retry) */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Wait before attempt `failedAttempts + 1`: "equal jitter" — half of the capped exponential step fixed, half random,
 * so waits grow with every failure (unlike full jitter, which may pick ~0) yet retries of many clients spread out.
 */
export function backoffDelayMs(failedAttempts: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failedAttempts - 1));
  return Math.floor(step / 2 + random() * (step / 2));
}

/** What a failed attempt means: the error to surface, and whether trying again could help. */
export interface Classified {
  error: LanceError;
  retryable: boolean;
}

export interface RetryContext {
  policy: RetryPolicy;
  classify: (e: unknown) => Classified;
  log?: Logger;
  random?: () => number;
  /** called before each retry (metrics) */
  onRetry?: (code: LanceErrorCode) => void;
}

/** Runs `fn` until it succeeds, fails with a non-retryable error, or the attempts are used up. */
export async function withRetry<T>(op: string, ctx: RetryContext, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const c = ctx.classify(e);
      if (!c.retryable || attempt >= ctx.policy.maxAttempts) {
        if (c.retryable) {
          // keep the code of the last failure (TIMEOUT stays TIMEOUT), but say the retries are exhausted
          const { retryable: _r, ...details } = c.error.details ?? {};
          throw new LanceError(c.error.code, `${c.error.message} (gave up after ${attempt} attempts)`, { ...details, attempts: attempt }, { cause: e });
        }
        throw c.error;
      }
      const wait = backoffDelayMs(attempt, ctx.policy, ctx.random);
      ctx.onRetry?.(c.error.code);
      ctx.log?.warn({ op, attempt, code: c.error.code, err: c.error.message, retryInMs: wait }, 'object store request failed, retrying');
      await delay(wait);
    }
  }
}
