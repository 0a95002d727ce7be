/**
 * Canonical Endpoints subsets (upstream's RepackSubsets / SortSubsets), shared by the endpoints
 * controller, which writes them, and the EndpointSlice mirroring controller, which reads
 * hand-written ones; and the semantic equality of two subset lists.
 *
 * Contract of repacking (`repackAddressEntries`, `repackSubsets`):
 * - One address per (IP, pod UID): the first one seen wins. `repackSubsets` compares IPs in
 *   canonical text, so "2001:DB8::1" and "2001:db8::1" are one address.
 * - For a given port, not-ready beats ready: an address not ready anywhere for that port is not
 *   ready for it. Ports are told apart by name, number, protocol (absent is TCP) and appProtocol.
 * - Ports with identical address sets (readiness included) share a subset; addresses offered
 *   without a port (a port `undefined`) make one port-less subset. A subset without any address is
 *   never emitted.
 * - Addresses are sorted by IP string, then an address without targetRef first, then UID.
 *   `repackAddressEntries` sorts ports by name, number, protocol, appProtocol (absent first), and
 *   subsets by their ports (each port is in exactly one subset, so this is a total order; the
 *   port-less subset first). `repackSubsets` keeps the order the mirroring controller has always
 *   used, on which its slices' port order and its event messages depend: ports by the text of
 *   their key, subsets by the text of their ports' keys (the port-less subset last).
 * - Empty lists are omitted, never emitted as `[]`, so the output equals what the API server hands
 *   back after a round trip.
 * - Pure: no mutation of the arguments; the result shares no object with them nor between its
 *   subsets, so callers may modify it.
 */
import type { CoreV1EndpointPort, V1EndpointAddress, V1EndpointSubset } from '@kubernetes/client-node';
import { canonicalIP } from '../net/ip.ts';

/** One (address, port) pair; `port` undefined for an address offered without a port. */
export interface AddressEntry {
  address: V1EndpointAddress;
  ready: boolean;
  port: CoreV1EndpointPort | undefined;
  /** `address`'s (IP, UID) key, when the caller computed it once for many repacks. */
  addressKey?: string;
  /** `port`'s key, likewise. */
  portKey?: string;
}

/** Canonical subsets of (address, port) pairs, in value order (see the module contract). */
export function repackAddressEntries(entries: readonly AddressEntry[]): V1EndpointSubset[] {
  return repack(entries, VALUE_ORDER);
}

/**
 * Canonical subsets of `subsets`, in key-text order (see the module contract): every address of a
 * subset is offered on each of its ports, or without a port when it has none; IPs are put in
 * canonical text when they parse.
 */
export function repackSubsets(subsets: readonly V1EndpointSubset[]): V1EndpointSubset[] {
  const entries: AddressEntry[] = [];
  for (const subset of subsets) {
    const ports: (CoreV1EndpointPort | undefined)[] = subset.ports?.length ? subset.ports : [undefined];
    for (const port of ports) {
      for (const address of subset.addresses ?? []) {
        entries.push({ address: withCanonicalIP(address), ready: true, port });
      }
      for (const address of subset.notReadyAddresses ?? []) {
        entries.push({ address: withCanonicalIP(address), ready: false, port });
      }
    }
  }
  return repack(entries, KEY_TEXT_ORDER);
}

/**
 * Semantic equality of two subset lists: `targetRef.resourceVersion` is ignored, an absent list
 * equals an empty one, an absent string field equals "". The order of subsets, of addresses and of
 * ports carries no meaning and is ignored (Endpoints written by kube-controller-manager order ports
 * and subsets by a hash, ours by value; both must compare equal so that switching controllers does
 * not rewrite every object).
 */
export function subsetsEqual(
  a: readonly V1EndpointSubset[] | undefined,
  b: readonly V1EndpointSubset[] | undefined,
): boolean {
  // Fast path: our own Endpoints come back from the API server in the order we wrote them.
  if (sameInOrder(a ?? [], b ?? [])) return true;
  const left = normalizeSubsets(a ?? []);
  const right = normalizeSubsets(b ?? []);
  if (left.length !== right.length) return false;
  return left.every((subset, i) => compareSubsets(subset, right[i]) === 0);
}

/** A subset of these lists, each left out when empty. */
export function makeSubset(
  addresses: V1EndpointAddress[],
  notReadyAddresses: V1EndpointAddress[],
  ports: CoreV1EndpointPort[],
): V1EndpointSubset {
  const subset: V1EndpointSubset = {};
  if (addresses.length > 0) subset.addresses = addresses;
  if (notReadyAddresses.length > 0) subset.notReadyAddresses = notReadyAddresses;
  if (ports.length > 0) subset.ports = ports;
  return subset;
}

// ---------------------------------------------------------------------------------------------
// Repacking

