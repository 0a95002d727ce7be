/**
 * WorkQueue: the deduplicating work queue every controller runs on (client-go's `queue.go`).
 *
 * Guarantees:
 * - Fair: items are handed out in the order they were added (FIFO), and waiting `get()` calls are
 *   served in the order they were made.
 * - Stingy: an item added several times before it is handed out is handed out once ("dirty"
 *   adds collapse).
 * - Exclusive: an item is never handed to two consumers at once. While an item is processing
 *   (handed out, `done` not yet called), adds only mark it dirty; `done` then re-queues it, so it
 *   runs exactly once more however many times it was added meanwhile.
 * - Shutdown: `shutDown()` stops handing out items at once; waiting and later `get()` calls
 *   resolve `undefined`. `shutDownWithDrain()` rejects new adds but keeps handing out the items
 *   already queued (including re-queues of items that were processing); `get()` resolves
 *   `undefined` once nothing is queued or processing, and the returned promise resolves then too.
 *   Unlike client-go, `shutDown()` does not hand out the rest of the queue: a hard stop is a stop.
 *
 * Items are compared with `===`; in practice they are `namespace/name` strings. `undefined` is not
 * a valid item (it is what `get()` returns on shutdown), hence `T extends NonNullable<unknown>`.
 * The queue never fails and never starts timers.
 */
import { realClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import { queueMetrics } from './metrics.ts';
import type { QueueMetrics, QueueMetricsOptions } from './metrics.ts';

export interface WorkQueueOptions {
  /** Time source for metrics (and, in subclasses, delays). Defaults to `realClock`. */
  clock?: Clock;
  /** Where to report metrics; without it the queue has no-op metrics. */
  metrics?: QueueMetricsOptions;
}

/** The consumer side of a queue: what a worker loop needs. */
export interface WorkSource<T> {
  get(): Promise<T | undefined>;
  done(item: T): void;
}

/** A FIFO of items with O(1) amortised push and shift. */
class Fifo<T> {
  /** Live items are `items[head..]`; slots before `head` are garbage awaiting compaction. */
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export class WorkQueue<T extends NonNullable<unknown> = string> {
  protected readonly clock: Clock;
  protected readonly metrics: QueueMetrics<T>;

  /** Items waiting to be handed out, in order. Every item here is in `dirty` and not in `processing`. */
  private readonly queue = new Fifo<T>();
  /**
   * Items that need processing. Each is either in `queue`, or in `processing` (added again while
   * processing, to be re-queued by `done`); never both.
   */
  private readonly dirty = new Set<T>();
  /** Items handed out whose `done` has not been called. An item here is not in `queue`. */
  private readonly processing = new Set<T>();
  /** Pending `get()` calls, oldest first. Non-empty only while `queue` is empty. */
  private readonly waiters: Array<(item: T | undefined) => void> = [];
  /** Callers of `shutDownWithDrain()` waiting for the drain to finish. */
  private readonly drainWaiters: Array<() => void> = [];
  /** Set by either shutdown; from then on adds are ignored. */
  private stopping = false;
  /** True after `shutDownWithDrain()` and before any `shutDown()`: queued items still go out. */
  private draining = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.metrics = queueMetrics<T>(opts.metrics, this.clock);
  }

  /** Marks `item` as needing processing. Ignored after shutdown. */
  add(item: T): void {
    if (this.stopping || this.dirty.has(item)) return;
    this.metrics.add(item);
    this.dirty.add(item);
    if (this.processing.has(item)) return;
    this.queue.push(item);
    this.handOut();
  }

  /** Number of items waiting to be handed out (not counting items that are processing). */
  len(): number {
    return this.queue.length;
  }

  /** Number of items handed out whose `done` has not been called yet. */
  processingLen(): number {
    return this.processing.size;
  }

  /**
   * The next item, waiting until one is available. The caller must call `done(item)` when finished
   * with it. Resolves `undefined` once the queue is shut down. During a draining shutdown it keeps
   * waiting while items are processing, since their `done` may re-queue them, and resolves
   * `undefined` once nothing is queued or processing.
   */
  get(): Promise<T | undefined> {
    if (this.stopping && !this.draining) return Promise.resolve(undefined);
    const item = this.take();
    if (item !== undefined) return Promise.resolve(item);
    if (this.drained()) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Marks `item` as no longer processing. If it was added while processing, it is queued again.
   * Calling it for an item that is not processing is a no-op.
   */
  done(item: T): void {
    if (!this.processing.delete(item)) return;
    this.metrics.done(item);
    if (this.dirty.has(item)) {
      this.queue.push(item);
      this.handOut();
    }
    this.settleShutdown();
  }

  /** Stops handing out items: waiting and later `get()` calls resolve `undefined`; adds are ignored. */
  shutDown(): void {
    this.stopping = true;
    this.draining = false;
    this.settleShutdown();
  }

  /**
   * Stops accepting adds; items already queued are still handed out. Resolves when nothing is
   * queued or processing (or when `shutDown()` is called and nothing is processing). It never
   * resolves if a consumer never calls `done`.
   */
  shutDownWithDrain(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.draining = true;
    }
    const drainDone = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.settleShutdown();
    return drainDone;
  }

  shuttingDown(): boolean {
    return this.stopping;
  }

  /** Moves the head of the queue to `processing` and returns it, or `undefined` if empty. */
  private take(): T | undefined {
    const item = this.queue.shift();
    if (item === undefined) return undefined;
    this.dirty.delete(item);
    this.processing.add(item);
    this.metrics.get(item);
    return item;
  }

  /** Serves waiting `get()` calls from the queue. */
  private handOut(): void {
    if (this.stopping && !this.draining) return;
    while (this.waiters.length > 0 && this.queue.length > 0) {
      const item = this.take() as T;
      this.waiters.shift()?.(item);
    }
  }

  /** A draining shutdown is finished: nothing queued, nothing processing. */
  private drained(): boolean {
    return this.stopping && this.draining && this.queue.length === 0 && this.processing.size === 0;
  }

  /** After a state change during shutdown: release waiting consumers and drain callers. */
  private settleShutdown(): void {
    if (!this.stopping) return;
    const hardStop = !this.draining;
    if (hardStop || this.drained()) {
      for (const resolve of this.waiters.splice(0)) resolve(undefined);
    }
    if (this.processing.size === 0 && (hardStop || this.queue.length === 0)) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }
}
