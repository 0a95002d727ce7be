/**
 * The pure half of a repair pass: rebuild an allocation map from what the Services hold, say what
 * is wrong with each value, and decide which leaked values may be freed.
 *
 * A value the stored map marks that no Service holds is a leak, but it may also be a create still
 * in flight (allocated by the webhook, not stored yet), so it is kept for three consecutive passes
 * and freed on the third, as kube-apiserver's repair controllers do.
 */
import { RangeAllocator } from './allocator.ts';
import type { ValueRange } from './ranges.ts';

export interface ServiceRef {
  namespace: string;
  name: string;
}

/** One value a Service holds. `value` undefined: the text is no value of this kind at all. */
export interface Claim<V> {
  owner: ServiceRef;
  /** The field and the text as written, for Events: `spec.clusterIPs[1]`, `fd00::5`. */
  field: string;
  text: string;
  value: V | undefined;
  /** The value belongs to a family (or range) that is not configured here. */
  foreign?: boolean;
}

export type RepairProblem =
  /** Unparsable, or of a family no longer configured. */
  | 'invalid'
  /** Outside the configured range. */
  | 'outOfRange'
  /** Held by another Service already (not fixed: a person must recreate one). */
  | 'duplicate'
  /** In range, held by a Service, missing from the stored map: marked now. */
  | 'notAllocated'
  /** No room left to mark it. */
  | 'full';

export interface Finding<V> {
  claim: Claim<V>;
  problem: RepairProblem;
  /** For a duplicate: who holds the value first. */
  heldBy?: ServiceRef;
}

export interface RebuildResult<V> {
  rebuilt: RangeAllocator<V>;
  findings: Finding<V>[];
  /** Leaks kept in the rebuilt map for now (first or second pass). */
  keptLeaks: V[];
  /** Leaks freed by this pass (seen for the third time). */
  freedLeaks: V[];
}

export const PASSES_BEFORE_LEAK_RELEASE = 3;

/** Counts, per leaked value, the passes left before it is freed. Kept by the repair loop. */
export class LeakTracker<V> {
  private readonly left = new Map<V, number>();

  /**
   * Called once per pass for every leaked value: true while it must be kept. A value seen for the
   * first time is kept twice more and freed on the third pass.
   */
  keep(value: V): boolean {
    const left = this.left.get(value) ?? PASSES_BEFORE_LEAK_RELEASE - 1;
    if (left <= 0) {
      this.left.delete(value);
      return false;
    }
    this.left.set(value, left - 1);
    return true;
  }

  /** Forgets every value not in `leaks` (no longer leaked: used again or freed elsewhere). */
  retainOnly(leaks: ReadonlySet<V>): void {
    for (const v of this.left.keys()) if (!leaks.has(v)) this.left.delete(v);
  }

  size(): number {
    return this.left.size;
  }

  /** A copy to decide a pass on; the loop keeps it only once the pass's write succeeded. */
  clone(): LeakTracker<V> {
    const copy = new LeakTracker<V>();
    for (const [v, n] of this.left) copy.left.set(v, n);
    return copy;
  }
}

/**
 * A new map from `claims`, `stored` the map as read (undefined when missing or unreadable: then
 * there is nothing to compare with, so nothing is reported as not allocated or leaked), and
 * `reserved`: values webhook replicas hold in unexpired reservations, kept and never leaks.
 */
export function rebuild<V>(
  range: ValueRange<V>,
  stored: RangeAllocator<V> | undefined,
  claims: readonly Claim<V>[],
  leaks: LeakTracker<V>,
  reserved: readonly V[] = [],
): RebuildResult<V> {
  const rebuilt = new RangeAllocator(range);
  const holders = new Map<number, ServiceRef>();
  const findings: Finding<V>[] = [];
  for (const claim of claims) {
    if (claim.value === undefined || claim.foreign) {
      findings.push({ claim, problem: 'invalid' });
      continue;
    }
    const offset = range.offsetOf(claim.value);
    if (offset === undefined) {
      // Inside the CIDR but past what the map holds (an IPv6 range capped at 65,536): full.
      findings.push({ claim, problem: range.beyondCapacity?.(claim.value) ? 'full' : 'outOfRange' });
      continue;
    }
    const result = rebuilt.allocate(claim.value);
    if (result === 'taken') {
      findings.push({ claim, problem: 'duplicate', heldBy: holders.get(offset) });
      continue;
    }
    holders.set(offset, claim.owner);
    if (stored !== undefined && !stored.has(claim.value)) findings.push({ claim, problem: 'notAllocated' });
  }
  for (const value of reserved) rebuilt.allocate(value);
  const keptLeaks: V[] = [];
  const freedLeaks: V[] = [];
  const leaked = new Set<V>();
  if (stored !== undefined) {
    for (const value of stored.values()) {
      if (rebuilt.has(value)) continue;
      leaked.add(value);
      if (leaks.keep(value)) {
        rebuilt.allocate(value);
        keptLeaks.push(value);
      } else freedLeaks.push(value);
    }
  }
  leaks.retainOnly(leaked);
  return { rebuilt, findings, keptLeaks, freedLeaks };
}
