/**
 * LoadBalancerIPPool objects read into what address choice needs: per family, the pool's
 * addresses as one bitmap range (`PoolRange`, the addresses of every CIDR and `a-b` entry of that
 * family, in order), and which pools may be used at all.
 *
 * - Every address of a CIDR is usable (a /30 holds 4), as MetalLB hands them out; `avoidBuggyIPs`
 *   skips IPv4 addresses ending in .0 or .255 when choosing.
 * - Overlapping entries of one pool are merged. A family holds at most 2^20 IPv4 or 65,536 IPv6
 *   addresses (a bitmap of 128 KiB, kept whole in one RangeAllocation); a wider one uses its
 *   first addresses and the pool's Ready condition says so.
 * - Pools that overlap each other: the oldest (then the first by name) keeps its addresses, every
 *   later one that overlaps it is marked `Conflict`, naming it, and is skipped, so a pool never
 *   hands out an address another pool owns. Services keep addresses they already hold.
 * - Order of choice: priority ascending (pools without one after those with one), then name.
 *
 * Pure.
 */
import IPCIDR from 'ip-cidr';
import ipaddr from 'ipaddr.js';
import type { ValueRange } from '../../shared/allocator/ranges.ts';
import type { LabelSelector } from '../../shared/kube/labels.ts';
import { canonicalIP, familyOfText, type IPFamily } from '../../shared/net/ip.ts';
import type { LoadBalancerIPPool } from './types.ts';

export const FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];
const MAX_VALUES: Record<IPFamily, bigint> = { IPv4: 1n << 20n, IPv6: 65_536n };

interface Segment {
  first: bigint;
  last: bigint;
}

/** The addresses of one family of a pool: segments in order, offsets counted across them. */
export class PoolRange implements ValueRange<string> {
  readonly text: string;
  readonly family: IPFamily;
  readonly size: number;
  /** No bands: address choice is lowest-free, never random. */
  readonly bandOffset = 0;
  /** True when the entries hold more than the bitmap does (only the first `size` are used). */
  readonly truncated: boolean;
  private readonly segments: Segment[];
  /** Offset of each segment's first address. */
  private readonly starts: number[];

  constructor(family: IPFamily, segments: readonly Segment[]) {
    const merged = mergeSegments(segments);
    const kept: Segment[] = [];
    let total = 0n;
    let truncated = false;
    for (const s of merged) {
      const room = MAX_VALUES[family] - total;
      if (room <= 0n) {
        truncated = true;
        break;
      }
      const count = s.last - s.first + 1n;
      if (count > room) {
        kept.push({ first: s.first, last: s.first + room - 1n });
        total += room;
        truncated = true;
        break;
      }
      kept.push(s);
      total += count;
    }
    this.family = family;
    this.segments = kept;
    this.truncated = truncated;
    this.size = Number(total);
    this.starts = [];
    let at = 0;
    for (const s of kept) {
      this.starts.push(at);
      at += Number(s.last - s.first + 1n);
    }
    this.text = kept.map((s) => segmentText(s, family)).join(',');
  }

  offsetOf(ip: string): number | undefined {
    const n = ipToBigInt(ip, this.family);
    if (n === undefined) return undefined;
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid];
      if (n < s.first) hi = mid - 1;
      else if (n > s.last) lo = mid + 1;
      else return this.starts[mid] + Number(n - s.first);
    }
    return undefined;
  }

  valueAt(offset: number): string {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return bigIntToIP(this.segments[lo].first + BigInt(offset - this.starts[lo]), this.family);
  }

  contains(ip: string): boolean {
    return this.offsetOf(ip) !== undefined;
  }

  /** The first pair of overlapping addresses with `other`, or undefined. */
  overlaps(other: PoolRange): boolean {
    if (other.family !== this.family) return false;
    for (const a of this.segments) {
      for (const b of other.segments) if (a.first <= b.last && b.first <= a.last) return true;
    }
    return false;
  }
}

export interface ParsedPool {
  name: string;
  /** Only the families the pool has addresses of. */
  ranges: Map<IPFamily, PoolRange>;
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  serviceSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  priority?: number;
  disabled: boolean;
  /** Why the pool cannot be used as written (bad entries); empty when it can. */
  problems: string[];
  /** Kept but worth saying in the Ready condition (a family wider than the bitmap). */
  notes: string[];
  /** The older pool this one overlaps (the pool is then skipped). */
  conflictsWith?: string;
  createdAt: number;
}

/** Reads one pool; entries it cannot read are named in `problems` (the CRD's rules refuse most). */
export function parsePool(pool: LoadBalancerIPPool): ParsedPool {
  const problems: string[] = [];
  const byFamily = new Map<IPFamily, Segment[]>();
  for (const entry of pool.spec?.addresses ?? []) {
    const parsed = parseEntry(entry);
    if (typeof parsed === 'string') {
      problems.push(parsed);
      continue;
    }
    const list = byFamily.get(parsed.family) ?? [];
    list.push(parsed.segment);
    byFamily.set(parsed.family, list);
  }
  if ((pool.spec?.addresses ?? []).length === 0) problems.push('spec.addresses is empty');
  const ranges = new Map<IPFamily, PoolRange>();
  const notes: string[] = [];
  for (const family of FAMILIES) {
    const segments = byFamily.get(family);
    if (!segments) continue;
    const range = new PoolRange(family, segments);
    ranges.set(family, range);
    if (range.truncated) {
      notes.push(
        `only the first ${range.size} ${family} addresses are used (one bitmap holds at most that many)`,
      );
    }
  }
  const spec = pool.spec ?? { addresses: [] };
  return {
    name: pool.metadata.name ?? '',
    ranges,
    autoAssign: spec.autoAssign ?? true,
    avoidBuggyIPs: spec.avoidBuggyIPs ?? false,
    serviceSelector: spec.serviceSelector,
    namespaceSelector: spec.namespaceSelector,
    priority: spec.priority,
    disabled: spec.disabled ?? false,
    problems,
    notes,
    createdAt: Date.parse(String(pool.metadata.creationTimestamp ?? '')) || 0,
  };
}

