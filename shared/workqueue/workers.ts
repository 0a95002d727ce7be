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
 */
import PQueue from 'p-queue';
import type { WorkSource } from './queue.ts';

export interface RunWorkersOptions<T> {
  /** Called with what a handler threw, and the item. Its own throws are ignored. */
  onError?: (err: unknown, item: T) => void;
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
    const item = await queue.get();
    if (item === undefined) break;
    // `run` never rejects; p-queue starts it synchronously when a slot is free.
    void pool.add(() => run(item));
  }
  await pool.onIdle();
}
