/**
 * Churn-minimising placement of a Service's endpoints into slices, for one address type
 * (upstream's reconcileByAddressType / reconcileByPortMapping / finalize, made deterministic).
 *
 * Contract, per group of endpoints sharing a port set:
 * 1. Walk the existing slices we own, by name: keep the endpoints still desired (at their desired
 *    value), drop the rest; an endpoint already kept in an earlier slice is dropped from later
 *    ones. A slice that lost or changed an endpoint, or whose labels differ, is updated; one left
 *    empty is deleted; the others are untouched.
 * 2. Fill the slices being updated anyway, fullest first, up to the maximum.
 * 3. While endpoints remain: when fewer than the maximum remain and an untouched slice has room
 *    for all of them, fill the one that ends closest to full; otherwise start a new slice. So
 *    74 + 74 existing with 152 new gives 74, 74, 100, 52: one new slice beats touching two.
 * Then, for the address type: slices of port sets no longer desired and slices owned by another
 * object (a Service recreated under the same name) are deleted; if nothing would remain, one
 * placeholder slice (no ports, no endpoints) is kept, and an equal existing placeholder is not
 * rewritten; finally a create paired with a delete becomes an update of the deleted slice.
 *
 * New endpoints are added in identity order and kept endpoints keep their position, so the same
 * input always gives the same plan. Pure: cached slices are never mutated (changed slices are
 * copies) and no I/O happens here.
 */
