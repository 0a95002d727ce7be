/**
 * DelayingQueue: a WorkQueue that can add an item later (client-go's `delaying_queue.go`).
 *
 * Guarantees:
 * - `addAfter(item, ms)` adds `item` no earlier than `clock.now() + ms`, on the injected clock's
 *   timers; `ms <= 0` adds at once.
 * - An item waits at most once: a second `addAfter` for a waiting item keeps the EARLIER deadline,
 *   and an immediate add through `addAfter(item, 0)` cancels the wait.
 * - Items due at the same instant are added in the order their deadlines were set.
 * - At most one timer is pending, for the earliest deadline. Nothing is scheduled until the first
 *   `addAfter`; either shutdown cancels the timer and drops the waiting items.
 *
 * A plain `add(item)` does not cancel a wait: the item runs now, and again when its deadline comes.
 */
import type { Timer } from '../clock.ts';
import { WorkQueue } from './queue.ts';
import type { WorkQueueOptions } from './queue.ts';

/** A deadline in the heap. Stale (superseded or cancelled) when `waiting.get(item) !== entry`. */
interface Entry<T> {
  item: T;
  at: number;
  seq: number;
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A binary min-heap of entries by (deadline, insertion order). */
class DeadlineHeap<T> {
  private readonly heap: Entry<T>[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): Entry<T> | undefined {
    return this.heap[0];
  }

  push(entry: Entry<T>): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  pop(): Entry<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < h.length && before(h[l], h[min])) min = l;
        if (r < h.length && before(h[r], h[min])) min = r;
        if (min === i) break;
        [h[i], h[min]] = [h[min], h[i]];
        i = min;
      }
    }
    return top;
  }

  clear(): void {
    this.heap.length = 0;
  }
}

export class DelayingQueue<T extends NonNullable<unknown> = string> extends WorkQueue<T> {
  /** The live deadline of each waiting item. Every value is also in `heap`. */
  private readonly waiting = new Map<T, Entry<T>>();
  /** Live and stale entries; stale ones are dropped when they reach the top. */
  private readonly heap = new DeadlineHeap<T>();
  private seq = 0;
  /** The pending timer, set for `timerAt`: the earliest live deadline. Undefined when none waits. */
  private timer: Timer | undefined;
  private timerAt = Infinity;

  constructor(opts: WorkQueueOptions = {}) {
    super(opts);
  }

  /** Adds `item` after `delayMs`; keeps the earlier deadline if `item` is already waiting. */
  addAfter(item: T, delayMs: number): void {
    if (this.shuttingDown()) return;
    if (!(delayMs > 0)) {
      this.waiting.delete(item);
      this.add(item);
      return;
    }
    const at = this.clock.now() + delayMs;
    const current = this.waiting.get(item);
    if (current && current.at <= at) return;
    const entry: Entry<T> = { item, at, seq: this.seq++ };
    this.waiting.set(item, entry);
    this.heap.push(entry);
    if (at < this.timerAt) this.schedule();
  }

  /** Number of items waiting for their deadline. */
  waitingLen(): number {
    return this.waiting.size;
  }

  override shutDown(): void {
    this.cancelWaiting();
    super.shutDown();
  }

  override shutDownWithDrain(): Promise<void> {
    this.cancelWaiting();
    return super.shutDownWithDrain();
  }

  /** Adds every item whose deadline has passed, then re-arms the timer for the next one. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    for (let top = this.heap.peek(); top && top.at <= now; top = this.heap.peek()) {
      this.heap.pop();
      if (this.waiting.get(top.item) !== top) continue;
      this.waiting.delete(top.item);
      this.add(top.item);
    }
    this.schedule();
  }

  /** Drops stale entries from the top, then points the single timer at the earliest live deadline. */
  private schedule(): void {
    let top = this.heap.peek();
    while (top && this.waiting.get(top.item) !== top) {
      this.heap.pop();
      top = this.heap.peek();
    }
    if (top?.at === this.timerAt) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!top) return;
    this.timerAt = top.at;
    this.timer = this.clock.setTimer(() => this.fire(), top.at - this.clock.now());
  }

  private cancelWaiting(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    this.waiting.clear();
    this.heap.clear();
  }
}
