/**
 * Topology hints on EndpointSlices, set after placement (Kubernetes 1.31+ topology cache for the
 * Auto topology mode, and the trafficDistribution heuristics).
 *
 * Contract:
 * - `hintModeOf` says which hints a Service asks for; Auto mode takes each zone's share of the
 *   allocatable CPU from zones.ts.
 * - `TopologyHints.reconcile` takes one Service's planned slices of one address type: `creates`
 *   and `updates` are ours and are changed in place; `unchanged` slices are cache objects and are
 *   never changed: one whose hints must change is deep-copied, fixed, and the copy is appended to
 *   `updates`. An unchanged slice whose hints end up as they were is not returned, so a steady
 *   state costs no writes.
 * - Modes: 'none' removes every hint; 'zone' hints each ready endpoint to its own zone; 'node'
 *   does the same and adds its own node; 'auto' hints ready endpoints to zones in proportion to
 *   the zones' CPU, or removes every hint (with a Warning event saying why) when that cannot be
 *   done safely. Endpoints that are not ready never carry hints.
 * - The result depends only on the input (zones in name order, slices and endpoints in the given
 *   order), so the same input always gives the same hints.
 * - Events: Normal `TopologyAwareHintsEnabled` when Auto hints become populated for a Service and
 *   address type, Warning `TopologyAwareHintsDisabled` when Auto mode cannot populate them (every
 *   time) or when a Service that had Auto hints leaves Auto mode (once).
 */
