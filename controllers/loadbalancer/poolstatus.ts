/**
 * Pool status and maps: for one LoadBalancerIPPool, the status (`Ready` and `Conflict`
 * conditions, counts per family and in all), the metrics, and one RangeAllocation per family
 * (`lbpool-<pool>-ipv4`, `-ipv6`: the book's bitmap, the same storage as the ClusterIP maps, so
 * `kubectl get rangeallocations` shows every pool's use).
 *
 * Both are written behind the book, never in the path of a Service's status: the book is rebuilt
 * from Service statuses at start, so these are views of it. Count changes are synced at most
 * every POOL_SYNC_DELAY_MS (controller.ts), and wait while Services are still to be reconciled
 * (at most a minute), so they never take the QPS a Service's status write needs; condition
 * changes go at once; nothing is written when nothing changed. A map another writer replaced is read again and overwritten (409), and the maps
 * of a deleted pool are deleted.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { Clock } from '../../shared/clock.ts';
import type { Reconciler, Request, Result } from '../../shared/controller/reconciler.ts';
import {
  RANGE_ALLOCATION_GROUP,
  RANGE_ALLOCATION_PLURAL,
  RANGE_ALLOCATION_VERSION,
  type RangeAllocation,
  rangeAllocationObject,
  type RangeAllocationStore,
} from '../../shared/allocator/storage.ts';
import type { ReadonlyStore } from '../../shared/informer/store.ts';
import type { KubeClient } from '../../shared/kube/client.ts';
import { isConflict, isNotFound } from '../../shared/kube/errors.ts';
import type { EventRecorder } from '../../shared/kube/events.ts';
import type { Logger } from '../../shared/log.ts';
import type { IPFamily } from '../../shared/net/ip.ts';
import type { AddressBook } from './book.ts';
import type { LoadBalancerMetrics } from './metrics.ts';
import { FAMILIES, type ParsedPool } from './pools.ts';
import {
  type LoadBalancerIPPool,
  type LoadBalancerIPPoolStatus,
  POOL_API_VERSION,
  POOL_KIND,
  type PoolCondition,
  POOL_CONFLICT_CONDITION,
  POOL_GROUP,
  POOL_PLURAL,
  POOL_READY_CONDITION,
  POOL_VERSION,
  type PoolFamilyCounts,
} from './types.ts';

export function poolMapName(pool: string, family: IPFamily): string {
  return `lbpool-${pool}-${family.toLowerCase()}`;
}

/** The pool's status as it should read (pure); transition times kept while a condition holds. */
export function desiredPoolStatus(
  pool: LoadBalancerIPPool,
  parsed: ParsedPool,
  counts: (family: IPFamily) => { total: number; used: number } | undefined,
  now: Date,
): LoadBalancerIPPoolStatus {
  const prior = pool.status?.conditions ?? [];
  const condition = (
    type: string,
    status: 'True' | 'False',
    reason: string,
    message: string,
  ): PoolCondition => {
    const was = prior.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      observedGeneration: pool.metadata.generation,
      lastTransitionTime: was && was.status === status ? was.lastTransitionTime : rfc3339Seconds(now),
    };
  };
  let ready: PoolCondition;
  if (parsed.problems.length > 0) {
    ready = condition(POOL_READY_CONDITION, 'False', 'InvalidAddresses', parsed.problems.join('; '));
  } else if (parsed.conflictsWith !== undefined) {
    ready = condition(
      POOL_READY_CONDITION,
      'False',
      'Conflict',
      `overlaps pool ${parsed.conflictsWith}; skipped`,
    );
  } else if (parsed.disabled) {
    ready = condition(
      POOL_READY_CONDITION,
      'False',
      'Disabled',
      'disabled: hands out no new addresses; Services keep theirs',
    );
  } else {
    ready = condition(
      POOL_READY_CONDITION,
      'True',
      'Ready',
      ['hands out addresses', ...parsed.notes].join('; '),
    );
  }
  const conflict =
    parsed.conflictsWith !== undefined
      ? condition(
          POOL_CONFLICT_CONDITION,
          'True',
          'Overlap',
          `its addresses overlap pool ${parsed.conflictsWith}, which is older; this pool is skipped until the overlap is gone`,
        )
      : condition(POOL_CONFLICT_CONDITION, 'False', 'NoOverlap', 'no other pool holds any of its addresses');
  const status: LoadBalancerIPPoolStatus = {
    conditions: [ready, conflict],
    observedGeneration: pool.metadata.generation,
  };
  let total = 0;
  let used = 0;
  for (const family of FAMILIES) {
    const range = parsed.ranges.get(family);
    if (!range) continue;
    const c = counts(family) ?? { total: range.size, used: 0 };
    const fc: PoolFamilyCounts = { total: c.total, used: c.used, free: c.total - c.used };
    if (family === 'IPv4') status.ipv4 = fc;
    else status.ipv6 = fc;
    total += c.total;
    used += c.used;
  }
  return { ...status, total, used, free: total - used };
}

