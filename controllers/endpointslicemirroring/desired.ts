/**
 * The EndpointSlices that mirror one selector-less Service's Endpoints, and the writes that take
 * the existing mirrored slices there, as pure functions (kube-controller-manager's
 * endpointslicemirroring controller, Kubernetes 1.31+, plus the address rules below).
 *
 * Contract:
 * - `shouldMirror(endpoints, service)`: the Endpoints exists, is not labelled
 *   `endpointslice.kubernetes.io/skip-mirror=true`, is not a leader-election record, and its
 *   Service exists without a selector (absent or empty).
 * - Subsets are canonicalised first by `repackSubsets` of shared/endpoints/subsets.ts (upstream
 *   RepackSubsets): one address per (IP, target UID), per port not-ready beats ready, ports with
 *   the same address set share a subset, addresses of a subset without ports are kept in a
 *   port-less subset. IPs are compared in canonical text, so "2001:DB8::1" and "2001:db8::1" are
 *   one address.
 * - Per subset, ready addresses then not-ready ones are mirrored until `maxEndpointsPerSubset`
 *   have been taken; an address that is not an IP (`canonicalIP` of shared/net/ip.ts: what
 *   upstream's ParseIPSloppy reads) is skipped (event `InvalidIPAddress`); so is a
 *   loopback or link-local address, or the ClusterIP of a Service other than the Endpoints' own
 *   (event `ForbiddenIPAddress`). Neither kind uses up the cap; what is left beyond the cap is
 *   skipped too (event `TooManyAddressesToMirror`, counting every skipped address, as upstream).
 * - One slice per (address type, port set). Endpoints carry the canonical IP, `ready` only, the
 *   target reference, the node name and the hostname when set.
 * - `planMirroring` keeps the first existing slice of a group (by name), deletes the others and
 *   writes nothing when that slice already holds exactly the desired endpoints, labels,
 *   annotations and controller reference; groups no longer desired are deleted; a create and a
 *   delete of the same address type become an update of the slice that would have been deleted
 *   (only of a slice owned by this Endpoints); an Endpoints being deleted gets no creates.
 * - No I/O, no clock, no mutation of the arguments. Creates and updates are new objects; deletes
 *   are the existing slices themselves (read, never modified, by recycling and execution).
 */
import type {
  CoreV1EndpointPort,
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointAddress,
  V1EndpointSlice,
  V1Endpoints,
  V1OwnerReference,
  V1Service,
} from '@kubernetes/client-node';
import ipaddr from 'ipaddr.js';
import {
  emptyPlan,
  endpointIdentity,
  endpointsEqualBeyondIdentity,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  MIRRORING_MANAGED_BY,
  portSetKey,
  recycleDeletes,
  SLICE_TRIGGER_TIME_ANNOTATION,
  stringMapsEqual,
  type AddressType,
  type SlicePlan,
} from '../../shared/endpoints/slices.ts';
import { compareStrings, repackSubsets } from '../../shared/endpoints/subsets.ts';
import { keyOf } from '../../shared/kube/labels.ts';
import { canonicalIP } from '../../shared/net/ip.ts';

/** `true` on an Endpoints keeps it from being mirrored. */
export const SKIP_MIRROR_LABEL = 'endpointslice.kubernetes.io/skip-mirror';
/** Present on Endpoints used as old-style leader-election locks, which are never mirrored. */
export const LEADER_ANNOTATION = 'control-plane.alpha.kubernetes.io/leader';
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';
/** Label the endpoints controller puts on the Endpoints it writes (Services with a selector). */
const ENDPOINTS_CONTROLLER_LABEL = 'endpoints.kubernetes.io/managed-by';
const ENDPOINTS_CONTROLLER_VALUE = 'endpoint-controller';

export const REASON_INVALID_IP = 'InvalidIPAddress';
export const REASON_TOO_MANY = 'TooManyAddressesToMirror';
export const REASON_FORBIDDEN_IP = 'ForbiddenIPAddress';
/** Most forbidden addresses named in one event message. */
const MAX_NAMED_ADDRESSES = 10;

/** Informer index of Services by canonical ClusterIP (`spec.clusterIPs`, else `spec.clusterIP`). */
export const CLUSTER_IP_INDEX = 'endpointslicemirroring/clusterIP';
/** Informer index of mirrorable Endpoints by the canonical IPs of their addresses. */
export const ENDPOINTS_ADDRESS_INDEX = 'endpointslicemirroring/address';

/** A Warning event to record on the Endpoints. */
export interface MirrorEvent {
  reason: string;
  message: string;
}

