/**
 * Controller: a rate-limited queue of object keys, N workers, and a Reconciler.
 *
 * Guarantees (from the queue): a key is never reconciled by two workers at once; keys added while
 * queued collapse; a key added while it is being reconciled runs once more afterwards.
 * Outcomes of one reconcile (see Reconciler): success forgets the key's backoff; `requeueAfterMs`
 * forgets and re-adds after that delay; an error re-adds with backoff up to `maxRetries`, then the
 * key is dropped (logged, counted, `onDropped` called) and tried again after `droppedRetryMs`
 * (5 min) with a fresh backoff, so a key that failed for a while is not forgotten until some
 * unrelated event brings it back; a TerminalError is dropped at once and for good (counted too).
 *
 * Lifecycle: `start(stop, abort)` waits for its caches to sync and runs until `stop` aborts; then
 * it hands out no more keys (queued ones are left: the next leader's initial list brings every
 * object back) and resolves once the in-flight reconciles have finished. `abort` is the hard stop:
 * it aborts the signal every in-flight reconcile got, so their API calls end at once.
 */
import type { Registry } from 'prom-client';
import { whenAborted } from '../abort.ts';
import { type Clock, realClock } from '../clock.ts';
import { parseKey } from '../kube/labels.ts';
import { describeError } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { RateLimitingQueue } from '../workqueue/ratelimiting.ts';
import type { RateLimiter } from '../workqueue/ratelimiter.ts';
import { runWorkers } from '../workqueue/workers.ts';
import { AdaptiveBatchWindow } from './batchwindow.ts';
import { controllerMetrics, type ControllerMetrics } from './metrics.ts';
import { type Reconciler, TerminalError } from './reconciler.ts';

export interface Syncable {
  hasSynced(): boolean;
  waitForSync(signal: AbortSignal): Promise<void>;
}

export interface ControllerOptions {
  name: string;
  workers: number;
  reconciler: Reconciler;
  log: Logger;
  clock?: Clock;
  registry?: Registry;
  rateLimiter?: RateLimiter<string>;
  /** Retries of one key before it is dropped (upstream endpoint controller: 15). */
  maxRetries?: number;
  /** Caches that must be synced before the first reconcile. */
  caches?: readonly Syncable[];
  /** Called when a key is dropped after too many failures or a terminal error. */
  onDropped?: (key: string, err: unknown) => void;
  /** How long a key dropped after `maxRetries` waits before it is tried again; default 5 min. */
  droppedRetryMs?: number;
  /**
   * Milliseconds the event loop has been busy so far (monotonic); default: the `active` time of
   * `performance.eventLoopUtilization()`. Spacing (see enqueueAfter) counts only busy time.
   */
  busyTime?: () => number;
  /**
   * The longest adaptive batch window of `enqueueBatched` (AdaptiveBatchWindow); default 0: every
   * batched enqueue uses only its fixed period.
   */
  adaptiveBatchMaxMs?: number;
}

const eventLoopBusyTime = (): number => performance.eventLoopUtilization().active;

/** A reconcile that kept the loop busy this long makes the key's next one wait as long (enqueueAfter). */
const SLOW_RECONCILE_MS = 20;
const MAX_SPACING_MS = 2000;
const DROPPED_RETRY_MS = 5 * 60_000;

