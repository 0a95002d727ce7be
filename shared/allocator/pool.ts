/**
 * A webhook replica's pool of values reserved ahead of demand.
 *
 * Without it, every Service the webhook admits waits for one write of the map, and under load
 * that write is the API server's latency, hundreds of milliseconds on a busy control plane. With
 * it, the replica marks a block of free values in the map as its reservation (one group-committed
 * write), then hands them out one by one with no write at all: each was persisted as allocated
 * before it is handed out, so no other replica can hand it out too, and a refill starts in the
 * background when half the pool is gone.
 *
 * What keeps it right:
 * - only the holder hands out its reserved values, and only until `renewedAt + ttl - margin` by
 *   its own clock; every refill renews the whole reservation;
 * - the repair loop keeps reserved values (they are neither leaks nor reported), drops a
 *   reservation a grace after its expiry, and then frees its unused values as leaks: a replica
 *   that went away loses its pool, nothing else;
 * - a value handed out for a create the API server then failed stays marked until the repair loop
 *   frees it, as any such leak.
 * Small ranges (under 64 values) have no pool, and a refill never takes the range past 90 % used,
 * so the last values are allocated one write at a time by whichever replica asks first.
 */
import type { Clock } from '../clock.ts';
import { describeError } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { MapUnavailableError, type StoredRangeAllocator } from './committer.ts';

export interface ReservedPoolOptions<V> {
  allocator: StoredRangeAllocator<V>;
  /** This replica's identity in the map's reservations. */
  holder: string;
  clock: Clock;
  log: Logger;
  /** Values someone else holds although the map does not mark them (IPAddress objects). */
  skip?: (value: V) => boolean;
  /** How long a reservation holds after its last renewal; default 30 min. */
  ttlMs?: number;
  /** The holder stops handing out this long before the ttl ends; default 5 min. */
  marginMs?: number;
  /** Most values reserved at once; default 64 (fewer for small ranges: 1/64 of the range). */
  maxSize?: number;
}

const MIN_RANGE_FOR_POOL = 64;
const MAX_USE_AFTER_REFILL = 0.9;

export class ReservedPool<V> {
  /** How many values a full pool holds; 0: no pool for this range. */
  readonly capacity: number;
  private readonly opts: ReservedPoolOptions<V>;
  private values: V[] = [];
  /** Wall time until which the values may be handed out. */
  private validUntil = 0;
  private refilling: Promise<void> | undefined;

  constructor(opts: ReservedPoolOptions<V>) {
    this.opts = opts;
    const size = opts.allocator.range.size;
    this.capacity = size < MIN_RANGE_FOR_POOL ? 0 : Math.min(opts.maxSize ?? 64, Math.floor(size / 64));
  }

  /** A reserved value, removed from the pool, or undefined (empty, expired, or no pool). */
  take(): V | undefined {
    if (this.capacity === 0) return undefined;
    let value: V | undefined;
    if (this.usable()) {
      while (this.values.length > 0) {
        const v = this.values.shift()!;
        if (!(this.opts.skip?.(v) ?? false)) {
          value = v;
          break;
        }
      }
    } else this.values = [];
    this.refillIfLow();
    return value;
  }

  /** The value `take` would return, left in the pool (a dry run). */
  peek(): V | undefined {
    if (!this.usable()) return undefined;
    return this.values.find((v) => !(this.opts.skip?.(v) ?? false));
  }

  /** Returns a taken value that was not used after all (the request was denied). */
  giveBack(value: V): void {
    if (this.usable()) this.values.unshift(value);
  }

  /** Resolves once no refill is in flight (tests). */
  async settled(): Promise<void> {
    await this.refilling;
  }

  private usable(): boolean {
    return this.values.length > 0 && this.opts.clock.wallTime() < this.validUntil;
  }

  private refillIfLow(): void {
    // Refill at half: under load a write takes long, and the other half must last until it lands.
    if (this.refilling || this.values.length > this.capacity / 2) return;
    this.refilling = this.refill().finally(() => (this.refilling = undefined));
  }

  private async refill(): Promise<void> {
    const { allocator, holder, clock, log } = this.opts;
    const ttlMs = this.opts.ttlMs ?? 30 * 60_000;
    const renewedAt = clock.wallTime();
    try {
      const fresh = await allocator.run((txn) => {
        // Values still in the local pool stay reserved; handed-out ones drop out of the list.
        const keep = this.values.filter((v) => txn.has(v));
        const room = Math.floor(allocator.range.size * MAX_USE_AFTER_REFILL) - txn.used();
        const want = Math.min(this.capacity - keep.length, room);
        const picked: V[] = [];
        for (let i = 0; i < want; i++) {
          const v = txn.allocateNext(this.opts.skip);
          if (v === undefined) break;
          picked.push(v);
        }
        txn.reserve(holder, {
          values: [...keep, ...picked].map(String),
          renewedAt: new Date(renewedAt).toISOString(),
          ttlSeconds: Math.round(ttlMs / 1000),
        });
        return { keep, picked };
      });
      const kept = new Set(fresh.keep);
      // Values taken while the refill was in flight are not in `keep` any more than in the pool.
      this.values = [...this.values.filter((v) => kept.has(v)), ...fresh.picked];
      this.validUntil = renewedAt + ttlMs - (this.opts.marginMs ?? 5 * 60_000);
    } catch (err) {
      const level = err instanceof MapUnavailableError ? 2 : 0;
      log.v(level).info('could not refill the reserved pool; allocating one write at a time', {
        map: allocator.name,
        err: describeError(err),
      });
    }
  }
}