import type { V1Endpoint, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import {
  endpointIdentity,
  endpointsEqualBeyondIdentity,
  portSetKey,
  recycleDeletes,
  type AddressType,
  type SlicePlan,
} from '../../shared/endpoints/slices.ts';
import { labelsEqual } from '../../shared/kube/labels.ts';
import { newSlice, ownedByService, sliceLabels, type EndpointGroup } from './desired.ts';

export interface PlacementInput {
  service: V1Service;
  addressType: AddressType;
  /** Our cached slices of this address type carrying the Service's name label. */
  existing: readonly V1EndpointSlice[];
  /** Desired endpoints of this address type by portSetKey (from desiredEndpointGroups). */
  groups: ReadonlyMap<string, EndpointGroup>;
  maxEndpointsPerSlice: number;
}

export interface PlacementResult extends SlicePlan {
  /** Existing slices left as they are (cache objects: never mutate). */
  unchanged: V1EndpointSlice[];
}

export function placeEndpoints(input: PlacementInput): PlacementResult {
  const { service, addressType, maxEndpointsPerSlice } = input;
  const labels = sliceLabels(service);
  const result: PlacementResult = { creates: [], updates: [], deletes: [], unchanged: [] };

  const ownedByPorts = new Map<string, V1EndpointSlice[]>();
  for (const slice of [...input.existing].sort(compareByName)) {
    if (!ownedByService(slice, service)) {
      result.deletes.push(slice);
      continue;
    }
    const key = portSetKey(slice.ports);
    const list = ownedByPorts.get(key);
    if (list) list.push(slice);
    else ownedByPorts.set(key, [slice]);
  }

  for (const key of [...input.groups.keys()].sort()) {
    const group = input.groups.get(key)!;
    const placed = placeGroup(service, labels, ownedByPorts.get(key) ?? [], group, maxEndpointsPerSlice);
    result.creates.push(...placed.creates);
    result.updates.push(...placed.updates);
    result.deletes.push(...placed.deletes);
    result.unchanged.push(...placed.unchanged);
  }
  for (const [key, slices] of ownedByPorts) {
    if (!input.groups.has(key)) result.deletes.push(...slices);
  }

  if (result.deletes.length === input.existing.length && result.creates.length === 0) {
    const [only] = result.deletes;
    if (result.deletes.length === 1 && isPlaceholderOf(only, service, labels)) {
      result.deletes = [];
      result.unchanged.push(only);
    } else {
      result.creates.push(newSlice(service, addressType, []));
    }
  }

  recycleDeletes(result, (slice) => ownedByService(slice, service));
  return result;
}

function placeGroup(
  service: V1Service,
  labels: Record<string, string>,
  existing: readonly V1EndpointSlice[],
  group: EndpointGroup,
  max: number,
): PlacementResult {
  const remaining = new Map(group.endpoints);
  const updates: V1EndpointSlice[] = [];
  const deletes: V1EndpointSlice[] = [];
  let untouched: V1EndpointSlice[] = [];

  // 1. Keep what is still desired where it already is.
  for (const slice of existing) {
    const kept: V1Endpoint[] = [];
    let changed = false;
    for (const endpoint of slice.endpoints ?? []) {
      const id = endpointIdentity(endpoint);
      const wanted = remaining.get(id);
      if (wanted === undefined) {
        changed = true; // not desired, or already placed in an earlier slice
        continue;
      }
      kept.push(wanted); // desired endpoints are fresh objects, each placed once
      if (!endpointsEqualBeyondIdentity(wanted, endpoint)) changed = true;
      remaining.delete(id);
    }
    if (changed) {
      if (kept.length === 0) deletes.push(slice);
      else updates.push(copySlice(slice, kept, labels));
    } else if (!labelsEqual(slice.metadata?.labels, labels)) {
      updates.push(copySlice(slice, (slice.endpoints ?? []).map(copyEndpoint), labels));
    } else {
      untouched.push(slice);
    }
  }

  const queue = [...remaining.keys()].sort().map((id) => remaining.get(id)!);
  let next = 0;
  const fill = (slice: V1EndpointSlice): void => {
    const endpoints = (slice.endpoints ??= []);
    while (next < queue.length && endpoints.length < max) endpoints.push(queue[next++]);
  };

  // 2. Top up the slices that are written anyway, fullest first.
  const byFullness = [...updates].sort((a, b) => size(b) - size(a) || compareByName(a, b));
  for (const slice of byFullness) fill(slice);

  // 3. The rest: into one untouched slice if it fits, else into new slices.
  const creates: V1EndpointSlice[] = [];
  while (next < queue.length) {
    const left = queue.length - next;
    const target = left < max ? closestToFull(untouched, left, max) : undefined;
    if (target === undefined) {
      const slice = newSlice(service, group.addressType, group.ports);
      fill(slice);
      creates.push(slice);
    } else {
      untouched = untouched.filter((s) => s !== target);
      const slice = copySlice(target, (target.endpoints ?? []).map(copyEndpoint), labels);
      fill(slice);
      updates.push(slice);
    }
  }
  return { creates, updates, deletes, unchanged: untouched };
}

/** The slice that would be closest to full after adding `count` endpoints; first one on ties. */
function closestToFull(
  slices: readonly V1EndpointSlice[],
  count: number,
  max: number,
): V1EndpointSlice | undefined {
  let best: V1EndpointSlice | undefined;
  let bestRoom = max;
  for (const slice of slices) {
    const room = max - (size(slice) + count);
    if (room >= 0 && room < bestRoom) {
      best = slice;
      bestRoom = room;
      if (room === 0) break;
    }
  }
  return best;
}

/**
 * An existing slice equal to the placeholder we would create: ours, no endpoints, no ports and
 * the right labels. Rewriting it would change nothing.
 */
function isPlaceholderOf(
  slice: V1EndpointSlice | undefined,
  service: V1Service,
  labels: Record<string, string>,
): slice is V1EndpointSlice {
  return (
    slice !== undefined &&
    ownedByService(slice, service) &&
    size(slice) === 0 &&
    (slice.ports ?? []).length === 0 &&
    labelsEqual(slice.metadata?.labels, labels)
  );
}

/** A copy of a cached slice with new endpoints and labels (name and resourceVersion kept). */
function copySlice(
  slice: V1EndpointSlice,
  endpoints: V1Endpoint[],
  labels: Record<string, string>,
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { ...structuredClone(slice.metadata ?? {}), labels: { ...labels } },
    addressType: slice.addressType,
    endpoints,
    ports: structuredClone(slice.ports ?? []),
  };
}

function copyEndpoint(endpoint: V1Endpoint): V1Endpoint {
  return structuredClone(endpoint);
}

function size(slice: V1EndpointSlice): number {
  return slice.endpoints?.length ?? 0;
}

function compareByName(a: V1EndpointSlice, b: V1EndpointSlice): number {
  const x = a.metadata?.name ?? '';
  const y = b.metadata?.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}