/** `2026-12-02T03:52:11Z`: metav1.Time's form. */
export function rfc3339Seconds(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** True when `a` and `b` say the same (transition times aside). */
export function poolStatusEqual(
  a: LoadBalancerIPPoolStatus | undefined,
  b: LoadBalancerIPPoolStatus,
): boolean {
  if (!a) return false;
  const counts = (s: LoadBalancerIPPoolStatus): string =>
    JSON.stringify([s.ipv4, s.ipv6, s.total, s.used, s.free, s.observedGeneration]);
  if (counts(a) !== counts(b)) return false;
  return conditionsEqual(a, b);
}

/** True when the conditions of `a` and `b` say the same (transition times aside). */
export function conditionsEqual(a: LoadBalancerIPPoolStatus, b: LoadBalancerIPPoolStatus): boolean {
  const conds = (s: LoadBalancerIPPoolStatus): string =>
    JSON.stringify(
      (s.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration ?? 0]),
    );
  return conds(a) === conds(b);
}

/**
 * The Event a status change deserves: a Warning when the pool stops being usable or is unusable
 * for another reason (Conflict, InvalidAddresses), a Normal one when it becomes Ready again or is
 * disabled; none when its Ready condition says what it said.
 */
export function poolEvent(
  before: LoadBalancerIPPoolStatus | undefined,
  after: LoadBalancerIPPoolStatus,
): { type: 'Normal' | 'Warning'; reason: string; message: string } | undefined {
  const was = before?.conditions?.find((c) => c.type === POOL_READY_CONDITION);
  const now = after.conditions?.find((c) => c.type === POOL_READY_CONDITION);
  if (!now || (was && was.status === now.status && was.reason === now.reason)) return undefined;
  if (now.status === 'True')
    return was ? { type: 'Normal', reason: 'Ready', message: now.message ?? '' } : undefined;
  const type = now.reason === 'Disabled' ? 'Normal' : 'Warning';
  return { type, reason: now.reason ?? 'NotReady', message: now.message ?? '' };
}

export interface PoolStatusReconcilerOptions {
  pools: ReadonlyStore<LoadBalancerIPPool>;
  parsed: () => readonly ParsedPool[];
  book: AddressBook;
  client: KubeClient;
  maps: RangeAllocationStore;
  metrics: LoadBalancerMetrics;
  clock: Clock;
  log: Logger;
  /** Pool Events (Conflict, InvalidAddresses, Ready again); optional for tests. */
  events?: EventRecorder;
  /**
   * True while Services wait to be reconciled: a change of counts only (conditions as they are)
   * then waits, so the pools' writes never take the QPS the Services' status writes need; at most
   * `maxDeferMs` (default 60 s) after the pool last synced.
   */
  busy?: () => boolean;
  maxDeferMs?: number;
}

/** How often a deferred pool looks again whether the Services are done. */
const DEFER_RETRY_MS = 1000;

export class PoolStatusReconciler implements Reconciler {
  private readonly opts: PoolStatusReconcilerOptions;
  private readonly api: CustomObjectsApi;
  /** The map objects as last read or written, by name. */
  private readonly maps = new Map<string, RangeAllocation>();
  /** Families each pool had a map for, to delete what is no longer needed. */
  private readonly families = new Map<string, Set<IPFamily>>();
  /** When each pool last synced (monotonic ms), or first waited. */
  private readonly synced = new Map<string, number>();

