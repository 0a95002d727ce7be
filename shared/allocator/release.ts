/**
 * Release on watch: when a Service is deleted, or an update drops a value it held (a type change,
 * a dual-stack downgrade, a port removed), the leader frees the value at once instead of waiting
 * three repair passes. A value another Service still holds (two Services forced onto one IP) is
 * kept. Releases that arrive together share one write (group commit). A release that fails is
 * logged and left to the repair loop, which frees leaks on its third pass.
 */
import { describeError } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import type { StoredRangeAllocator } from './committer.ts';

export class WatchReleaser<V> {
  private readonly allocator: StoredRangeAllocator<V>;
  private readonly heldByAService: (value: V) => boolean;
  private readonly log: Logger;
  private active = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(opts: {
    allocator: StoredRangeAllocator<V>;
    heldByAService: (value: V) => boolean;
    log: Logger;
  }) {
    this.allocator = opts.allocator;
    this.heldByAService = opts.heldByAService;
    this.log = opts.log;
  }

  /** Only the leader releases: between `activate` and `deactivate`. */
  activate(): void {
    this.active = true;
  }

  async deactivate(): Promise<void> {
    this.active = false;
    await Promise.all(this.inFlight);
  }

  release(values: readonly V[]): void {
    const ours = values.filter((v) => this.allocator.range.offsetOf(v) !== undefined);
    if (!this.active || ours.length === 0) return;
    const done = this.allocator
      .run((txn) => ours.filter((v) => !this.heldByAService(v) && txn.release(v)).length)
      .then((n) => {
        if (n > 0)
          this.log.v(2).info('released values of a deleted or changed Service', {
            map: this.allocator.name,
            values: ours.map(String),
          });
      })
      .catch((err: unknown) => {
        this.log.info('could not release values at once; the repair loop frees them', {
          map: this.allocator.name,
          err: describeError(err),
        });
      })
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }
}
