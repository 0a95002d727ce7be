/**
 * A stored range allocator with group commit.
 *
 * Every operation is a read-modify-write of the range's RangeAllocation. Operations that arrive
 * while a write is in flight wait for it and then go out together in the next one, as a database
 * groups commits: 50 concurrent admission requests cost a handful of writes, not 50 rounds of
 * 409s. Within a batch, operations apply in arrival order, each to the result of the ones before;
 * one that throws has its own changes undone and fails alone.
 *
 * The object last read or written is kept and used for the next batch; when another writer (a
 * second replica, the repair loop) got there first the replace answers 409 and the whole batch is
 * redone on a fresh read, so a requested value then reports "taken" and `allocateNext` picks
 * another. A batch that changes nothing (every value taken, or the range full) is answered only
 * from a fresh read, never from the kept copy. Results are delivered only once the write that
 * holds them has succeeded.
 *
 * The map is never created here: only the repair loop creates it, from the Services that exist,
 * so an empty map never hands out a value already in use.
 */
import type { Clock } from '../clock.ts';
import { describeError, isConflict } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { type AllocateResult, RangeAllocator, RestoreError } from './allocator.ts';
import type { ValueRange } from './ranges.ts';
import {
  type RangeAllocation,
  type RangeAllocationStore,
  rangeAllocationObject,
  type Reservation,
} from './storage.ts';

/** The map cannot serve requests: missing, kept for another range, or unreadable. */
export class MapUnavailableError extends Error {
  readonly mapName: string;

  constructor(mapName: string, message: string) {
    super(message);
    this.name = 'MapUnavailableError';
    this.mapName = mapName;
  }
}

/**
 * What an operation sees: the allocator as of the operations before it in the batch. Every change
 * is journalled so a failing operation's changes can be undone.
 */
export class Transaction<V> {
  private readonly allocator: RangeAllocator<V>;
  private readonly journal: { value: V; allocated: boolean }[] = [];
  private readonly reservations: Map<string, Reservation>;
  private readonly reservationJournal: { holder: string; before: Reservation | undefined }[] = [];

  constructor(allocator: RangeAllocator<V>, reservations: Map<string, Reservation> = new Map()) {
    this.allocator = allocator;
    this.reservations = reservations;
  }

  /** Sets (or, with no values, drops) `holder`'s reservation; the values must be allocated. */
  reserve(holder: string, reservation: Omit<Reservation, 'holder'>): void {
    this.reservationJournal.push({ holder, before: this.reservations.get(holder) });
    if (reservation.values.length === 0) this.reservations.delete(holder);
    else this.reservations.set(holder, { holder, ...reservation });
  }

  get range(): ValueRange<V> {
    return this.allocator.range;
  }

  allocate(value: V): AllocateResult {
    const result = this.allocator.allocate(value);
    if (result === 'allocated') this.journal.push({ value, allocated: true });
    return result;
  }

  allocateNext(skip?: (value: V) => boolean): V | undefined {
    const value = this.allocator.allocateNext(skip);
    if (value !== undefined) this.journal.push({ value, allocated: true });
    return value;
  }

  /**
   * Frees `value`, and takes it out of any reservation: a value a Service held was handed out,
   * so no pool holds it any more, and a stale listing would have the repair loop keep it.
   */
  release(value: V): boolean {
    const released = this.allocator.release(value);
    if (released) {
      this.journal.push({ value, allocated: false });
      const text = String(value);
      for (const [holder, r] of this.reservations) {
        if (r.values.includes(text))
          this.reserve(holder, { ...r, values: r.values.filter((v) => v !== text) });
      }
    }
    return released;
  }

  has(value: V): boolean {
    return this.allocator.has(value);
  }

  used(): number {
    return this.allocator.used();
  }

  get changed(): boolean {
    return this.journal.length > 0 || this.reservationJournal.length > 0;
  }

  undo(): void {
    for (const change of this.journal.reverse()) {
      if (change.allocated) this.allocator.release(change.value);
      else this.allocator.allocate(change.value);
    }
    this.journal.length = 0;
    for (const { holder, before } of this.reservationJournal.reverse()) {
      if (before) this.reservations.set(holder, before);
      else this.reservations.delete(holder);
    }
    this.reservationJournal.length = 0;
  }
}

export type Operation<V, R> = (txn: Transaction<V>) => R;

export interface RunOptions {
  /** Apply to a copy of the stored map and write nothing (a dry-run admission request). */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface CommitInfo {
  before: RangeAllocation;
  after: RangeAllocation;
  /** Operations that went out in this write. */
  operations: number;
}

export interface StoredRangeAllocatorOptions<V> {
  /** The RangeAllocation's name, e.g. `serviceips-ipv4`. */
  name: string;
  range: ValueRange<V>;
  store: RangeAllocationStore;
  clock: Clock;
  log: Logger;
  random?: () => number;
  /** Called after every successful write (metrics, utilisation Events). */
  onCommit?: (info: CommitInfo) => void;
  /** Writes that fail with something else than a 409 are retried this many times; default 5. */
  maxTransientRetries?: number;
  /** Redos after a 409 before the batch fails; default 20. */
  maxConflictRetries?: number;
}

interface Pending<V> {
  op: Operation<V, unknown>;
  signal?: AbortSignal;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const TRANSIENT_BACKOFF_MS = 100;

export class StoredRangeAllocator<V> {
  readonly name: string;
  readonly range: ValueRange<V>;
  private readonly opts: StoredRangeAllocatorOptions<V>;
  private cached: RangeAllocation | undefined;
  private queue: Pending<V>[] = [];
  private committing = false;
  /** Writes that went out, and batches redone after a 409, for tests. */
  writes = 0;
  conflicts = 0;

