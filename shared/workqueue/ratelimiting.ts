/**
 * RateLimitingQueue: a DelayingQueue whose retries wait as long as a RateLimiter says (client-go's
 * `rate_limiting_queue.go`).
 *
 * Guarantees: `addRateLimited(item)` consults the limiter exactly once (recording a retry there),
 * counts one `workqueue_retries_total`, and adds the item after the returned delay, with all the
 * DelayingQueue rules (earlier deadline wins). `forget(item)` clears the limiter's history for the
 * item; it does not remove the item from the queue. Callers `forget` after a success, otherwise
 * the next failure backs off from where the last one stopped.
 */
import { DelayingQueue } from './delaying.ts';
import type { WorkQueueOptions } from './queue.ts';
import { defaultControllerRateLimiter } from './ratelimiter.ts';
import type { RateLimiter } from './ratelimiter.ts';

export interface RateLimitingQueueOptions<T> extends WorkQueueOptions {
  /** Defaults to `defaultControllerRateLimiter(clock)`. */
  rateLimiter?: RateLimiter<T>;
}

export class RateLimitingQueue<T extends NonNullable<unknown> = string> extends DelayingQueue<T> {
  private readonly rateLimiter: RateLimiter<T>;

  constructor(opts: RateLimitingQueueOptions<T> = {}) {
    super(opts);
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter<T>(this.clock);
  }

  /** Adds `item` once the rate limiter allows it, counting a retry. Ignored after shutdown. */
  addRateLimited(item: T): void {
    if (this.shuttingDown()) return;
    this.metrics.retry();
    this.addAfter(item, this.rateLimiter.when(item));
  }

  /** Clears the rate limiter's retry history for `item`. */
  forget(item: T): void {
    this.rateLimiter.forget(item);
  }

  /** Retries recorded for `item` since it was last forgotten. */
  numRequeues(item: T): number {
    return this.rateLimiter.numRequeues(item);
  }
}
