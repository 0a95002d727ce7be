/**
 * EndpointSliceTracker: the generation of every slice we last wrote, per owning Service, so that
 * a sync never plans from a cache that has not caught up with our own writes, and so that our own
 * writes coming back through the watch do not trigger another sync (upstream's
 * EndpointSliceTracker).
 *
 * Contract:
 * - `update(slice)` records the slice's generation (the one the API server returned).
 * - `expectDeletion(slice)` marks the slice as one we are deleting.
 * - `staleSlices(key, cached)` says why the cache is stale (undefined when it is not): a cached
 *   slice is older than the one we wrote, the cache still holds a slice we deleted, or it misses
 *   a slice we wrote.
 * - `shouldSync(slice)` (on a watch add/update) is true unless the slice is one we wrote at this
 *   generation or later: someone else changed it, or it is new to us.
 * - `handleDeletion(slice)` (on a watch delete) forgets the slice and returns true when we
 *   expected the deletion, false when someone else deleted it (the Service needs a sync).
 * Slices are keyed by UID; Services by "namespace/name" (for mirroring: the Endpoints' key).
 */
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { LABEL_SERVICE_NAME } from './slices.ts';

const DELETION_EXPECTED = -1;
/** Re-check delay of a Service whose slice cache lagged, should no watch event wake it earlier. */
export const STALE_CACHE_RECHECK_MS = 1000;
/** After this long a lagging cache is taken as it is (our records are dropped): never wait forever. */
export const STALE_CACHE_MAX_WAIT_MS = 30_000;

export class EndpointSliceTracker {
  private readonly byService = new Map<string, Map<string, number>>();
  /** serviceKey -> when a sync first found its cache stale. */
  private readonly waitingSince = new Map<string, number>();

  has(slice: V1EndpointSlice): boolean {
    const uid = slice.metadata?.uid;
    return uid !== undefined && this.byService.get(serviceKeyOf(slice))?.has(uid) === true;
  }

  shouldSync(slice: V1EndpointSlice): boolean {
    const uid = slice.metadata?.uid;
    const generation = this.byService.get(serviceKeyOf(slice))?.get(uid ?? '');
    if (generation === undefined) return true;
    return generation < (slice.metadata?.generation ?? 0);
  }

  staleSlices(serviceKey: string, cached: readonly V1EndpointSlice[]): string | undefined {
    const generations = this.byService.get(serviceKey);
    if (generations === undefined) return undefined;
    const provided = new Set<string>();
    for (const slice of cached) {
      const uid = slice.metadata?.uid ?? '';
      provided.add(uid);
      const generation = generations.get(uid);
      const name = slice.metadata?.name ?? '';
      if (generation === DELETION_EXPECTED) return `it still holds ${name}, which we deleted`;
      if (generation !== undefined && generation > (slice.metadata?.generation ?? 0)) {
        return `it holds ${name} at generation ${slice.metadata?.generation ?? 0}, we wrote ${generation}`;
      }
    }
    for (const [uid, generation] of generations) {
      if (generation !== DELETION_EXPECTED && !provided.has(uid)) {
        return `it misses the slice with UID ${uid}, which we wrote`;
      }
    }
    return undefined;
  }

  update(slice: V1EndpointSlice): void {
    const uid = slice.metadata?.uid;
    if (uid === undefined) return;
    this.generationsOf(serviceKeyOf(slice)).set(uid, slice.metadata?.generation ?? 0);
  }

  expectDeletion(slice: V1EndpointSlice): void {
    const uid = slice.metadata?.uid;
    if (uid === undefined) return;
    this.generationsOf(serviceKeyOf(slice)).set(uid, DELETION_EXPECTED);
  }

  handleDeletion(slice: V1EndpointSlice): boolean {
    const key = serviceKeyOf(slice);
    const generations = this.byService.get(key);
    const uid = slice.metadata?.uid ?? '';
    const generation = generations?.get(uid);
    if (generations === undefined || generation === undefined) return true;
    generations.delete(uid);
    if (generations.size === 0) this.byService.delete(key);
    return generation === DELETION_EXPECTED;
  }

  /** Forgets the slice under its current Service key (its labels moved it elsewhere). */
  forget(slice: V1EndpointSlice): void {
    const key = serviceKeyOf(slice);
    const generations = this.byService.get(key);
    generations?.delete(slice.metadata?.uid ?? '');
    if (generations?.size === 0) this.byService.delete(key);
  }

  deleteService(serviceKey: string): void {
    this.byService.delete(serviceKey);
    this.waitingSince.delete(serviceKey);
  }

  /**
   * A sync of the Service found the cache stale. A stale cache is not a failure: the watch is about
   * to deliver our own writes, and the controller re-queues the Service when one of its slices
   * arrives (`isWaitingForCache`); the returned delay is only a safety net. After
   * STALE_CACHE_MAX_WAIT_MS the records of the Service are dropped (something other than lag,
   * e.g. a slice relabelled by hand, keeps them from matching) and the next sync plans from the
   * cache as it is; a conflicting write then fails with 409 and is retried.
   */
  waitForCache(serviceKey: string, nowMs: number): { requeueAfterMs: number; gaveUp: boolean } {
    const since = this.waitingSince.get(serviceKey) ?? nowMs;
    if (nowMs - since >= STALE_CACHE_MAX_WAIT_MS) {
      this.deleteService(serviceKey);
      return { requeueAfterMs: 0, gaveUp: true };
    }
    this.waitingSince.set(serviceKey, since);
    return { requeueAfterMs: STALE_CACHE_RECHECK_MS, gaveUp: false };
  }

  isWaitingForCache(serviceKey: string): boolean {
    return this.waitingSince.has(serviceKey);
  }

  /** A sync of the Service found the cache fresh. */
  cacheCaughtUp(serviceKey: string): void {
    this.waitingSince.delete(serviceKey);
  }

  private generationsOf(serviceKey: string): Map<string, number> {
    let generations = this.byService.get(serviceKey);
    if (generations === undefined) {
      generations = new Map();
      this.byService.set(serviceKey, generations);
    }
    return generations;
  }
}

/** "namespace/service-name" of a slice, from its label. */
export function serviceKeyOf(slice: V1EndpointSlice): string {
  return `${slice.metadata?.namespace ?? ''}/${slice.metadata?.labels?.[LABEL_SERVICE_NAME] ?? ''}`;
}