export interface MirrorOptions {
  /** Most addresses mirrored per (repacked) subset. */
  maxEndpointsPerSubset: number;
  /** Keys ("ns/name") of the Services whose ClusterIPs include `ip` (canonical text). */
  clusterIPOwners?: (ip: string) => readonly string[];
}

/** Endpoints of one address type and one port set: the content of one slice. */
export interface DesiredGroup {
  addressType: AddressType;
  ports: DiscoveryV1EndpointPort[];
  endpoints: V1Endpoint[];
}

export interface DesiredMirror {
  /** groupKey -> group; only groups with at least one endpoint. */
  groups: Map<string, DesiredGroup>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  events: MirrorEvent[];
  skipped: { invalid: number; forbidden: number; overCap: number };
}

export interface MirrorPlan {
  plan: SlicePlan;
  events: MirrorEvent[];
  skipped: DesiredMirror['skipped'];
}

// ---------------------------------------------------------------------------------------------
// Whether to mirror

export function hasSelector(service: V1Service): boolean {
  return Object.keys(service.spec?.selector ?? {}).length > 0;
}

/** The Endpoints itself allows mirroring (no skip-mirror label, not a leader-election record). */
export function endpointsMirrorable(endpoints: V1Endpoints): boolean {
  return (
    endpoints.metadata?.labels?.[SKIP_MIRROR_LABEL] !== 'true' &&
    endpoints.metadata?.annotations?.[LEADER_ANNOTATION] === undefined
  );
}

export function shouldMirror(endpoints: V1Endpoints | undefined, service: V1Service | undefined): boolean {
  return (
    endpoints !== undefined &&
    service !== undefined &&
    endpointsMirrorable(endpoints) &&
    !hasSelector(service)
  );
}

/** True for a slice this controller writes. */
export function isMirroredSlice(slice: V1EndpointSlice): boolean {
  return slice.metadata?.labels?.[LABEL_MANAGED_BY] === MIRRORING_MANAGED_BY;
}

/** Index function for `CLUSTER_IP_INDEX`: "None" and "" are not addresses. */
export function clusterIPIndex(service: V1Service): string[] {
  const spec = service.spec;
  const ips = spec?.clusterIPs?.length ? spec.clusterIPs : spec?.clusterIP ? [spec.clusterIP] : [];
  const out = new Set<string>();
  for (const ip of ips) {
    const parsed = canonicalIP(ip);
    if (parsed) out.add(parsed.address);
  }
  return [...out];
}

/**
 * Index function for `ENDPOINTS_ADDRESS_INDEX`. Endpoints written by the endpoints controller
 * (pod IPs of Services with a selector) and those that may not be mirrored are left out, which
 * keeps the index to the few hand-written Endpoints.
 */
export function endpointsAddressIndex(endpoints: V1Endpoints): string[] {
  if (!endpointsMirrorable(endpoints)) return [];
  if (endpoints.metadata?.labels?.[ENDPOINTS_CONTROLLER_LABEL] === ENDPOINTS_CONTROLLER_VALUE) return [];
  const out = new Set<string>();
  for (const subset of endpoints.subsets ?? []) {
    for (const address of [...(subset.addresses ?? []), ...(subset.notReadyAddresses ?? [])]) {
      const parsed = canonicalIP(address.ip);
      if (parsed) out.add(parsed.address);
    }
  }
  return [...out];
}

// ---------------------------------------------------------------------------------------------
// Desired state

/** Key of a slice group: address type and port set. */
export function groupKey(
  addressType: string | undefined,
  ports: readonly DiscoveryV1EndpointPort[] | undefined,
) {
  return `${addressType ?? ''}/${portSetKey(ports)}`;
}

/** Why a (canonical) address may not be mirrored whatever the Services: loopback or link-local. */
export function specialAddressReason(address: string): string | undefined {
  let range: string;
  try {
    range = ipaddr.parse(address).range();
  } catch {
    return undefined;
  }
  if (range === 'loopback') return 'loopback';
  if (range === 'linkLocal') return 'link-local';
  return undefined;
}

/** Labels of a mirrored slice: the Endpoints' labels, then service-name and managed-by. */
export function mirroredLabels(endpoints: V1Endpoints): Record<string, string> {
  return {
    ...(endpoints.metadata?.labels ?? {}),
    [LABEL_SERVICE_NAME]: endpoints.metadata?.name ?? '',
    [LABEL_MANAGED_BY]: MIRRORING_MANAGED_BY,
  };
}

/** Annotations of a mirrored slice: the Endpoints' but the trigger time and kubectl's last-applied. */
export function mirroredAnnotations(endpoints: V1Endpoints): Record<string, string> {
  const annotations: Record<string, string> = { ...(endpoints.metadata?.annotations ?? {}) };
  delete annotations[SLICE_TRIGGER_TIME_ANNOTATION];
  delete annotations[LAST_APPLIED_ANNOTATION];
  return annotations;
}

