/**
 * The Endpoints a Service should have, as a pure function of the Service and its Pods.
 *
 * Contract (the behaviour of kube-controller-manager's endpoint controller, Kubernetes 1.31+,
 * "Sync of one Service" steps 2-10 of the Endpoints spec):
 * - `desiredEndpoints` returns `undefined` for Services this controller does not manage
 *   (type ExternalName, or no / empty selector); otherwise the canonical subsets, the labels and
 *   whether the address cap truncated the result.
 * - Canonical means: one address per (IP, pod UID); for a given port not-ready beats ready; ports
 *   with identical address sets share a subset; addresses sorted by IP string then UID; ports by
 *   name, port, protocol, appProtocol; subsets by their ports (each port is in exactly one
 *   subset, so this is a total order). Empty lists are omitted, never emitted as `[]`, so the
 *   output equals what the API server hands back after a round trip.
 * - The output depends only on the set of inputs: any order of `pods` gives the same bytes.
 * - No I/O, no clock, no mutation of the arguments; the result shares no object with them nor
 *   between its subsets, so callers may modify it.
 */
import type {
  CoreV1EndpointPort,
  V1EndpointAddress,
  V1EndpointSubset,
  V1ObjectReference,
  V1Pod,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { serviceSelectorMatches } from '../../shared/kube/labels.ts';
import {
  findPort,
  isPodReady,
  podIPList,
  shouldPodBeInEndpoints,
  shouldSetHostname,
} from '../../shared/endpoints/pods.ts';

/** Label put on every Endpoints this controller writes. */
export const MANAGED_BY_LABEL = 'endpoints.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'endpoint-controller';
/** Label (value "") put on the Endpoints of a headless Service (no ClusterIP). */
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';
/** Annotation set to `OVER_CAPACITY_VALUE` when addresses were cut to the cap. */
export const OVER_CAPACITY_ANNOTATION = 'endpoints.kubernetes.io/over-capacity';
export const OVER_CAPACITY_VALUE = 'truncated';
/** Annotation holding the time of the change that triggered the last write (RFC3339Nano). */
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';
/** Most addresses (ready + not ready, counted per subset) one Endpoints may hold. */
export const MAX_ENDPOINTS_ADDRESSES = 1000;

export interface DesiredEndpoints {
  subsets: V1EndpointSubset[];
  labels: Record<string, string>;
  /** True when addresses were dropped to respect the cap (set the over-capacity annotation). */
  overCapacity: boolean;
}

export interface DesiredEndpointsOptions {
  /** Address cap; default `MAX_ENDPOINTS_ADDRESSES`. */
  maxAddresses?: number;
}

/**
 * The Endpoints for `service`, or `undefined` when it is not ours to manage.
 *
 * `pods` are the Pods of the Service's namespace that match its selector; the selector and the
 * phase / IP / deletion rules are checked again here, so passing extra pods is harmless.
 */
export function desiredEndpoints(
  service: V1Service,
  pods: readonly V1Pod[],
  opts: DesiredEndpointsOptions = {},
): DesiredEndpoints | undefined {
  const spec = service.spec;
  if (spec === undefined || spec.type === 'ExternalName') return undefined;
  const selector = spec.selector;
  if (selector === undefined || Object.keys(selector).length === 0) return undefined;

  const publishNotReady = spec.publishNotReadyAddresses === true;
  const servicePorts = spec.ports ?? [];
  const entries: AddressEntry[] = [];
  for (const pod of [...pods].sort(comparePods)) {
    if (!serviceSelectorMatches(selector, pod.metadata?.labels)) continue;
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const ip = endpointIP(service, pod);
    if (ip === undefined) continue;
    const address = endpointAddress(service, pod, ip);
    const ready = publishNotReady || isPodReady(pod);
    if (servicePorts.length === 0) {
      // Only a headless Service may have no ports; any other gets no addresses at all.
      if (spec.clusterIP === 'None') entries.push({ address, ready, port: undefined });
      continue;
    }
    for (const servicePort of servicePorts) {
      const portNumber = findPort(pod, servicePort);
      if (portNumber === undefined) continue;
      entries.push({ address, ready, port: endpointPort(servicePort, portNumber) });
    }
  }

  const { subsets, truncated } = truncateSubsets(
    repackSubsets(entries),
    opts.maxAddresses ?? MAX_ENDPOINTS_ADDRESSES,
  );
  return { subsets, labels: endpointsLabels(service), overCapacity: truncated };
}

/**
 * The labels an Endpoints must carry: exactly the Service's, plus the headless marker when the
 * Service has no ClusterIP (removed otherwise, even if the Service carries it), plus managed-by.
 */
export function endpointsLabels(service: V1Service): Record<string, string> {
  const labels: Record<string, string> = { ...(service.metadata?.labels ?? {}) };
  if (isServiceIPSet(service)) delete labels[HEADLESS_LABEL];
  else labels[HEADLESS_LABEL] = '';
  labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE;
  return labels;
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
  const left = normalizeSubsets(a ?? []);
  const right = normalizeSubsets(b ?? []);
  if (left.length !== right.length) return false;
  return left.every((subset, i) => compareSubsets(subset, right[i]) === 0);
}

export { labelsEqual } from '../../shared/kube/labels.ts';

// ---------------------------------------------------------------------------------------------
// Pod selection and address building

/** True for an IPv6 address that is not an IPv4-mapped one (Go's `To4() == nil`). */
function isIPv6String(ip: string | undefined): boolean {
  if (ip === undefined || !isIPv6(ip)) return false;
  try {
    return !ipaddr.IPv6.parse(ip).isIPv4MappedAddress();
  } catch {
    return false;
  }
}

function isServiceIPSet(service: V1Service): boolean {
  const clusterIP = service.spec?.clusterIP;
  return clusterIP !== undefined && clusterIP !== '' && clusterIP !== 'None';
}

/**
 * The pod IP of the Service's family: the first `ipFamilies` entry, else the ClusterIP's family,
 * else (headless on an old server) the family of the pod's primary IP.
 */
function endpointIP(service: V1Service, pod: V1Pod): string | undefined {
  const families = service.spec?.ipFamilies ?? [];
  const ips = podIPList(pod);
  let wantIPv6: boolean;
  if (families.length > 0) wantIPv6 = families[0] === 'IPv6';
  else if (isServiceIPSet(service)) wantIPv6 = isIPv6String(service.spec?.clusterIP);
  else wantIPv6 = isIPv6String(pod.status?.podIP ?? ips[0]);
  return ips.find((ip) => isIPv6String(ip) === wantIPv6);
}

function endpointAddress(service: V1Service, pod: V1Pod, ip: string): V1EndpointAddress {
  const meta = pod.metadata ?? {};
  const targetRef: V1ObjectReference = { kind: 'Pod' };
  if (meta.namespace) targetRef.namespace = meta.namespace;
  if (meta.name) targetRef.name = meta.name;
  if (meta.uid) targetRef.uid = meta.uid;
  const address: V1EndpointAddress = { ip };
  if (shouldSetHostname(pod, service)) address.hostname = pod.spec?.hostname;
  // kube-controller-manager always sets nodeName, even to "", which the API server rejects as an
  // invalid node name; a pod that has an IP but no node (only possible without a scheduler/kubelet)
  // would block the whole Service. We omit an empty nodeName instead.
  if (pod.spec?.nodeName) address.nodeName = pod.spec.nodeName;
  address.targetRef = targetRef;
  return address;
}

function endpointPort(servicePort: V1ServicePort, port: number): CoreV1EndpointPort {
  const result: CoreV1EndpointPort = servicePort.name ? { name: servicePort.name, port } : { port };
  result.protocol = servicePort.protocol ?? 'TCP';
  if (servicePort.appProtocol !== undefined) result.appProtocol = servicePort.appProtocol;
  return result;
}

function comparePods(a: V1Pod, b: V1Pod): number {
  return (
    compareStrings(a.metadata?.namespace, b.metadata?.namespace) ||
    compareStrings(a.metadata?.name, b.metadata?.name) ||
    compareStrings(a.metadata?.uid, b.metadata?.uid)
  );
}

// ---------------------------------------------------------------------------------------------
// Repacking into canonical subsets

/** One (address, port) pair; `port` undefined for a headless Service without ports. */
interface AddressEntry {
  address: V1EndpointAddress;
  ready: boolean;
  port: CoreV1EndpointPort | undefined;
}

/** Key of the "no port" group; real ports are keyed by their JSON, which never equals this. */
const NO_PORT = '';

function addressKey(address: V1EndpointAddress): string {
  return `${address.ip}\u0000${address.targetRef?.uid ?? ''}`;
}

function portKey(port: CoreV1EndpointPort): string {
  return JSON.stringify([port.name ?? '', port.port, port.protocol ?? '', port.appProtocol ?? null]);
}

/**
 * Regroups (address, port) pairs: each address is kept once per (IP, UID) (first one wins), each
 * port maps to a set of addresses where not-ready beats ready, and ports with the same address set
 * (readiness included) share a subset.
 */
function repackSubsets(entries: readonly AddressEntry[]): V1EndpointSubset[] {
  const addresses = new Map<string, V1EndpointAddress>();
  const byPort = new Map<string, { port: CoreV1EndpointPort | undefined; ready: Map<string, boolean> }>();
  for (const entry of entries) {
    const aKey = addressKey(entry.address);
    if (!addresses.has(aKey)) addresses.set(aKey, entry.address);
    // As upstream, a port number <= 0 counts as "no port".
    const port = entry.port !== undefined && entry.port.port > 0 ? entry.port : undefined;
    const pKey = port === undefined ? NO_PORT : portKey(port);
    let group = byPort.get(pKey);
    if (group === undefined) {
      group = { port, ready: new Map() };
      byPort.set(pKey, group);
    }
    const wasReady = group.ready.get(aKey);
    if (wasReady === undefined || wasReady) group.ready.set(aKey, entry.ready);
  }

  const bySet = new Map<string, { ready: Map<string, boolean>; ports: CoreV1EndpointPort[] }>();
  for (const { port, ready } of byPort.values()) {
    const setKey = [...ready.entries()]
      .map(([aKey, isReady]) => `${aKey}\u0000${isReady ? 1 : 0}`)
      .sort(compareStrings)
      .join('\u0001');
    let group = bySet.get(setKey);
    if (group === undefined) {
      group = { ready, ports: [] };
      bySet.set(setKey, group);
    }
    if (port !== undefined) group.ports.push(port);
  }

  const subsets: V1EndpointSubset[] = [];
  for (const { ready, ports } of bySet.values()) {
    const readyAddrs: V1EndpointAddress[] = [];
    const notReadyAddrs: V1EndpointAddress[] = [];
    for (const [aKey, isReady] of ready) {
      const address = addresses.get(aKey);
      if (address !== undefined) (isReady ? readyAddrs : notReadyAddrs).push(copyAddress(address));
    }
    subsets.push(
      makeSubset(
        readyAddrs.sort(compareAddresses),
        notReadyAddrs.sort(compareAddresses),
        ports.sort(comparePorts),
      ),
    );
  }
  return subsets.sort(compareSubsets);
}

function copyAddress(address: V1EndpointAddress): V1EndpointAddress {
  return address.targetRef === undefined
    ? { ...address }
    : { ...address, targetRef: { ...address.targetRef } };
}

function makeSubset(
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

/**
 * Applies the address cap exactly as kube-controller-manager's truncateEndpoints: if the ready
 * addresses fit, keep them all and share the remaining room among the not-ready ones; otherwise
 * share the cap among the ready ones and drop every not-ready address. Each subset gets
 * ceil(its share * room), bounded by what is left, walking subsets in order and keeping the
 * lowest addresses. Unlike upstream, a subset left with no address at all is dropped, since the
 * API server rejects such a subset.
 */
function truncateSubsets(
  subsets: V1EndpointSubset[],
  maxAddresses: number,
): { subsets: V1EndpointSubset[]; truncated: boolean } {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const subset of subsets) {
    totalReady += subset.addresses?.length ?? 0;
    totalNotReady += subset.notReadyAddresses?.length ?? 0;
  }
  if (totalReady + totalNotReady <= maxAddresses) return { subsets, truncated: false };

  const truncateReady = totalReady > maxAddresses;
  const room = truncateReady ? maxAddresses : maxAddresses - totalReady;
  const total = truncateReady ? totalReady : totalNotReady;
  let canBeAdded = room;
  const result: V1EndpointSubset[] = [];
  for (const subset of subsets) {
    const ready = subset.addresses ?? [];
    const notReady = subset.notReadyAddresses ?? [];
    const inSubset = truncateReady ? ready.length : notReady.length;
    const toBeAdded = Math.min(Math.ceil((inSubset / total) * room), canBeAdded);
    let kept: V1EndpointSubset;
    if (truncateReady) {
      const keptReady = ready.slice(0, toBeAdded);
      canBeAdded -= keptReady.length;
      kept = makeSubset(keptReady, [], subset.ports ?? []);
    } else {
      const keptNotReady = notReady.slice(0, toBeAdded);
      canBeAdded -= keptNotReady.length;
      kept = makeSubset(ready, keptNotReady, subset.ports ?? []);
    }
    if (kept.addresses !== undefined || kept.notReadyAddresses !== undefined) result.push(kept);
  }
  return { subsets: result, truncated: true };
}

// ---------------------------------------------------------------------------------------------
// Ordering and normalization

/** Code-unit order, which for the ASCII of IPs, UIDs and names is Go's byte order. */
function compareStrings(a: string | undefined, b: string | undefined): number {
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