export class Controller {
  readonly name: string;
  private readonly queue: RateLimitingQueue<string>;
  private readonly opts: ControllerOptions;
  private readonly clock: Clock;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly maxRetries: number;
  /** key -> the time before which it is not reconciled again (keys whose last one was slow). */
  private readonly notBefore = new Map<string, number>();
  private readonly busyTime: () => number;
  /** Aborted by `start`'s `abort`: the signal of every reconcile. */
  private readonly inFlight = new AbortController();
  private readonly batchWindow: AdaptiveBatchWindow;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.maxRetries = opts.maxRetries ?? 15;
    this.busyTime = opts.busyTime ?? eventLoopBusyTime;
    this.metrics = opts.registry ? controllerMetrics(opts.registry) : undefined;
    this.metrics?.watch(this.name, () => this.unfinished());
    this.batchWindow = new AdaptiveBatchWindow({ maxMs: opts.adaptiveBatchMaxMs ?? 0, clock: this.clock });
    this.queue = new RateLimitingQueue<string>({
      clock: this.clock,
      rateLimiter: opts.rateLimiter,
      metrics: opts.registry
        ? { registry: opts.registry, name: opts.name, controller: opts.name }
        : undefined,
    });
  }

  /** Queues a key ("ns/name") for reconciliation. Safe before `start`. */
  enqueue(key: string): void {
    this.enqueueAfter(key, 0);
  }

  /**
   * Queues a key after `delayMs` (an earlier pending deadline wins). A key whose last reconcile
   * kept the event loop busy for SLOW_RECONCILE_MS or more (its own work and whatever else ran
   * meanwhile, at most its duration) is not reconciled again until as long has passed since that
   * one ended (at most MAX_SPACING_MS): a Service with 10,000 pods, whose sync costs hundreds of
   * milliseconds of the one event loop, then syncs at most about half of the time and its pod
   * events batch up meanwhile, instead of starving the informers that deliver them (docs/
   * PERFORMANCE.md section 1). The spacing counts from the end of the slow reconcile, so a key
   * that was slow once, minutes ago, is not delayed now (PERFORMANCE.md section 5).
   */
  enqueueAfter(key: string, delayMs: number): void {
    const notBefore = this.notBefore.get(key);
    const spacing = notBefore === undefined ? 0 : notBefore - this.clock.now();
    if (notBefore !== undefined && spacing <= 0) this.notBefore.delete(key);
    const delay = Math.max(delayMs, spacing);
    if (delay > 0) this.queue.addAfter(key, delay);
    else this.queue.add(key);
  }

  /**
   * Queues a key after a change that more changes may follow soon (a pod event): after
   * `fixedPeriodMs` when that is above 0 (a `--*-updates-batch-period` flag), else after the
   * adaptive batch window, which the event is recorded in (AdaptiveBatchWindow: 0 unless the
   * recent events came in bursts per key that waiting would have collapsed).
   */
  enqueueBatched(key: string, fixedPeriodMs: number): void {
    let delayMs = fixedPeriodMs;
    if (delayMs <= 0) {
      this.batchWindow.observe(key);
      delayMs = this.batchWindow.windowMs();
    }
    this.metrics?.batchWindow.observe({ controller: this.name }, delayMs / 1000);
    this.enqueueAfter(key, delayMs);
  }

  /** Keys waiting (for tests and /debug). */
  queueLength(): number {
    return this.queue.len();
  }

  /** Keys queued, waiting out a delay (backoff, requeueAfter, batch period) or being reconciled. */
  unfinished(): number {
    return this.queue.len() + this.queue.waitingLen() + this.queue.processingLen();
  }

  async start(stop: AbortSignal, abort?: AbortSignal): Promise<void> {
    const log = this.opts.log;
    const onAbort = (): void => {
      this.queue.shutDown();
      this.inFlight.abort(abort?.reason);
    };
    if (abort?.aborted) onAbort();
    else abort?.addEventListener('abort', onAbort, { once: true });
    try {
      const stopOrAbort = abort ? AbortSignal.any([stop, abort]) : stop;
      try {
        await Promise.all((this.opts.caches ?? []).map((c) => c.waitForSync(stopOrAbort)));
      } catch (err) {
        if (stopOrAbort.aborted) return;
        throw err;
      }
      if (stopOrAbort.aborted) return;
      this.metrics?.maxConcurrent.set({ controller: this.name }, this.opts.workers);
      log.info('starting workers', { workers: this.opts.workers });
      const workers = runWorkers(this.queue, this.opts.workers, (key) => this.processOne(key));
      await whenAborted(stopOrAbort);
      if (!this.inFlight.signal.aborted) {
        log.info('stopping: finishing in-flight reconciles', { inFlight: this.queue.processingLen() });
      } else {
        log.info('aborting in-flight reconciles', { inFlight: this.queue.processingLen() });
      }
      this.queue.shutDown();
      await workers;
      log.info('stopped');
    } finally {
      abort?.removeEventListener('abort', onAbort);
    }
  }

  private async processOne(key: string): Promise<void> {
    const started = this.clock.now();
    const busyAtStart = this.busyTime();
    const labels = { controller: this.name };
    this.metrics?.active.inc(labels);
    try {
      const result = await this.opts.reconciler.reconcile(parseKey(key), this.inFlight.signal);
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined && result.requeueAfterMs >= 0) {
        this.metrics?.total.inc({ ...labels, result: 'requeue_after' });
        this.queue.addAfter(key, result.requeueAfterMs);
      } else {
        this.metrics?.total.inc({ ...labels, result: 'success' });
      }
    } catch (err) {
      this.handleError(key, err);
    } finally {
      this.metrics?.active.dec(labels);
      const took = this.clock.now() - started;
      this.metrics?.time.observe(labels, took / 1000);
      // Only the time the event loop was busy meanwhile counts: a reconcile that mostly waited for
      // the API server (rate limiter, round trips) did not starve anything.
      const busy = Math.min(took, this.busyTime() - busyAtStart);
      if (busy >= SLOW_RECONCILE_MS) {
        this.notBefore.set(key, this.clock.now() + Math.min(busy, MAX_SPACING_MS));
      } else {
        this.notBefore.delete(key);
      }
    }
  }

  private handleError(key: string, err: unknown): void {
    const labels = { controller: this.name };
    this.metrics?.errors.inc(labels);
    const ref = parseKey(key);
    if (err instanceof TerminalError) {
      this.metrics?.total.inc({ ...labels, result: 'terminal_error' });
      this.metrics?.dropped.inc({ ...labels, reason: 'terminal_error' });
      this.opts.log.error('reconcile failed with a terminal error; dropping', err, { object: ref });
      this.queue.forget(key);
      this.opts.onDropped?.(key, err);
      return;
    }
    this.metrics?.total.inc({ ...labels, result: 'error' });
    // Aborted work is not a failure of the key to retry; the queue is shut down anyway.
    if (this.inFlight.signal.aborted) return;
    const retries = this.queue.numRequeues(key);
    if (retries < this.maxRetries) {
      this.opts.log.v(2).info('reconcile failed; retrying with backoff', {
        object: ref,
        err: describeError(err),
        retries,
      });
      this.queue.addRateLimited(key);
      return;
    }
    const retryInMs = this.opts.droppedRetryMs ?? DROPPED_RETRY_MS;
    this.opts.log.error(`reconcile failed ${retries + 1} times; dropping the key`, err, {
      object: ref,
      retryInMs,
    });
    this.metrics?.dropped.inc({ ...labels, reason: 'max_retries' });
    this.queue.forget(key);
    this.opts.onDropped?.(key, err);
    this.queue.addAfter(key, retryInMs);
  }
}