/**
 * Reads every pool and marks overlaps: in age order (then name), a pool overlapping one already
 * kept gets `conflictsWith` set and is not kept. Pools with problems are never kept and never
 * conflict with others. Returns the pools in choice order (priority, then name).
 */
export function resolvePools(pools: readonly LoadBalancerIPPool[]): ParsedPool[] {
  const parsed = pools.map(parsePool);
  const byAge = [...parsed].sort((a, b) => a.createdAt - b.createdAt || compareNames(a.name, b.name));
  const kept: ParsedPool[] = [];
  for (const pool of byAge) {
    if (pool.problems.length > 0) continue;
    const other = kept.find((k) =>
      [...pool.ranges.values()].some((r) => {
        const theirs = k.ranges.get(r.family);
        return theirs !== undefined && r.overlaps(theirs);
      }),
    );
    if (other) pool.conflictsWith = other.name;
    else kept.push(pool);
  }
  return parsed.sort(choiceOrder);
}

/** A pool that may hand out addresses: readable, not in conflict, not disabled. */
export function usable(pool: ParsedPool): boolean {
  return pool.problems.length === 0 && pool.conflictsWith === undefined && !pool.disabled;
}

/** A pool whose addresses count as ours (held addresses are tracked in it), disabled or not. */
export function owning(pool: ParsedPool): boolean {
  return pool.problems.length === 0 && pool.conflictsWith === undefined;
}

function choiceOrder(a: ParsedPool, b: ParsedPool): number {
  const pa = a.priority ?? Number.POSITIVE_INFINITY;
  const pb = b.priority ?? Number.POSITIVE_INFINITY;
  if (pa !== pb) return pa < pb ? -1 : 1;
  return compareNames(a.name, b.name);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An IPv4 address Windows and some old stacks drop: ending in .0 or .255. */
export function isBuggyIP(ip: string): boolean {
  return !ip.includes(':') && (ip.endsWith('.0') || ip.endsWith('.255'));
}

function parseEntry(entry: string): { family: IPFamily; segment: Segment } | string {
  const text = entry.trim();
  const dash = text.indexOf('-');
  if (dash >= 0) {
    const first = canonicalIP(text.slice(0, dash).trim());
    const last = canonicalIP(text.slice(dash + 1).trim());
    if (!first || !last) return `${JSON.stringify(entry)} is not a range of two addresses (a-b)`;
    if (first.type !== last.type) return `${JSON.stringify(entry)} mixes IPv4 and IPv6`;
    const a = ipToBigInt(first.address, first.type)!;
    const b = ipToBigInt(last.address, last.type)!;
    if (a > b) return `${JSON.stringify(entry)} ends before it starts`;
    return { family: first.type, segment: { first: a, last: b } };
  }
  if (!IPCIDR.isValidCIDR(text)) return `${JSON.stringify(entry)} is not a CIDR or a range of two addresses`;
  const family = familyOfText(text);
  const cidr = new IPCIDR(text);
  const first = cidr.start<bigint>({ type: 'bigInteger' });
  const last = cidr.end<bigint>({ type: 'bigInteger' });
  const given = ipToBigInt(canonicalIP(text.slice(0, text.lastIndexOf('/')))?.address ?? '', family);
  if (given !== first)
    return `${JSON.stringify(entry)} has host bits set; the CIDR is ${segmentText({ first, last }, family)}`;
  return { family, segment: { first, last } };
}

function mergeSegments(segments: readonly Segment[]): Segment[] {
  const sorted = [...segments].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: Segment[] = [];
  for (const s of sorted) {
    const prev = out[out.length - 1];
    if (prev && s.first <= prev.last + 1n) {
      if (s.last > prev.last) prev.last = s.last;
    } else {
      out.push({ ...s });
    }
  }
  return out;
}

/** `a/n` when the segment is exactly one CIDR, else `a-b`. */
function segmentText(s: Segment, family: IPFamily): string {
  const bits = family === 'IPv4' ? 32 : 128;
  const count = s.last - s.first + 1n;
  const isPowerOfTwo = (count & (count - 1n)) === 0n;
  if (isPowerOfTwo && s.first % count === 0n) {
    const prefix = bits - (count.toString(2).length - 1);
    return `${bigIntToIP(s.first, family)}/${prefix}`;
  }
  return `${bigIntToIP(s.first, family)}-${bigIntToIP(s.last, family)}`;
}

function ipToBigInt(ip: string, family: IPFamily): bigint | undefined {
  const parsed = canonicalIP(ip);
  if (!parsed || parsed.type !== family) return undefined;
  let n = 0n;
  for (const b of ipaddr.parse(parsed.address).toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

function bigIntToIP(n: bigint, family: IPFamily): string {
  const count = family === 'IPv4' ? 4 : 16;
  const bytes = new Array<number>(count);
  let rest = n;
  for (let i = count - 1; i >= 0; i--) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return canonicalIP(ipaddr.fromByteArray(bytes).toString())!.address;
}