function slicePort(port: CoreV1EndpointPort): DiscoveryV1EndpointPort {
  const out: DiscoveryV1EndpointPort = {};
  if (port.name !== undefined) out.name = port.name;
  out.port = port.port;
  if (port.protocol !== undefined) out.protocol = port.protocol;
  if (port.appProtocol !== undefined) out.appProtocol = port.appProtocol;
  return out;
}

function toEndpoint(address: V1EndpointAddress, ip: string, ready: boolean): V1Endpoint {
  const endpoint: V1Endpoint = { addresses: [ip], conditions: { ready } };
  if (address.hostname) endpoint.hostname = address.hostname;
  if (address.nodeName) endpoint.nodeName = address.nodeName;
  if (address.targetRef !== undefined) endpoint.targetRef = { ...address.targetRef };
  return endpoint;
}

/** The slices' content for `endpoints`, and the events its skipped addresses call for. */
export function desiredMirror(endpoints: V1Endpoints, opts: MirrorOptions): DesiredMirror {
  const ownKey = keyOf(endpoints);
  const cap = opts.maxEndpointsPerSubset;
  const groups = new Map<string, DesiredGroup>();
  const seen = new Map<string, Set<string>>();
  let invalid = 0;
  let overCap = 0;
  const forbidden: string[] = [];

  for (const subset of repackSubsets(endpoints.subsets ?? [])) {
    const ports = (subset.ports ?? []).map(slicePort);
    let taken = 0;
    const candidates: [V1EndpointAddress, boolean][] = [
      ...(subset.addresses ?? []).map((a): [V1EndpointAddress, boolean] => [a, true]),
      ...(subset.notReadyAddresses ?? []).map((a): [V1EndpointAddress, boolean] => [a, false]),
    ];
    for (const [address, ready] of candidates) {
      if (taken >= cap) {
        overCap++;
        continue;
      }
      const ip = canonicalIP(address.ip);
      if (ip === undefined) {
        invalid++;
        continue;
      }
      const why = forbiddenReason(ip.address, ownKey, opts);
      if (why !== undefined) {
        forbidden.push(`${ip.address} (${why})`);
        continue;
      }
      const key = groupKey(ip.type, ports);
      let group = groups.get(key);
      let identities = seen.get(key);
      if (group === undefined || identities === undefined) {
        group = { addressType: ip.type, ports: ports.map((p) => ({ ...p })), endpoints: [] };
        identities = new Set();
        groups.set(key, group);
        seen.set(key, identities);
      }
      const endpoint = toEndpoint(address, ip.address, ready);
      const identity = endpointIdentity(endpoint);
      taken++;
      if (identities.has(identity)) continue;
      identities.add(identity);
      group.endpoints.push(endpoint);
    }
  }

  const events: MirrorEvent[] = [];
  const skipped = invalid + forbidden.length + overCap;
  if (invalid > 0) {
    events.push({
      reason: REASON_INVALID_IP,
      message: `Skipped ${invalid} invalid IP addresses when mirroring to EndpointSlices`,
    });
  }
  if (forbidden.length > 0) {
    const named = forbidden.slice(0, MAX_NAMED_ADDRESSES).join(', ');
    const more =
      forbidden.length > MAX_NAMED_ADDRESSES ? `, and ${forbidden.length - MAX_NAMED_ADDRESSES} more` : '';
    events.push({
      reason: REASON_FORBIDDEN_IP,
      message: `Skipped ${forbidden.length} IP addresses that may not be mirrored to EndpointSlices: ${named}${more}`,
    });
  }
  if (overCap > 0) {
    events.push({
      reason: REASON_TOO_MANY,
      message: `A max of ${cap} addresses can be mirrored to EndpointSlices per Endpoints subset. ${skipped} addresses were skipped`,
    });
  }
  return {
    groups,
    labels: mirroredLabels(endpoints),
    annotations: mirroredAnnotations(endpoints),
    events,
    skipped: { invalid, forbidden: forbidden.length, overCap },
  };
}

function forbiddenReason(address: string, ownKey: string, opts: MirrorOptions): string | undefined {
  const special = specialAddressReason(address);
  if (special !== undefined) return special;
  const owner = (opts.clusterIPOwners?.(address) ?? []).find((key) => key !== ownKey);
  return owner === undefined ? undefined : `ClusterIP of Service ${owner}`;
}

// ---------------------------------------------------------------------------------------------
// Planning

