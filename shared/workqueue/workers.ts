/**
 * runWorkers: the worker loop over a queue, with p-queue bounding the concurrency.
 *
 * Guarantees:
 * - At most `concurrency` handlers run at once, and an item is taken from the queue only when a
 *   slot is free (so no item sits "processing" while waiting for a slot).
 * - `done(item)` is called after every handler, whether it resolved or threw.
 * - A handler that throws never stops the loop: the error goes to `onError` (if given) and is
 *   otherwise swallowed. Handlers are expected to handle their own errors (requeue, log).
 * - Resolves once `get()` has resolved `undefined` (the queue is shut down) and every handler that
 *   started has finished. Per-item exclusivity comes from the queue, not from here.
 * - No item is taken once the current event-loop turn has run for `yieldAfterMs` (default 10 ms)
 *   until the loop has gone round once (setImmediate). Handlers that finish without I/O resolve
 *   straight into the next one as microtasks, so without this a queue of such items, or a few
 *   long ones, kept the loop (watch events, timers, probes, lease renewal) waiting for seconds
 *   (docs/PERFORMANCE.md section 11). Short handlers that chain are unaffected.
 */
import PQueue from 'p-queue';
import { nextTurn, turnMs, TURN_BUDGET_MS } from '../eventloop.ts';
import type { WorkSource } from './queue.ts';

export interface RunWorkersOptions<T> {
  /** Called with what a handler threw, and the item. Its own throws are ignored. */
  onError?: (err: unknown, item: T) => void;
  /** How long one event-loop turn may run before the loop yields (default 10 ms). */
  yieldAfterMs?: number;
}

export async function runWorkers<T>(
  queue: WorkSource<T>,
  concurrency: number,
  handle: (item: T) => Promise<void>,
  opts: RunWorkersOptions<T> = {},
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const yieldAfterMs = opts.yieldAfterMs ?? TURN_BUDGET_MS;
  const pool = new PQueue({ concurrency });
  const slotFreed = (): Promise<void> =>
    new Promise((resolve) => pool.addEventListener('next', () => resolve(), { once: true }));

  const run = async (item: T): Promise<void> => {
    try {
      await handle(item);
    } catch (err) {
      try {
        opts.onError?.(err, item);
      } catch {
        // An error handler that throws must not stop the loop either.
      }
    } finally {
      queue.done(item);
    }
  };

  for (;;) {
    while (pool.pending + pool.size >= concurrency) await slotFreed();
    if (turnMs() >= yieldAfterMs) await nextTurn();
    const item = await queue.get();
    if (item === undefined) break;
    // `run` never rejects; p-queue starts it synchronously when a slot is free.
    void pool.add(() => run(item));
  }
  await pool.onIdle();
}