  constructor(opts: PoolStatusReconcilerOptions) {
    this.opts = opts;
    this.api = opts.client.api(CustomObjectsApi);
  }

  async reconcile({ name }: Request, signal: AbortSignal): Promise<Result | void> {
    const pool = this.opts.pools.get(name);
    const parsed = this.opts.parsed().find((p) => p.name === name);
    const had = this.families.get(name) ?? new Set<IPFamily>();
    const keep = new Set<IPFamily>(
      pool && parsed && parsed.problems.length === 0 && parsed.conflictsWith === undefined
        ? parsed.ranges.keys()
        : [],
    );
    for (const family of FAMILIES) {
      if (!keep.has(family) && (had.has(family) || !pool)) {
        this.opts.metrics.dropPool(name, family);
        await this.deleteMap(poolMapName(name, family), signal);
      }
    }
    this.families.set(name, keep);
    if (!pool || !parsed) {
      this.families.delete(name);
      this.synced.delete(name);
      return;
    }
    const want = desiredPoolStatus(
      pool,
      parsed,
      (f) => this.opts.book.counts(name, f),
      new Date(this.opts.clock.wallTime()),
    );
    const now = this.opts.clock.now();
    const since = this.synced.get(name);
    if (
      this.opts.busy?.() &&
      pool.status !== undefined &&
      conditionsEqual(pool.status, want) &&
      (since === undefined || now - since < (this.opts.maxDeferMs ?? 60_000))
    ) {
      if (since === undefined) this.synced.set(name, now);
      return { requeueAfterMs: DEFER_RETRY_MS };
    }
    this.synced.set(name, now);
    for (const family of keep) await this.writeMap(name, family, signal);
    for (const family of parsed.ranges.keys()) {
      const c = this.opts.book.counts(name, family);
      if (c) this.opts.metrics.setPool(name, family, c.total, c.used);
    }
    if (poolStatusEqual(pool.status, want)) return;
    try {
      await this.api.patchClusterCustomObjectStatus(
        {
          group: POOL_GROUP,
          version: POOL_VERSION,
          plural: POOL_PLURAL,
          name,
          body: [{ op: 'add', path: '/status', value: want }],
        },
        this.opts.client.withSignal(signal),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return;
    }
    const event = poolEvent(pool.status, want);
    if (event) {
      this.opts.events?.event(
        { kind: POOL_KIND, apiVersion: POOL_API_VERSION, name, uid: pool.metadata.uid },
        event.type,
        event.reason,
        event.message,
      );
    }
  }

  private async writeMap(pool: string, family: IPFamily, signal: AbortSignal): Promise<void> {
    const snap = this.opts.book.snapshot(pool, family);
    if (!snap) return;
    const name = poolMapName(pool, family);
    for (let attempt = 0; ; attempt++) {
      let stored = this.maps.get(name);
      if (!stored) {
        stored = await this.opts.maps.get(name, signal);
        if (stored) this.maps.set(name, stored);
      }
      if (stored && stored.range === snap.snapshot.range && stored.data === snap.snapshot.data) return;
      const next = rangeAllocationObject(
        name,
        snap.snapshot,
        { size: snap.size, used: snap.used },
        stored?.metadata,
      );
      try {
        const written = stored
          ? await this.opts.maps.replace(next, signal)
          : await this.opts.maps.create(next, signal);
        this.maps.set(name, written);
        return;
      } catch (err) {
        this.maps.delete(name);
        if (!isConflict(err) || attempt >= 3) throw err;
      }
    }
  }

  private async deleteMap(name: string, signal: AbortSignal): Promise<void> {
    this.maps.delete(name);
    try {
      await this.api.deleteClusterCustomObject(
        {
          group: RANGE_ALLOCATION_GROUP,
          version: RANGE_ALLOCATION_VERSION,
          plural: RANGE_ALLOCATION_PLURAL,
          name,
        },
        this.opts.client.withSignal(signal),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
