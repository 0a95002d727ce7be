/**
 * The Endpoints a Service should have, as a pure function of the Service and its Pods.
 *
 * Contract (the behaviour of kube-controller-manager's endpoint controller, Kubernetes 1.31+,
 * "Sync of one Service" steps 2-10 of the Endpoints spec):
 * - `desiredEndpoints` returns `undefined` for Services this controller does not manage
 *   (type ExternalName, or no / empty selector); otherwise the canonical subsets, the labels and
 *   whether the address cap truncated the result.
 * - Canonical means `repackAddressEntries` of shared/endpoints/subsets.ts: one address per
 *   (IP, pod UID); for a given port not-ready beats ready; ports with identical address sets share
 *   a subset; addresses sorted by IP string then UID; ports by name, port, protocol, appProtocol;
 *   subsets by their ports (each port is in exactly one subset, so this is a total order). Empty
 *   lists are omitted, never emitted as `[]`, so the output equals what the API server hands back
 *   after a round trip. A port number <= 0 counts as no port, as upstream.
 * - An address carries the pod IP of the Service's family in canonical text (`canonicalIP` of
 *   shared/net/ip.ts), as upstream parses and restringifies it: `FD00:1::1` is written `fd00:1::1`,
 *   `::ffff:10.0.0.1` is the IPv4 `10.0.0.1`, `010.000.000.001` is `10.0.0.1`.
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
import { serviceSelectorMatches } from '../../shared/kube/labels.ts';
import { canonicalIP, type IPFamily } from '../../shared/net/ip.ts';
import {
  findPort,
  isPodReady,
  podIPList,
  selectsPods,
  shouldPodBeInEndpoints,
  shouldSetHostname,
} from '../../shared/endpoints/pods.ts';
import { signature, type PodMemo } from '../../shared/endpoints/podmemo.ts';
import {
  addressKey,
  makeSubset,
  portKey,
  SubsetPacker,
  type AddressEntry,
} from '../../shared/endpoints/subsets.ts';

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
  const builder = new DesiredEndpointsBuilder(service, opts);
  builder.addPods(pods);
  return builder.finish();
}

/**
 * `desiredEndpoints` in pieces: `addPods` any number of times (each pod once), then `finish`,
 * which gives what `desiredEndpoints` would for all the pods added. The reconciler feeds a large
 * Service's pods a few hundred at a time and lets the event loop go round between pieces
 * (shared/eventloop.ts); the per-pod work, done in `addPods`, is most of a sync's cost.
 *
 * With a `memo`, a pod whose cached object and Service are those of an earlier sync reuses that
 * sync's (address, port) entries instead of building them again: the incremental desired state.
 * The entries are never handed out (the repack copies them), so the output is the same bytes.
 */
export class DesiredEndpointsBuilder {
  private readonly service: V1Service;
  private readonly opts: DesiredEndpointsOptions;
  /** Undefined when the Service is not ours to manage (`finish` gives undefined). */
  private readonly selector: Record<string, string> | undefined;
  private readonly packer = new SubsetPacker();
  private readonly memo: PodMemo<AddressEntry[]> | undefined;
  /** Every Service field a pod's entries depend on, for the memo. */
  private readonly serviceKey: string;

  constructor(service: V1Service, opts: DesiredEndpointsOptions & { memo?: PodMemo<AddressEntry[]> } = {}) {
    this.service = service;
    this.opts = opts;
    this.memo = opts.memo;
    const selector = service.spec?.selector;
    this.selector = selector !== undefined && selectsPods(service) ? selector : undefined;
    const spec = service.spec;
    this.serviceKey = signature(
      service.metadata?.namespace,
      service.metadata?.name,
      selector,
      spec?.ports,
      spec?.ipFamilies,
      spec?.clusterIP,
      spec?.publishNotReadyAddresses === true,
    );
  }