/** How `repack` sorts the ports of a subset and the subsets. */
export interface SubsetOrder {
  ports: (a: CoreV1EndpointPort, b: CoreV1EndpointPort) => number;
  subsets: (a: V1EndpointSubset, b: V1EndpointSubset) => number;
}

/** Key of the "no port" group; real ports are keyed by their JSON, which never equals this. */
const NO_PORT = '';

/** The (IP, UID) key under which the repack keeps one address. */
export function addressKey(address: V1EndpointAddress): string {
  return `${address.ip}\u0000${address.targetRef?.uid ?? ''}`;
}

/** The key telling ports apart (name, number, protocol, appProtocol). */
export function portKey(port: CoreV1EndpointPort): string {
  return JSON.stringify([port.name ?? '', port.port, port.protocol ?? 'TCP', port.appProtocol ?? null]);
}

/** A shallow copy of `address` with its IP in canonical text, or `address` itself. */
function withCanonicalIP(address: V1EndpointAddress): V1EndpointAddress {
  const parsed = canonicalIP(address.ip);
  return parsed === undefined ? address : { ...address, ip: parsed.address };
}

/**
 * Regroups (address, port) pairs: each address is kept once per (IP, UID) (first one wins), each
 * port maps to a set of addresses where not-ready beats ready, and ports with the same address set
 * (readiness included) share a subset.
 */
function repack(entries: readonly AddressEntry[], order: SubsetOrder): V1EndpointSubset[] {
  const packer = new SubsetPacker();
  packer.add(entries);
  return packer.subsets(order);
}

/**
 * `repackAddressEntries` in pieces: `add` entries any number of times, then `subsets` once, which
 * gives what `repackAddressEntries` would for all the entries added. The per-entry part of the
 * repack is done as entries come, so a caller that adds them in pieces (yielding between them)
 * leaves only the grouping and sorting for the end. The packer keeps the entries' objects and
 * copies them into its result, so the entries may be shared (PodMemo) but must not change.
 */
export class SubsetPacker {
  private readonly addresses = new Map<string, V1EndpointAddress>();
  private readonly byPort = new Map<
    string,
    { port: CoreV1EndpointPort | undefined; ready: Map<string, boolean> }
  >();

  add(entries: readonly AddressEntry[]): void {
    const { addresses, byPort } = this;
    for (const entry of entries) {
      const { address, ready, port } = entry;
      const aKey = entry.addressKey ?? addressKey(address);
      if (!addresses.has(aKey)) addresses.set(aKey, address);
      const pKey = port === undefined ? NO_PORT : (entry.portKey ?? portKey(port));
      let group = byPort.get(pKey);
      if (group === undefined) {
        group = { port, ready: new Map() };
        byPort.set(pKey, group);
      }
      const wasReady = group.ready.get(aKey);
      if (wasReady === undefined || wasReady) group.ready.set(aKey, ready);
    }
  }

  /** The canonical subsets of every entry added, in value order. */
  valueOrderSubsets(): V1EndpointSubset[] {
    return this.subsets(VALUE_ORDER);
  }

  subsets(order: SubsetOrder): V1EndpointSubset[] {
    const { addresses, byPort } = this;
    // Ports with the same address set share a subset. Sets are bucketed by a cheap signature (size,
    // ready count, hash) and compared exactly only within a bucket, so a Service with one port and
    // 10,000 addresses costs no sorting or joining here.
    const groups: { ready: Map<string, boolean>; ports: CoreV1EndpointPort[] }[] = [];
    const bySignature = new Map<string, number[]>();
    for (const { port, ready } of byPort.values()) {
      const signature = byPort.size === 1 ? '' : setSignature(ready);
      const candidates = bySignature.get(signature) ?? [];
      let index = candidates.find((i) => sameReadiness(groups[i].ready, ready));
      if (index === undefined) {
        index = groups.length;
        groups.push({ ready, ports: [] });
        candidates.push(index);
        bySignature.set(signature, candidates);
      }
      if (port !== undefined) groups[index].ports.push({ ...port });
    }

    const subsets: V1EndpointSubset[] = [];
    for (const { ready, ports } of groups) {
      const readyAddrs: V1EndpointAddress[] = [];
      const notReadyAddrs: V1EndpointAddress[] = [];
      for (const [aKey, isReady] of ready) {
        const address = addresses.get(aKey);
        if (address !== undefined) (isReady ? readyAddrs : notReadyAddrs).push(copyAddress(address));
      }
      subsets.push(
        makeSubset(sortAddresses(readyAddrs), sortAddresses(notReadyAddrs), ports.sort(order.ports)),
      );
    }
    return subsets.sort(order.subsets);
  }
}

/** Order-insensitive signature of an address set with readiness; equal sets have equal ones. */
function setSignature(ready: ReadonlyMap<string, boolean>): string {
  let hash = 0;
  let readyCount = 0;
  for (const [key, isReady] of ready) {
    let h = isReady ? 0x9e3779b9 : 0x85ebca6b;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    hash = (hash + h) | 0; // a sum: the order of the entries does not matter
    if (isReady) readyCount++;
  }
  return `${ready.size}:${readyCount}:${hash}`;
}