function ownerReference(endpoints: V1Endpoints): V1OwnerReference {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    name: endpoints.metadata?.name ?? '',
    uid: endpoints.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when the slice's controller reference is this Endpoints (same UID). */
export function ownedBy(slice: V1EndpointSlice, endpoints: V1Endpoints): boolean {
  const uid = endpoints.metadata?.uid;
  return (
    uid !== undefined &&
    (slice.metadata?.ownerReferences ?? []).some(
      (ref) => ref.controller === true && ref.kind === 'Endpoints' && ref.uid === uid,
    )
  );
}

function sameEndpoints(existing: readonly V1Endpoint[], desired: readonly V1Endpoint[]): boolean {
  if (existing.length !== desired.length) return false;
  const byIdentity = new Map<string, V1Endpoint>();
  for (const endpoint of desired) byIdentity.set(endpointIdentity(endpoint), endpoint);
  const matched = new Set<string>();
  for (const endpoint of existing) {
    const identity = endpointIdentity(endpoint);
    const want = byIdentity.get(identity);
    if (want === undefined || matched.has(identity) || !endpointsEqualBeyondIdentity(want, endpoint)) {
      return false;
    }
    matched.add(identity);
  }
  return true;
}

function upToDate(
  slice: V1EndpointSlice,
  group: DesiredGroup,
  desired: DesiredMirror,
  endpoints: V1Endpoints,
) {
  return (
    sameEndpoints(slice.endpoints ?? [], group.endpoints) &&
    stringMapsEqual(slice.metadata?.labels, desired.labels) &&
    stringMapsEqual(slice.metadata?.annotations, desired.annotations) &&
    (endpoints.metadata?.uid === undefined || ownedBy(slice, endpoints))
  );
}

function newSlice(
  endpoints: V1Endpoints,
  group: DesiredGroup,
  desired: DesiredMirror,
  cap: number,
  replacing: V1EndpointSlice | undefined,
): V1EndpointSlice {
  const name = endpoints.metadata?.name ?? '';
  const metadata: V1EndpointSlice['metadata'] = {};
  if (replacing?.metadata?.name) {
    metadata.name = replacing.metadata.name;
    if (replacing.metadata.resourceVersion) metadata.resourceVersion = replacing.metadata.resourceVersion;
  } else {
    metadata.generateName = name.length < 253 ? `${name}-` : name;
  }
  metadata.namespace = endpoints.metadata?.namespace ?? '';
  metadata.labels = { ...desired.labels };
  metadata.annotations = { ...desired.annotations };
  metadata.ownerReferences = [ownerReference(endpoints)];
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata,
    addressType: group.addressType,
    endpoints: group.endpoints.slice(0, cap).map(copyEndpoint),
    ports: group.ports.map((p) => ({ ...p })),
  };
}

function copyEndpoint(endpoint: V1Endpoint): V1Endpoint {
  const copy: V1Endpoint = { ...endpoint, addresses: [...endpoint.addresses] };
  if (endpoint.conditions !== undefined) copy.conditions = { ...endpoint.conditions };
  if (endpoint.targetRef !== undefined) copy.targetRef = { ...endpoint.targetRef };
  return copy;
}

function compareNames(a: V1EndpointSlice, b: V1EndpointSlice): number {
  return compareStrings(a.metadata?.name ?? '', b.metadata?.name ?? '');
}

/**
 * The writes that make `existing` (the slices mirrored for this Endpoints: its namespace, its
 * service-name label, our managed-by label) mirror `endpoints`, and the events to record.
 */
export function planMirroring(
  endpoints: V1Endpoints,
  existing: readonly V1EndpointSlice[],
  opts: MirrorOptions,
): MirrorPlan {
  const desired = desiredMirror(endpoints, opts);
  const existingByKey = new Map<string, V1EndpointSlice[]>();
  for (const slice of [...existing].sort(compareNames)) {
    const key = groupKey(slice.addressType, slice.ports);
    const list = existingByKey.get(key);
    if (list === undefined) existingByKey.set(key, [slice]);
    else list.push(slice);
  }

  const plan = emptyPlan();
  for (const key of [...desired.groups.keys()].sort()) {
    const group = desired.groups.get(key)!;
    const [first, ...rest] = existingByKey.get(key) ?? [];
    plan.deletes.push(...rest);
    if (first !== undefined && upToDate(first, group, desired, endpoints)) continue;
    const slice = newSlice(endpoints, group, desired, opts.maxEndpointsPerSubset, first);
    (first === undefined ? plan.creates : plan.updates).push(slice);
  }
  for (const key of [...existingByKey.keys()].sort()) {
    if (!desired.groups.has(key)) plan.deletes.push(...existingByKey.get(key)!);
  }
  recycleDeletes(plan, (slice) => ownedBy(slice, endpoints));
  if (endpoints.metadata?.deletionTimestamp) plan.creates = [];
  return { plan, events: desired.events, skipped: desired.skipped };
}
