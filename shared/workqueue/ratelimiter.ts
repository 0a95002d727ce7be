/**
 * Rate limiters: how long to wait before an item is retried (client-go's
 * `default_rate_limiters.go`).
 *
 * Contract of `RateLimiter`: `when(item)` records a retry of `item` and returns the delay in ms
 * before it may run (never negative, never NaN); `forget(item)` clears the item's history (call it
 * when the item succeeded); `numRequeues(item)` is how many `when` calls since the last `forget`.
 * Limiters never fail and never start timers; time, where needed, comes from the injected clock.
 */
import type { Clock } from '../clock.ts';

export interface RateLimiter<T> {
  /** Records a retry of `item`; returns the delay (ms) before it may run. */
  when(item: T): number;
  /** Forgets `item`'s retry history. */
  forget(item: T): void;
  /** Retries recorded for `item` since it was last forgotten. */
  numRequeues(item: T): number;
}

/**
 * Per-item exponential backoff: the n-th consecutive failure (from 0) waits `base * 2^n` ms,
 * capped at `maxDelayMs`. Overflow (huge n) yields the cap.
 */
export class ItemExponentialFailureRateLimiter<T> implements RateLimiter<T> {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  /** Consecutive failures per item since its last `forget`; absent means 0. */
  private readonly failures = new Map<T, number>();

  constructor(baseDelayMs: number, maxDelayMs: number) {
    if (!(baseDelayMs >= 0) || !(maxDelayMs >= 0)) {
      throw new RangeError(`delays must be non-negative numbers, got base ${baseDelayMs}, max ${maxDelayMs}`);
    }
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  when(item: T): number {
    const exp = this.failures.get(item) ?? 0;
    this.failures.set(item, exp + 1);
    const backoff = this.baseDelayMs * 2 ** exp;
    // 2 ** exp is Infinity past 1023; 0 * Infinity is NaN. Both mean "at the cap" (or 0 for base 0).
    if (!Number.isFinite(backoff)) return this.baseDelayMs === 0 ? 0 : this.maxDelayMs;
    return Math.min(backoff, this.maxDelayMs);
  }

  forget(item: T): void {
    this.failures.delete(item);
  }

  numRequeues(item: T): number {
    return this.failures.get(item) ?? 0;
  }
}

/**
 * A token bucket shared by all items, like golang.org/x/time/rate's `Reserve()`: the bucket holds
 * up to `burst` tokens and refills at `qps` per second; every `when` takes a token, going into debt
 * if none is left, and returns how long until that token exists. So after a burst, items are spaced
 * `1000 / qps` ms apart. `forget` is a no-op and `numRequeues` is always 0: it limits the overall
 * rate, not any one item.
 */
export class BucketRateLimiter<T> implements RateLimiter<T> {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  /** Tokens available at time `last`; negative when reservations are outstanding. Never > burst. */
  private tokens: number;
  /** Time (ms) `tokens` was computed at. Never decreases. */
  private last: number;

  constructor(qps: number, burst: number, clock: Clock) {
    if (!(qps > 0)) throw new RangeError(`qps must be positive, got ${qps}`);
    if (!(burst >= 1) || !Number.isInteger(burst)) {
      throw new RangeError(`burst must be a positive integer, got ${burst}`);
    }
    this.qps = qps;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }

  when(_item: T): number {
    if (this.qps === Infinity) return 0;
    const now = Math.max(this.clock.now(), this.last);
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.qps;
  }

  forget(_item: T): void {}

  numRequeues(_item: T): number {
    return 0;
  }
}

/** The worst case of several limiters: the largest delay, forgetting in all, the most requeues. */
export class MaxOfRateLimiter<T> implements RateLimiter<T> {
  private readonly limiters: readonly RateLimiter<T>[];

  constructor(...limiters: RateLimiter<T>[]) {
    this.limiters = limiters;
  }

  when(item: T): number {
    // Every limiter must record the retry, so no short-circuit.
    let delay = 0;
    for (const limiter of this.limiters) delay = Math.max(delay, limiter.when(item));
    return delay;
  }

  forget(item: T): void {
    for (const limiter of this.limiters) limiter.forget(item);
  }

  numRequeues(item: T): number {
    let max = 0;
    for (const limiter of this.limiters) max = Math.max(max, limiter.numRequeues(item));
    return max;
  }
}

/**
 * client-go's `DefaultControllerRateLimiter`: per-item exponential backoff from 5 ms to 1000 s,
 * and an overall token bucket of 10 qps with a burst of 100. The EndpointSlice controllers start
 * the backoff at 1 s instead (`baseDelayMs`), as upstream's do.
 */
export function defaultControllerRateLimiter<T>(clock: Clock, baseDelayMs = 5): RateLimiter<T> {
  return new MaxOfRateLimiter<T>(
    new ItemExponentialFailureRateLimiter<T>(baseDelayMs, 1000_000),
    new BucketRateLimiter<T>(10, 100, clock),
  );
}