  addPods(pods: readonly V1Pod[]): void {
    if (this.service.spec === undefined || this.selector === undefined) return;
    for (const pod of pods) {
      let entries = this.memo?.get(pod, this.serviceKey);
      if (entries === undefined) {
        entries = this.entriesOf(pod);
        this.memo?.set(pod, this.serviceKey, entries);
      }
      if (entries.length > 0) this.packer.add(entries);
    }
  }

  finish(): DesiredEndpoints | undefined {
    if (this.service.spec === undefined || this.selector === undefined) return undefined;
    const { subsets, truncated } = truncateSubsets(
      this.packer.valueOrderSubsets(),
      this.opts.maxAddresses ?? MAX_ENDPOINTS_ADDRESSES,
    );
    return { subsets, labels: endpointsLabels(this.service), overCapacity: truncated };
  }

  /**
   * The (address, port) entries of one pod, with their repack keys: none when the selector, the
   * phase / IP / deletion rules or the ports leave it out. No need to sort the pods: the addresses
   * are sorted in `finish`, and the only duplicates the repack drops are (IP, UID) pairs, which can
   * come from one pod only.
   */
  private entriesOf(pod: V1Pod): AddressEntry[] {
    const { service, selector } = this;
    const spec = service.spec!;
    const publishNotReady = spec.publishNotReadyAddresses === true;
    const servicePorts = spec.ports ?? [];
    if (!serviceSelectorMatches(selector, pod.metadata?.labels)) return [];
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) return [];
    const ip = endpointIP(service, pod);
    if (ip === undefined) return [];
    const address = endpointAddress(service, pod, ip);
    const key = addressKey(address);
    const ready = publishNotReady || isPodReady(pod);
    if (servicePorts.length === 0) {
      // Only a headless Service may have no ports; any other gets no addresses at all.
      return spec.clusterIP === 'None' ? [{ address, ready, port: undefined, addressKey: key }] : [];
    }
    const entries: AddressEntry[] = [];
    for (const servicePort of servicePorts) {
      const portNumber = findPort(pod, servicePort);
      if (portNumber === undefined) continue;
      // As upstream, a port number <= 0 counts as "no port".
      const port = portNumber > 0 ? endpointPort(servicePort, portNumber) : undefined;
      entries.push({ address, ready, port, addressKey: key, ...(port ? { portKey: portKey(port) } : {}) });
    }
    return entries;
  }
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

export { subsetsEqual } from '../../shared/endpoints/subsets.ts';
export { labelsEqual } from '../../shared/kube/labels.ts';

// ---------------------------------------------------------------------------------------------
// Pod selection and address building

/** The family of `ip`; IPv4 also when it is not an IP (upstream's `IsIPv6String` is false then). */
function familyOf(ip: string | undefined): IPFamily {
  return canonicalIP(ip)?.type ?? 'IPv4';
}

function isServiceIPSet(service: V1Service): boolean {
  const clusterIP = service.spec?.clusterIP;
  return clusterIP !== undefined && clusterIP !== '' && clusterIP !== 'None';
}

/**
 * The first pod IP of the Service's family, in canonical text: the family is the first
 * `ipFamilies` entry, else the ClusterIP's, else (headless on an old server) the pod's primary
 * IP's. A pod IP that is not an IP is of no family: upstream would write it as "<nil>" into an
 * IPv4 Endpoints, which the API server rejects; pod validation keeps such IPs out anyway.
 */
function endpointIP(service: V1Service, pod: V1Pod): string | undefined {
  const families = service.spec?.ipFamilies ?? [];
  const ips = podIPList(pod);
  let want: IPFamily;
  if (families.length > 0) want = families[0] === 'IPv6' ? 'IPv6' : 'IPv4';
  else if (isServiceIPSet(service)) want = familyOf(service.spec?.clusterIP);
  else want = familyOf(pod.status?.podIP ?? ips[0]);
  for (const ip of ips) {
    const parsed = canonicalIP(ip);
    if (parsed?.type === want) return parsed.address;
  }
  return undefined;
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

// ---------------------------------------------------------------------------------------------
// Truncation

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
