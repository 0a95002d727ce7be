/**
 * The endpoints a Service should publish in EndpointSlices, as a pure function of the Service,
 * its Pods and the Nodes they run on (kube-controller-manager's endpointslice controller,
 * Kubernetes 1.31+).
 *
 * Contract:
 * - `desiredEndpointGroups` returns `undefined` for Services this controller leaves alone
 *   (ExternalName, or no / empty selector); otherwise, per address type the Service has, the
 *   endpoints grouped by their port set.
 * - One endpoint per pod that is not terminal and has an IP of the group's family; pods being
 *   deleted are included (terminating). Conditions: serving = Ready, terminating = being
 *   deleted, ready = publishNotReadyAddresses || (serving && !terminating).
 * - A pod on a Node missing from the cache is left out (listed in `podsOnMissingNodes`, the caller
 *   retries later) unless the Service publishes not-ready addresses: then it is kept, zone-less.
 * - Endpoints carry no hints here; hints are assigned after placement (hints.ts).
 * - No I/O, no clock, no mutation of the arguments.
 */
import type {
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointSlice,
  V1Node,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import {
  endpointIdentity,
  ENDPOINTSLICE_MANAGED_BY,
  LABEL_HEADLESS,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  portSetKey,
  type AddressType,
} from '../../shared/endpoints/slices.ts';
import {
  findPort,
  isPodReady,
  selectsPods,
  podIPList,
  shouldPodBeInEndpoints,
  shouldSetHostname,
} from '../../shared/endpoints/pods.ts';
import { serviceSelectorMatches } from '../../shared/kube/labels.ts';
import { canonicalIP } from '../../shared/net/ip.ts';
import { signature, type PodMemo } from '../../shared/endpoints/podmemo.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Endpoints of one address type sharing one port set: the content of one or more slices. */
export interface EndpointGroup {
  addressType: AddressType;
  ports: DiscoveryV1EndpointPort[];
  /** endpointIdentity -> endpoint. */
  endpoints: Map<string, V1Endpoint>;
}

export interface DesiredSlices {
  /** The address types the Service has, in a fixed order (IPv4 before IPv6). */
  addressTypes: AddressType[];
  /** Per address type: portSetKey -> group. A type with no pods has an empty map. */
  groups: Map<AddressType, Map<string, EndpointGroup>>;
  /** Names of pods left out because their Node is not in the cache. */
  podsOnMissingNodes: string[];
}

/**
 * The address types of a Service: its `ipFamilies`; without them (an old API server) the
 * ClusterIP's family; a headless Service without families gets both.
 */
export function serviceAddressTypes(service: V1Service): AddressType[] {
  const families = service.spec?.ipFamilies ?? [];
  const types = new Set<AddressType>();
  for (const family of families) {
    if (family === 'IPv4' || family === 'IPv6') types.add(family);
  }
  if (types.size === 0) {
    const clusterIP = service.spec?.clusterIP;
    if (clusterIP && clusterIP !== 'None') types.add(canonicalIP(clusterIP)?.type ?? 'IPv4');
    else return ['IPv4', 'IPv6'];
  }
  return (['IPv4', 'IPv6'] as const).filter((t) => types.has(t));
}

export function desiredEndpointGroups(
  service: V1Service,
  pods: readonly V1Pod[],
  nodeOf: (name: string) => V1Node | undefined,
): DesiredSlices | undefined {
  const builder = new DesiredSlicesBuilder(service, nodeOf);
  builder.addPods(pods);
  return builder.finish();
}

/** What one pod contributes to a Service's slices: its port set and an endpoint per address type. */
export interface PodSliceEntry {
  /** The Node object the endpoints were built with (its zone); a different one rebuilds them. */
  node: V1Node | undefined;
  ports: DiscoveryV1EndpointPort[];
  portsKey: string;
  /** Per address type of the Service with an endpoint for this pod: the endpoint and its identity. */
  endpoints: { type: AddressType; endpoint: V1Endpoint; identity: string }[];
}

/**
 * `desiredEndpointGroups` in pieces: `addPods` any number of times (each pod once), then
 * `finish`, which gives what `desiredEndpointGroups` would for all the pods added; the reconciler
 * lets the event loop go round between pieces of a large Service (shared/eventloop.ts).
 *
 * With a `memo`, a pod whose cached object, Node object and Service are those of an earlier sync
 * reuses that sync's endpoints (the incremental desired state). Each group holds a shallow copy
 * of them, since topology hints are set on the endpoints of the slices being written.
 */
export class DesiredSlicesBuilder {
  private readonly service: V1Service;
  private readonly nodeOf: (name: string) => V1Node | undefined;
  /** False for a Service we leave alone (`finish` gives undefined). */
  private readonly managed: boolean;
  private readonly addressTypes: AddressType[];
  private readonly groups = new Map<AddressType, Map<string, EndpointGroup>>();
  private readonly podsOnMissingNodes: string[] = [];
  private readonly memo: PodMemo<PodSliceEntry | null> | undefined;
  /** Every Service field a pod's endpoints depend on, for the memo. */
  private readonly serviceKey: string;

  constructor(
    service: V1Service,
    nodeOf: (name: string) => V1Node | undefined,
    memo?: PodMemo<PodSliceEntry | null>,
  ) {
    this.service = service;
    this.nodeOf = nodeOf;
    this.memo = memo;
    this.managed = selectsPods(service);
    this.addressTypes = this.managed ? serviceAddressTypes(service) : [];
    for (const type of this.addressTypes) this.groups.set(type, new Map());
    const spec = service.spec;
    this.serviceKey = signature(
      service.metadata?.namespace,
      service.metadata?.name,
      spec?.selector,
      spec?.ports,
      spec?.publishNotReadyAddresses === true,
      this.addressTypes,
    );
  }

  addPods(pods: readonly V1Pod[]): void {
    if (!this.managed) return;
    for (const pod of pods) {
      const entry = this.entryOf(pod);
      if (entry === null) continue;
      for (const { type, endpoint, identity } of entry.endpoints) {
        const byPorts = this.groups.get(type)!;
        let group = byPorts.get(entry.portsKey);
        if (group === undefined) {
          group = { addressType: type, ports: entry.ports.map((p) => ({ ...p })), endpoints: new Map() };
          byPorts.set(entry.portsKey, group);
        }
        group.endpoints.set(identity, { ...endpoint });
      }
    }
  }

  finish(): DesiredSlices | undefined {
    if (!this.managed) return undefined;
    return {
      addressTypes: this.addressTypes,
      groups: this.groups,
      podsOnMissingNodes: this.podsOnMissingNodes.sort(),
    };
  }

  /** The pod's entry, from the memo when still valid; null when it has no endpoint here. */
  private entryOf(pod: V1Pod): PodSliceEntry | null {
    const nodeName = pod.spec?.nodeName;
    const node = nodeName ? this.nodeOf(nodeName) : undefined;
    const remembered = this.memo?.get(pod, this.serviceKey);
    if (remembered === null) return null;
    if (remembered !== undefined && remembered.node === node) return remembered;
    const { service } = this;
    if (!serviceSelectorMatches(service.spec?.selector, pod.metadata?.labels))
      return this.remember(pod, null);
    if (!shouldPodBeInEndpoints(pod, true)) return this.remember(pod, null);
    if (nodeName && node === undefined && service.spec?.publishNotReadyAddresses !== true) {
      // Not remembered: the Node may be cached by the next sync.
      this.podsOnMissingNodes.push(pod.metadata?.name ?? '');
      return null;
    }
    const ports = endpointPorts(service, pod);
    const endpoints: PodSliceEntry['endpoints'] = [];
    for (const type of this.addressTypes) {
      const endpoint = podToEndpoint(pod, node, service, type);
      if (endpoint !== undefined) endpoints.push({ type, endpoint, identity: endpointIdentity(endpoint) });
    }
    return this.remember(pod, { node, ports, portsKey: portSetKey(ports), endpoints });
  }

  private remember(pod: V1Pod, entry: PodSliceEntry | null): PodSliceEntry | null {
    this.memo?.set(pod, this.serviceKey, entry);
    return entry;
  }
}

/** The endpoint for `pod` in a slice of `addressType`, or undefined if it has no such IP. */
export function podToEndpoint(
  pod: V1Pod,
  node: V1Node | undefined,
  service: V1Service,
  addressType: AddressType,
): V1Endpoint | undefined {
  const addresses: string[] = [];
  for (const ip of podIPList(pod)) {
    const parsed = canonicalIP(ip);
    if (parsed?.type === addressType) addresses.push(parsed.address);
  }
  if (addresses.length === 0) return undefined;
  const serving = isPodReady(pod);
  const terminating = pod.metadata?.deletionTimestamp != null;
  const ready = service.spec?.publishNotReadyAddresses === true || (serving && !terminating);
  const meta = pod.metadata ?? {};
  const endpoint: V1Endpoint = { addresses, conditions: { ready, serving, terminating } };
  if (shouldSetHostname(pod, service)) endpoint.hostname = pod.spec?.hostname;
  if (pod.spec?.nodeName) endpoint.nodeName = pod.spec.nodeName;
  const zone = node?.metadata?.labels?.[ZONE_LABEL];
  if (zone) endpoint.zone = zone;
  endpoint.targetRef = { kind: 'Pod', namespace: meta.namespace, name: meta.name, uid: meta.uid };
  return endpoint;
}

/**
 * The ports of the pod's endpoint: each Service port whose target the pod has (named ports
 * resolved per pod). A headless Service may have no ports at all. Name and protocol are always
 * set, as the API server stores them.
 */
export function endpointPorts(service: V1Service, pod: V1Pod): DiscoveryV1EndpointPort[] {
  const ports: DiscoveryV1EndpointPort[] = [];
  for (const servicePort of service.spec?.ports ?? []) {
    const port = findPort(pod, servicePort);
    if (port === undefined) continue;
    const endpointPort: DiscoveryV1EndpointPort = {
      name: servicePort.name ?? '',
      port,
      protocol: servicePort.protocol ?? 'TCP',
    };
    if (servicePort.appProtocol !== undefined) endpointPort.appProtocol = servicePort.appProtocol;
    ports.push(endpointPort);
  }
  return ports;
}

/** Label keys the controller owns; the Service's own values for them are ignored. */
const RESERVED_LABELS = new Set([LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS]);

/**
 * The labels of every slice of the Service: the Service's labels minus reserved keys, plus
 * service-name, managed-by, and the headless marker when the Service has no ClusterIP.
 */
export function sliceLabels(service: V1Service): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.metadata?.labels ?? {})) {
    if (!RESERVED_LABELS.has(key)) labels[key] = value;
  }
  const clusterIP = service.spec?.clusterIP;
  if (!clusterIP || clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  labels[LABEL_SERVICE_NAME] = service.metadata?.name ?? '';
  labels[LABEL_MANAGED_BY] = ENDPOINTSLICE_MANAGED_BY;
  return labels;
}

/** A new, empty slice for the Service (`generateName: <service>-`, controller ownerReference). */
export function newSlice(
  service: V1Service,
  addressType: AddressType,
  ports: readonly DiscoveryV1EndpointPort[],
): V1EndpointSlice {
  const meta = service.metadata ?? {};
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      generateName: `${meta.name ?? ''}-`,
      namespace: meta.namespace,
      labels: sliceLabels(service),
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: meta.name ?? '',
          uid: meta.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType,
    endpoints: [],
    ports: ports.map((p) => ({ ...p })),
  };
}

/** Whether an ownerReference of the slice names this Service (by UID: a recreated Service differs). */
export function ownedByService(slice: V1EndpointSlice, service: V1Service): boolean {
  const uid = service.metadata?.uid;
  return (slice.metadata?.ownerReferences ?? []).some(
    (ref) => ref.apiVersion === 'v1' && ref.kind === 'Service' && ref.uid === uid,
  );
}