  constructor(opts: StoredRangeAllocatorOptions<V>) {
    this.name = opts.name;
    this.range = opts.range;
    this.opts = opts;
  }

  /** Runs `op` in the next group commit and resolves with its result once the write succeeded. */
  run<R>(op: Operation<V, R>, opts: RunOptions = {}): Promise<R> {
    if (opts.dryRun) return this.dryRun(op, opts.signal);
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, signal: opts.signal, resolve: resolve as (v: unknown) => void, reject });
      if (!this.committing) void this.drain();
    });
  }

  private async dryRun<R>(op: Operation<V, R>, signal?: AbortSignal): Promise<R> {
    const stored = this.cached ?? (await this.load(signal));
    const reservations = new Map((stored.reservations ?? []).map((r) => [r.holder, { ...r }]));
    return op(new Transaction(this.restore(stored), reservations));
  }

  private async drain(): Promise<void> {
    this.committing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.commit(batch);
      }
    } finally {
      this.committing = false;
    }
  }

  private async commit(batch: Pending<V>[]): Promise<void> {
    let conflicts = 0;
    let transient = 0;
    const maxConflicts = this.opts.maxConflictRetries ?? 20;
    const maxTransient = this.opts.maxTransientRetries ?? 5;
    for (;;) {
      const live = batch.filter((p) => {
        if (!p.signal?.aborted) return true;
        p.reject(p.signal.reason);
        return false;
      });
      batch = live;
      if (batch.length === 0) return;
      let before: RangeAllocation;
      let allocator: RangeAllocator<V>;
      const fromCache = this.cached !== undefined;
      try {
        before = this.cached ?? (await this.load());
        allocator = this.restore(before);
      } catch (err) {
        this.cached = undefined;
        if (err instanceof MapUnavailableError || transient >= maxTransient) {
          for (const p of batch) p.reject(err);
          return;
        }
        transient++;
        await this.opts.clock.sleep(TRANSIENT_BACKOFF_MS * 2 ** transient);
        continue;
      }
      const reservations = new Map((before.reservations ?? []).map((r) => [r.holder, { ...r }]));
      const outcomes = batch.map((p) => {
        const txn = new Transaction(allocator, reservations);
        try {
          return { ok: true as const, value: p.op(txn), changed: txn.changed };
        } catch (err) {
          txn.undo();
          return { ok: false as const, err, changed: false };
        }
      });
      const settle = (): void =>
        outcomes.forEach((o, i) => (o.ok ? batch[i].resolve(o.value) : batch[i].reject(o.err)));
      if (!outcomes.some((o) => o.changed)) {
        // Nothing to write, so no 409 would tell a stale copy: a "taken" or "full" answered from
        // the kept copy is checked again on a fresh read (another writer may have freed values).
        if (fromCache) {
          this.cached = undefined;
          continue;
        }
        settle();
        return;
      }
      const next = rangeAllocationObject(
        this.name,
        allocator.snapshot(),
        { size: allocator.size(), used: allocator.used() },
        before.metadata,
        [...reservations.values()],
      );
      try {
        const after = await this.opts.store.replace(next);
        this.writes++;
        this.cached = after;
        settle();
        this.opts.onCommit?.({ before, after, operations: batch.length });
        return;
      } catch (err) {
        this.cached = undefined;
        if (isConflict(err) && conflicts < maxConflicts) {
          conflicts++;
          this.conflicts++;
          continue;
        }
        if (!isConflict(err) && transient < maxTransient) {
          transient++;
          this.opts.log.info('allocation map write failed; retrying', {
            map: this.name,
            err: describeError(err),
            attempt: transient,
          });
          await this.opts.clock.sleep(TRANSIENT_BACKOFF_MS * 2 ** transient);
          continue;
        }
        for (const p of batch) p.reject(err);
        return;
      }
    }
  }

  private async load(signal?: AbortSignal): Promise<RangeAllocation> {
    const obj = await this.opts.store.get(this.name, signal);
    if (!obj) {
      throw new MapUnavailableError(
        this.name,
        `the allocation map RangeAllocation ${this.name} does not exist yet (the leader's repair loop creates it from the Services at start)`,
      );
    }
    this.cached = obj;
    return obj;
  }

  private restore(obj: RangeAllocation): RangeAllocator<V> {
    const allocator = new RangeAllocator(this.range, this.opts.random);
    try {
      allocator.restore(obj);
    } catch (err) {
      if (!(err instanceof RestoreError)) throw err;
      throw new MapUnavailableError(
        this.name,
        `the allocation map RangeAllocation ${this.name} cannot be used (${err.message}); the repair loop rebuilds it from the Services`,
      );
    }
    return allocator;
  }
}
