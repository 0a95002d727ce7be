/**
 * The workqueue framework: a deduplicating queue, a delaying layer, rate limiters, a rate-limited
 * queue, Prometheus metrics and a worker loop. Each layer wraps the previous one; see each file's
 * opening comment for its guarantees.
 */
export { WorkQueue } from './queue.ts';
export type { WorkQueueOptions, WorkSource } from './queue.ts';
export { DelayingQueue } from './delaying.ts';
export {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from './ratelimiter.ts';
export type { RateLimiter } from './ratelimiter.ts';
export { RateLimitingQueue } from './ratelimiting.ts';
export type { RateLimitingQueueOptions } from './ratelimiting.ts';
export { noopMetrics, queueMetrics } from './metrics.ts';
export type { QueueMetrics, QueueMetricsOptions } from './metrics.ts';
export { runWorkers } from './workers.ts';
export type { RunWorkersOptions } from './workers.ts';