import type { V1Endpoint, V1EndpointHints, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { hintsEqual } from '../../shared/endpoints/slices.ts';

export const TOPOLOGY_MODE_ANNOTATION = 'service.kubernetes.io/topology-mode';
export const DEPRECATED_TOPOLOGY_HINTS_ANNOTATION = 'service.kubernetes.io/topology-aware-hints';

export type HintMode = 'none' | 'auto' | 'zone' | 'node';

/** Largest extra share of traffic, over its CPU share, that a zone's endpoints may receive. */
const OVERLOAD_THRESHOLD = 0.2;

const REASON_ENABLED = 'TopologyAwareHintsEnabled';
const REASON_DISABLED = 'TopologyAwareHintsDisabled';

/**
 * 'auto' when either annotation is "Auto"/"auto" (topology-mode wins when both are set); else
 * 'zone' for spec.trafficDistribution PreferClose or PreferSameZone, 'node' for PreferSameNode;
 * else 'none'.
 */
export function hintModeOf(service: V1Service): HintMode {
  const annotations = service.metadata?.annotations ?? {};
  const topologyMode =
    TOPOLOGY_MODE_ANNOTATION in annotations
      ? annotations[TOPOLOGY_MODE_ANNOTATION]
      : annotations[DEPRECATED_TOPOLOGY_HINTS_ANNOTATION];
  if (topologyMode === 'Auto' || topologyMode === 'auto') return 'auto';
  switch (service.spec?.trafficDistribution) {
    case 'PreferClose':
    case 'PreferSameZone':
      return 'zone';
    case 'PreferSameNode':
      return 'node';
    default:
      return 'none';
  }
}

export interface HintEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface HintsInput {
  /** "namespace/name" of the Service. */
  serviceKey: string;
  mode: HintMode;
  /** 'IPv4' | 'IPv6' */
  addressType: string;
  /** New slices, changed in place. */
  creates: V1EndpointSlice[];
  /** Slices being updated anyway (copies), changed in place. */
  updates: V1EndpointSlice[];
  /** Cache objects: never changed. */
  unchanged: readonly V1EndpointSlice[];
  /** From `zoneCpuRatios`; only Auto mode uses it. */
  cpuRatios: Map<string, number> | undefined;
}

export interface HintsResult {
  creates: V1EndpointSlice[];
  updates: V1EndpointSlice[];
  events: HintEvent[];
}

/** How many endpoints a zone should get hints for. */
interface Allocation {
  minimum: number;
  maximum: number;
  desired: number;
}

/** The hints an endpoint should carry, or undefined for none. */
type HintRule = (endpoint: V1Endpoint) => V1EndpointHints | undefined;

/** An unchanged slice that moved to updates, with the cache object it was copied from. */
interface MovedSlice {
  copy: V1EndpointSlice;
  original: V1EndpointSlice;
}

/**
 * Keeps, per (service, address type), whether Auto hints are currently populated, so that events
 * fire on transitions only.
 */
export class TopologyHints {
  /** serviceKey -> address types with populated Auto hints. */
  private readonly populated = new Map<string, Set<string>>();
  /** "serviceKey addressType" -> why Auto hints are off, so the Warning fires once per reason. */
  private readonly disabledBecause = new Map<string, string>();

  reconcile(input: HintsInput): HintsResult {
    const creates = input.creates;
    const updates = [...input.updates];
    const events: HintEvent[] = [];
    let moved: MovedSlice[];

    if (input.mode === 'auto') {
      const outcome = this.reconcileAuto(input, updates);
      const reasonKey = `${input.serviceKey} ${input.addressType}`;
      if (typeof outcome === 'string') {
        if (this.disabledBecause.get(reasonKey) !== outcome) {
          events.push(disabledEvent(outcome, input.addressType));
        }
        this.disabledBecause.set(reasonKey, outcome);
        this.clear(input.serviceKey, input.addressType);
        moved = applyRule(creates, updates, input.unchanged, () => undefined);
      } else {
        this.disabledBecause.delete(reasonKey);
        if (!this.isPopulated(input.serviceKey, input.addressType)) {
          events.push({
            type: 'Normal',
            reason: REASON_ENABLED,
            message: withAddressType('Topology Aware Hints has been enabled', input.addressType),
          });
        }
        this.markPopulated(input.serviceKey, input.addressType);
        moved = outcome;
      }
    } else {
      this.disabledBecause.delete(`${input.serviceKey} ${input.addressType}`);
      if (this.isPopulated(input.serviceKey, input.addressType)) {
        const why =
          input.mode === 'none'
            ? 'the Service no longer asks for Auto topology mode'
            : 'the Service no longer asks for Auto topology mode, its trafficDistribution applies';
        events.push(disabledEvent(why, input.addressType));
      }
      this.clear(input.serviceKey, input.addressType);
      moved = applyRule(creates, updates, input.unchanged, ruleFor(input.mode));
    }

    // A cache slice whose hints came out as they were needs no write after all.
    const needless = new Set(moved.filter((m) => sameHints(m.copy, m.original)).map((m) => m.copy));
    return { creates, updates: updates.filter((slice) => !needless.has(slice)), events };
  }

  /** Forgets a deleted Service. */
  forget(serviceKey: string): void {
    this.populated.delete(serviceKey);
    for (const key of this.disabledBecause.keys()) {
      if (key.startsWith(`${serviceKey} `)) this.disabledBecause.delete(key);
    }
  }

  /**
   * Auto mode: sets proportional zone hints and returns the unchanged slices moved to `updates`,
   * or returns why hints cannot be set (nothing changed then).
   */
  private reconcileAuto(input: HintsInput, updates: V1EndpointSlice[]): MovedSlice[] | string {
    const all = [...input.creates, ...updates, ...input.unchanged];
    const readyCount = all.reduce((n, slice) => n + endpointsOf(slice).filter(isReady).length, 0);
    const allocations = allocate(readyCount, input.cpuRatios);
    if (typeof allocations === 'string') return allocations;
    if (all.some((slice) => endpointsOf(slice).some((e) => isReady(e) && !e.zone))) {
      return 'one or more ready endpoints have no zone';
    }

    // Unchanged slices keep their hints when those are still valid; the others are redone.
    const hintsByZone = new Map<string, number>();
    const moved: MovedSlice[] = [];
    for (const slice of input.unchanged) {
      const counts = validHintCounts(slice, hintsByZone, allocations);
      if (counts === undefined) {
        const copy = structuredClone(slice);
        updates.push(copy);
        moved.push({ copy, original: slice });
      } else {
        for (const [zone, n] of counts) hintsByZone.set(zone, (hintsByZone.get(zone) ?? 0) + n);
      }
    }
    const allocatable = [...input.creates, ...updates];

    // Every ready endpoint first serves its own zone...
    for (const slice of allocatable) {
      for (const endpoint of endpointsOf(slice)) {
        if (!isReady(endpoint) || !endpoint.zone) {
          delete endpoint.hints;
          continue;
        }
        endpoint.hints = { forZones: [{ name: endpoint.zone }] };
        hintsByZone.set(endpoint.zone, (hintsByZone.get(endpoint.zone) ?? 0) + 1);
      }
    }
    // ...then zones with too many give some to zones with too few.
    const { giving, receiving } = givingAndReceiving(allocations, hintsByZone);
    redistribute(allocatable, giving, receiving);
    return moved;
  }

  private isPopulated(serviceKey: string, addressType: string): boolean {
    return this.populated.get(serviceKey)?.has(addressType) ?? false;
  }

  private markPopulated(serviceKey: string, addressType: string): void {
    const types = this.populated.get(serviceKey) ?? new Set<string>();
    types.add(addressType);
    this.populated.set(serviceKey, types);
  }

  private clear(serviceKey: string, addressType: string): void {
    const types = this.populated.get(serviceKey);
    if (types === undefined) return;
    types.delete(addressType);
    if (types.size === 0) this.populated.delete(serviceKey);
  }
}

function ruleFor(mode: 'none' | 'zone' | 'node'): HintRule {
  if (mode === 'none') return () => undefined;
  return (endpoint) => {
    if (!isReady(endpoint)) return undefined;
    const hints: V1EndpointHints = {};
    if (endpoint.zone) hints.forZones = [{ name: endpoint.zone }];
    if (mode === 'node' && endpoint.nodeName) hints.forNodes = [{ name: endpoint.nodeName }];
    return hints.forZones || hints.forNodes ? hints : undefined;
  };
}

/**
 * Gives every endpoint of `creates` and `updates` the hints `rule` says; copies each unchanged
 * slice with an endpoint whose hints differ from the rule's, fixes the copy and appends it to
 * `updates`. Returns the moved slices.
 */
function applyRule(
  creates: readonly V1EndpointSlice[],
  updates: V1EndpointSlice[],
  unchanged: readonly V1EndpointSlice[],
  rule: HintRule,
): MovedSlice[] {
  for (const slice of [...creates, ...updates]) {
    for (const endpoint of endpointsOf(slice)) setHints(endpoint, rule(endpoint));
  }
  const moved: MovedSlice[] = [];
  for (const original of unchanged) {
    if (endpointsOf(original).every((endpoint) => hintsEqual(endpoint.hints, rule(endpoint)))) continue;
    const copy = structuredClone(original);
    for (const endpoint of endpointsOf(copy)) setHints(endpoint, rule(endpoint));
    updates.push(copy);
    moved.push({ copy, original });
  }
  return moved;
}

/**
 * Per-zone minimum and maximum numbers of hinted endpoints that keep every zone's load within the
 * overload threshold, or why there are none.
 */
function allocate(
  endpointCount: number,
  ratios: Map<string, number> | undefined,
): Map<string, Allocation> | string {
  if (ratios === undefined) {
    return 'insufficient Node information: allocatable CPU or zone not specified on one or more ready Nodes';
  }
  if (ratios.size < 2) return 'ready Nodes are in fewer than 2 zones';
  const counts = `(${endpointCount} endpoints, ${ratios.size} zones)`;
  if (ratios.size > endpointCount) return `insufficient number of endpoints ${counts}`;

  const allocations = new Map<string, Allocation>();
  let minimumTotal = 0;
  for (const zone of [...ratios.keys()].sort(compare)) {
    const desired = (ratios.get(zone) ?? 0) * endpointCount;
    const minimum = Math.ceil(desired * (1 / (1 + OVERLOAD_THRESHOLD)));
    allocations.set(zone, { minimum, maximum: 0, desired: Math.max(desired, minimum) });
    minimumTotal += minimum;
  }
  if (minimumTotal > endpointCount) {
    return `unable to allocate the minimum number of endpoints to each zone without exceeding the overload threshold ${counts}`;
  }
  for (const allocation of allocations.values()) {
    allocation.maximum = allocation.minimum + endpointCount - minimumTotal;
  }
  return allocations;
}

/**
 * Hints per zone of the ready endpoints of a cache slice, or undefined when the slice must be
 * redone: a ready endpoint without exactly one zone hint for an allocated zone (or with a node
 * hint), a not-ready endpoint with hints, or hints pushing a zone (with those counted so far in
 * `alreadyCounted`) over its maximum.
 */
function validHintCounts(
  slice: V1EndpointSlice,
  alreadyCounted: ReadonlyMap<string, number>,
  allocations: ReadonlyMap<string, Allocation>,
): Map<string, number> | undefined {
  const counts = new Map<string, number>();
  for (const endpoint of endpointsOf(slice)) {
    if (!isReady(endpoint)) {
      if (hintsEqual(endpoint.hints, undefined)) continue;
      return undefined;
    }
    const zones = endpoint.hints?.forZones ?? [];
    if (zones.length !== 1 || (endpoint.hints?.forNodes ?? []).length > 0) return undefined;
    const zone = zones[0].name;
    if (!allocations.has(zone)) return undefined;
    counts.set(zone, (counts.get(zone) ?? 0) + 1);
  }
  for (const [zone, n] of counts) {
    const allocation = allocations.get(zone);
    if (allocation === undefined || n + (alreadyCounted.get(zone) ?? 0) > allocation.maximum)
      return undefined;
  }
  return counts;
}

/**
 * How many endpoints each zone with more hints than it should have gives away, and how many each
 * zone with fewer receives: whole endpoints, the largest surplus to the largest deficit first.
 */
function givingAndReceiving(
  allocations: ReadonlyMap<string, Allocation>,
  hintsByZone: ReadonlyMap<string, number>,
): { giving: Map<string, number>; receiving: Map<string, number> } {
  const surplus = new Map<string, number>();
  const deficit = new Map<string, number>();
  for (const [zone, allocation] of allocations) {
    const hinted = hintsByZone.get(zone) ?? 0;
    if (hinted > allocation.desired) surplus.set(zone, hinted - allocation.desired);
    else if (hinted < allocation.desired) deficit.set(zone, allocation.desired - hinted);
  }

  const giving = new Map<string, number>();
  const receiving = new Map<string, number>();
  for (;;) {
    const from = largest(surplus);
    const to = largest(deficit);
    if (from === undefined || to === undefined) break;
    const [fromZone, toGive] = from;
    const [toZone, toReceive] = to;
    if ((toGive < 1 && toReceive < 1) || toGive < 0.5 || toReceive < 0.5) break;
    giving.set(fromZone, (giving.get(fromZone) ?? 0) + 1);
    surplus.set(fromZone, toGive - 1);
    receiving.set(toZone, (receiving.get(toZone) ?? 0) + 1);
    deficit.set(toZone, toReceive - 1);
  }
  return { giving, receiving };
}

/** The entry with the largest positive value, the first zone by name on ties. */
function largest(values: ReadonlyMap<string, number>): [string, number] | undefined {
  let best: [string, number] | undefined;
  for (const zone of [...values.keys()].sort(compare)) {
    const value = values.get(zone) ?? 0;
    if (value > (best?.[1] ?? 0)) best = [zone, value];
  }
  return best;
}

/**
 * Re-hints ready endpoints of giving zones (hinted to their own zone) to receiving zones, walking
 * slices and endpoints in order and receiving zones by name.
 */
function redistribute(
  slices: readonly V1EndpointSlice[],
  giving: Map<string, number>,
  receiving: Map<string, number>,
): void {
  for (const slice of slices) {
    for (const endpoint of endpointsOf(slice)) {
      if (giving.size === 0 || receiving.size === 0) return;
      if (!isReady(endpoint) || !endpoint.zone) continue;
      const toGive = giving.get(endpoint.zone) ?? 0;
      if (toGive <= 0) continue;
      const toZone = [...receiving.keys()].sort(compare).find((zone) => (receiving.get(zone) ?? 0) > 0);
      if (toZone === undefined) return;
      endpoint.hints = { forZones: [{ name: toZone }] };
      decrement(giving, endpoint.zone);
      decrement(receiving, toZone);
    }
  }
}

function decrement(counts: Map<string, number>, zone: string): void {
  const left = (counts.get(zone) ?? 0) - 1;
  if (left > 0) counts.set(zone, left);
  else counts.delete(zone);
}

function endpointsOf(slice: V1EndpointSlice): V1Endpoint[] {
  return slice.endpoints ?? [];
}

function isReady(endpoint: V1Endpoint): boolean {
  return endpoint.conditions?.ready === true;
}

function setHints(endpoint: V1Endpoint, hints: V1EndpointHints | undefined): void {
  if (hints === undefined) delete endpoint.hints;
  else endpoint.hints = hints;
}

function sameHints(a: V1EndpointSlice, b: V1EndpointSlice): boolean {
  return (
    endpointsOf(a).length === endpointsOf(b).length &&
    endpointsOf(a).every((endpoint, i) => hintsEqual(endpoint.hints, endpointsOf(b)[i].hints))
  );
}

function disabledEvent(why: string, addressType: string): HintEvent {
  return {
    type: 'Warning',
    reason: REASON_DISABLED,
    message: withAddressType(`Topology Aware Hints has been disabled: ${why}`, addressType),
  };
}

function withAddressType(message: string, addressType: string): string {
  return `${message}, addressType: ${addressType}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