function sameReadiness(a: ReadonlyMap<string, boolean>, b: ReadonlyMap<string, boolean>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, isReady] of a) if (b.get(key) !== isReady) return false;
  return true;
}

/**
 * Sorts addresses by compareAddresses' order through a precomputed key (IP, then an address
 * without targetRef first, then UID): after the repack no two addresses of a list share IP and UID,
 * so compareAddresses' later tie-breakers never decide, and one string comparison per step does.
 */
function sortAddresses(list: V1EndpointAddress[]): V1EndpointAddress[] {
  const keyed = list.map((a) => ({
    key: `${a.ip}\u0000${a.targetRef === undefined ? 0 : 1}\u0000${a.targetRef?.uid ?? ''}`,
    a,
  }));
  keyed.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  return keyed.map((k) => k.a);
}

function copyAddress(address: V1EndpointAddress): V1EndpointAddress {
  return address.targetRef === undefined
    ? { ...address }
    : { ...address, targetRef: { ...address.targetRef } };
}

// ---------------------------------------------------------------------------------------------
// Ordering and normalization

/** Code-unit order, which for the ASCII of IPs, UIDs and names is Go's byte order. */
export function compareStrings(a: string | undefined, b: string | undefined): number {
  const x = a ?? '';
  const y = b ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareOptional(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? -1 : 1;
  return compareStrings(a, b);
}

function compareLists<T>(a: readonly T[], b: readonly T[], compare: (x: T, y: T) => number): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compare(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * IP string, then pod UID, an address without targetRef first (upstream's order); the remaining
 * fields only break ties. Plain string fields treat absent as "", as Go does; `nodeName` is a
 * pointer upstream, so there absent and "" differ.
 */
function compareAddresses(a: V1EndpointAddress, b: V1EndpointAddress): number {
  return (
    compareStrings(a.ip, b.ip) ||
    Number(a.targetRef !== undefined) - Number(b.targetRef !== undefined) ||
    compareStrings(a.targetRef?.uid, b.targetRef?.uid) ||
    compareStrings(a.hostname, b.hostname) ||
    compareOptional(a.nodeName, b.nodeName) ||
    compareStrings(a.targetRef?.kind, b.targetRef?.kind) ||
    compareStrings(a.targetRef?.namespace, b.targetRef?.namespace) ||
    compareStrings(a.targetRef?.name, b.targetRef?.name) ||
    compareStrings(a.targetRef?.apiVersion, b.targetRef?.apiVersion) ||
    compareStrings(a.targetRef?.fieldPath, b.targetRef?.fieldPath)
  );
}

function comparePorts(a: CoreV1EndpointPort, b: CoreV1EndpointPort): number {
  return (
    compareStrings(a.name, b.name) ||
    a.port - b.port ||
    compareStrings(a.protocol, b.protocol) ||
    compareOptional(a.appProtocol, b.appProtocol)
  );
}

function compareSubsets(a: V1EndpointSubset, b: V1EndpointSubset): number {
  return (
    compareLists(a.ports ?? [], b.ports ?? [], comparePorts) ||
    compareLists(a.addresses ?? [], b.addresses ?? [], compareAddresses) ||
    compareLists(a.notReadyAddresses ?? [], b.notReadyAddresses ?? [], compareAddresses)
  );
}

const VALUE_ORDER: SubsetOrder = { ports: comparePorts, subsets: compareSubsets };

const subsetKey = (subset: V1EndpointSubset): string => JSON.stringify((subset.ports ?? []).map(portKey));

const KEY_TEXT_ORDER: SubsetOrder = {
  ports: (a, b) => compareStrings(portKey(a), portKey(b)),
  subsets: (a, b) => compareStrings(subsetKey(a), subsetKey(b)),
};

function sameInOrder(a: readonly V1EndpointSubset[], b: readonly V1EndpointSubset[]): boolean {
  if (a.length !== b.length) return false;
  return a.every(
    (x, i) =>
      compareLists(x.ports ?? [], b[i].ports ?? [], comparePorts) === 0 &&
      compareLists(x.addresses ?? [], b[i].addresses ?? [], compareAddresses) === 0 &&
      compareLists(x.notReadyAddresses ?? [], b[i].notReadyAddresses ?? [], compareAddresses) === 0,
  );
}

/** Sorted copies, so that two semantically equal lists compare equal element by element. */
function normalizeSubsets(subsets: readonly V1EndpointSubset[]): V1EndpointSubset[] {
  return subsets
    .map((s) => ({
      addresses: [...(s.addresses ?? [])].sort(compareAddresses),
      notReadyAddresses: [...(s.notReadyAddresses ?? [])].sort(compareAddresses),
      ports: [...(s.ports ?? [])].sort(comparePorts),
    }))
    .sort(compareSubsets);
}
