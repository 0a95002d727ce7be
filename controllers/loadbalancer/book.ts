/**
 * The address book: which Service holds which load-balancer address, kept in memory by the leader.
 *
 * Truth is the Services' `status.loadBalancer.ingress`: at start the book is filled from them
 * (oldest Service first) before anything new is assigned, so a restart or a new leader never
 * moves an address. Afterwards it changes only through `assign` and `release`, which the
 * reconciler calls synchronously before it writes, so two workers never pick the same address.
 *
 * Per pool and family it keeps a bitmap (the RangeAllocator of shared/allocator, mirrored into a
 * RangeAllocation for `kubectl get`), rebuilt whenever the pools change; an address held in no
 * pool (its pool was deleted or shrunk) stays in the book, so no pool hands it out again while a
 * Service holds it. Pure.
 */
import ipaddr from 'ipaddr.js';
import { RangeAllocator } from '../../shared/allocator/allocator.ts';
import type { RangeSnapshot } from '../../shared/allocator/allocator.ts';
import { familyOfText, type IPFamily } from '../../shared/net/ip.ts';
import { owning, type ParsedPool, type PoolRange } from './pools.ts';
import type { SharingProfile } from './sharing.ts';

interface PoolFamily {
  pool: string;
  range: PoolRange;
  allocator: RangeAllocator<string>;
  /** No free offset below this one (lowest-free scans start here). */
  cursor: number;
}

export interface BookView {
  holdersOf(ip: string): ReadonlyMap<string, SharingProfile>;
  addressesOf(key: string): readonly string[] | undefined;
  /** The pool (by name) whose addresses include `ip`, among the pools the book was given. */
  poolOf(ip: string): string | undefined;
  /** The lowest address of the pool's family held by no one, skipping `skip`. */
  lowestFree(pool: string, family: IPFamily, skip?: (ip: string) => boolean): string | undefined;
  /** Addresses of the pool's family that are held, and in all. */
  counts(pool: string, family: IPFamily): { total: number; used: number } | undefined;
  /** Held addresses one of whose holders carries `sharingKey`, lowest first. */
  sharedAddresses(sharingKey: string): string[];
}

export class AddressBook implements BookView {
  private readonly holders = new Map<string, Map<string, SharingProfile>>();
  private readonly byKey = new Map<string, string[]>();
  private families = new Map<string, PoolFamily>();
  private readonly onChange: (pool: string) => void;

  /** `onChange(pool)` is called whenever the addresses held in `pool` change. */
  constructor(onChange: (pool: string) => void = () => {}) {
    this.onChange = onChange;
  }

  /** Replaces the pools: every owning pool gets a bitmap of the addresses held in it. */
  setPools(pools: readonly ParsedPool[]): void {
    const next = new Map<string, PoolFamily>();
    for (const pool of pools) {
      if (!owning(pool)) continue;
      for (const [family, range] of pool.ranges) {
        next.set(familyKey(pool.name, family), {
          pool: pool.name,
          range,
          allocator: new RangeAllocator(range),
          cursor: 0,
        });
      }
    }
    this.families = next;
    for (const ip of this.holders.keys()) this.familyOf(ip)?.allocator.allocate(ip);
  }

  holdersOf(ip: string): ReadonlyMap<string, SharingProfile> {
    return this.holders.get(ip) ?? EMPTY;
  }

  addressesOf(key: string): readonly string[] | undefined {
    return this.byKey.get(key);
  }

  poolOf(ip: string): string | undefined {
    return this.familyOf(ip)?.pool;
  }

  lowestFree(pool: string, family: IPFamily, skip?: (ip: string) => boolean): string | undefined {
    const pf = this.families.get(familyKey(pool, family));
    if (!pf) return undefined;
    let lowestClear: number | undefined;
    for (let offset = pf.cursor; offset < pf.range.size; offset++) {
      const ip = pf.range.valueAt(offset);
      if (pf.allocator.has(ip)) continue;
      lowestClear ??= offset;
      if (skip?.(ip)) continue;
      pf.cursor = lowestClear;
      return ip;
    }
    pf.cursor = lowestClear ?? pf.range.size;
    return undefined;
  }

  counts(pool: string, family: IPFamily): { total: number; used: number } | undefined {
    const pf = this.families.get(familyKey(pool, family));
    return pf && { total: pf.range.size, used: pf.allocator.used() };
  }

  /** The bitmap of a pool's family, for its RangeAllocation. */
  snapshot(
    pool: string,
    family: IPFamily,
  ): { snapshot: RangeSnapshot; size: number; used: number } | undefined {
    const pf = this.families.get(familyKey(pool, family));
    return pf && { snapshot: pf.allocator.snapshot(), size: pf.range.size, used: pf.allocator.used() };
  }

  /**
   * Makes `addresses` the ones `profile.key` holds (its profile updated on each); returns the
   * addresses it no longer holds that no one holds now (free again).
   */
  assign(addresses: readonly string[], profile: SharingProfile): string[] {
    const before = this.byKey.get(profile.key) ?? [];
    for (const ip of addresses) {
      let map = this.holders.get(ip);
      if (!map) {
        map = new Map();
        this.holders.set(ip, map);
        const pf = this.familyOf(ip);
        if (pf) {
          pf.allocator.allocate(ip);
          this.markChanged(pf.pool);
        }
      }
      map.set(profile.key, profile);
    }
    this.byKey.set(profile.key, [...addresses]);
    return this.drop(
      profile.key,
      before.filter((ip) => !addresses.includes(ip)),
    );
  }

  /** Forgets what `key` holds; returns the addresses that became free. */
  release(key: string): string[] {
    const before = this.byKey.get(key);
    if (!before) return [];
    this.byKey.delete(key);
    return this.drop(key, before);
  }

  sharedAddresses(sharingKey: string): string[] {
    const out: string[] = [];
    for (const [ip, map] of this.holders) {
      for (const profile of map.values()) {
        if (profile.sharingKey === sharingKey) {
          out.push(ip);
          break;
        }
      }
    }
    return out.sort(compareAddresses);
  }

  /** Keys of every Service holding an address. */
  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  private markChanged(pool: string): void {
    this.onChange(pool);
  }

  private drop(key: string, addresses: readonly string[]): string[] {
    const freed: string[] = [];
    for (const ip of addresses) {
      const map = this.holders.get(ip);
      if (!map) continue;
      map.delete(key);
      if (map.size > 0) continue;
      this.holders.delete(ip);
      freed.push(ip);
      const pf = this.familyOf(ip);
      if (pf) {
        pf.allocator.release(ip);
        pf.cursor = Math.min(pf.cursor, pf.range.offsetOf(ip) ?? pf.cursor);
        this.markChanged(pf.pool);
      }
    }
    return freed;
  }

  private familyOf(ip: string): PoolFamily | undefined {
    const family = familyOfText(ip);
    for (const pf of this.families.values()) {
      if (pf.range.family === family && pf.range.contains(ip)) return pf;
    }
    return undefined;
  }
}

/** IPv4 before IPv6, then numerically. */
export function compareAddresses(a: string, b: string): number {
  const fa = familyOfText(a);
  const fb = familyOfText(b);
  if (fa !== fb) return fa === 'IPv4' ? -1 : 1;
  const ba = ipaddr.parse(a).toByteArray();
  const bb = ipaddr.parse(b).toByteArray();
  for (let i = 0; i < ba.length; i++) if (ba[i] !== bb[i]) return ba[i] - bb[i];
  return 0;
}

const EMPTY: ReadonlyMap<string, SharingProfile> = new Map();

function familyKey(pool: string, family: IPFamily): string {
  return `${pool}/${family}`;
}
