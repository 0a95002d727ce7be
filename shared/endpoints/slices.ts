/**
 * What the EndpointSlice controller and the EndpointSlice mirroring controller share: the labels
 * that tie a slice to its Service and to its writer, endpoint identity and equality, the port-set
 * key that groups endpoints into slices, the create/update/delete plan and its execution order, and
 * the API-backed writer. Canonical IP text is shared/net/ip.ts's `canonicalIP`.
 *
 * Pure, except `executeSlicePlan` and `apiEndpointSliceWriter`.
 */
import type {
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointSlice,
  V1ObjectReference,
} from '@kubernetes/client-node';
import { namespacedPath, type KubeClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import type { EndpointSliceTracker } from './tracker.ts';

/** Label naming the Service a slice belongs to. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
/** Label naming the controller that writes a slice. */
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const ENDPOINTSLICE_MANAGED_BY = 'endpointslice-controller.k8s.io';
export const MIRRORING_MANAGED_BY = 'endpointslicemirroring-controller.k8s.io';
/** Label (value "") on the slices of a headless Service. */
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
/** Same key as on Endpoints: time of the change that triggered the write. */
export const SLICE_TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** Informer index of EndpointSlices by "namespace/<service-name label>". */
export const SERVICE_NAME_INDEX = 'serviceName';
export function serviceNameIndex(slice: V1EndpointSlice): string[] {
  const service = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  return service ? [`${slice.metadata?.namespace ?? ''}/${service}`] : [];
}

export type AddressType = 'IPv4' | 'IPv6';

/**
 * Identity of an endpoint inside one Service: its sorted addresses, hostname and the namespace
 * and name of its target. Two endpoints with the same identity are the same endpoint, possibly
 * in different states (upstream's endpoint hash).
 */
export function endpointIdentity(endpoint: V1Endpoint): string {
  // One address (every pod endpoint): a plain join, NUL-separated so no field can fake another.
  if (endpoint.addresses.length === 1) {
    return `${endpoint.addresses[0]}\u0000${endpoint.hostname ?? ''}\u0000${endpoint.targetRef?.namespace ?? ''}\u0000${endpoint.targetRef?.name ?? ''}`;
  }
  return JSON.stringify([
    [...endpoint.addresses].sort(),
    endpoint.hostname ?? '',
    endpoint.targetRef?.namespace ?? '',
    endpoint.targetRef?.name ?? '',
  ]);
}

/**
 * Equality of two endpoints of the same identity in what a write would change: node name, zone,
 * the three conditions and the target reference (its resourceVersion ignored). Hints are compared
 * separately (they are assigned after placement, see the hints modules).
 */
export function endpointsEqualBeyondIdentity(a: V1Endpoint, b: V1Endpoint): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.zone === b.zone &&
    a.conditions?.ready === b.conditions?.ready &&
    a.conditions?.serving === b.conditions?.serving &&
    a.conditions?.terminating === b.conditions?.terminating &&
    targetRefsEqual(a.targetRef, b.targetRef)
  );
}

function targetRefsEqual(a: V1ObjectReference | undefined, b: V1ObjectReference | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    (a.kind ?? '') === (b.kind ?? '') &&
    (a.namespace ?? '') === (b.namespace ?? '') &&
    (a.name ?? '') === (b.name ?? '') &&
    (a.uid ?? '') === (b.uid ?? '') &&
    (a.apiVersion ?? '') === (b.apiVersion ?? '') &&
    (a.fieldPath ?? '') === (b.fieldPath ?? '')
  );
}

/** Equality of hints; absent equals empty. */
export function hintsEqual(a: V1Endpoint['hints'], b: V1Endpoint['hints']): boolean {
  const zones = (h: V1Endpoint['hints']): string => (h?.forZones ?? []).map((z) => z.name).join(',');
  const nodes = (h: V1Endpoint['hints']): string => (h?.forNodes ?? []).map((n) => n.name).join(',');
  return zones(a) === zones(b) && nodes(a) === nodes(b);
}

/**
 * Key of a slice's port set: order-insensitive, an absent name or appProtocol equals "" / unset as
 * the API server stores them, an absent protocol is TCP. Slices of one Service with the same key
 * and address type hold interchangeable endpoints.
 */
export function portSetKey(ports: readonly DiscoveryV1EndpointPort[] | undefined): string {
  // The API server hands back `ports: null` for a placeholder slice.
  if (ports === undefined || ports === null || ports.length === 0) return '[]';
  if (ports.length === 1) {
    const p = ports[0];
    return JSON.stringify([[p.name ?? '', p.port ?? 0, p.protocol ?? 'TCP', p.appProtocol ?? '']]);
  }
  return JSON.stringify(
    (ports ?? [])
      .map((p) => [p.name ?? '', p.port ?? 0, p.protocol ?? 'TCP', p.appProtocol ?? ''])
      .sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1)),
  );
}

/** Equality of two label (or annotation) maps; an absent map equals an empty one. */
export { labelsEqual as stringMapsEqual } from '../kube/labels.ts';

/** The writes one sync issues, in the order they are issued: creates, updates, deletes. */
export interface SlicePlan {
  creates: V1EndpointSlice[];
  updates: V1EndpointSlice[];
  deletes: V1EndpointSlice[];
}

export function emptyPlan(): SlicePlan {
  return { creates: [], updates: [], deletes: [] };
}

/**
 * Turns create + delete pairs of the same address type into updates of the slice that would have
 * been deleted (it keeps its name): a change of every endpoint's port set then updates N slices in
 * place instead of creating N and deleting N. Only slices `canRecycle` accepts (owned by the
 * current object) are reused. Mutates and returns `plan`; each recycled create takes the deleted
 * slice's name and resourceVersion.
 */
export function recycleDeletes(plan: SlicePlan, canRecycle: (slice: V1EndpointSlice) => boolean): SlicePlan {
  for (let i = 0; i < plan.deletes.length && plan.creates.length > 0;) {
    const doomed = plan.deletes[i];
    const created = plan.creates[plan.creates.length - 1];
    if (doomed.addressType === created.addressType && canRecycle(doomed)) {
      const meta = created.metadata ?? {};
      delete meta.generateName;
      meta.name = doomed.metadata?.name;
      meta.resourceVersion = doomed.metadata?.resourceVersion;
      created.metadata = meta;
      plan.creates.pop();
      plan.updates.push(created);
      plan.deletes.splice(i, 1);
    } else {
      i++;
    }
  }
  return plan;
}

/**
 * The slice writes a reconciler may issue; bound to the API in controllers, recorded in tests.
 * Each write ends when `signal` aborts.
 */
export interface EndpointSliceWriter {
  create(namespace: string, slice: V1EndpointSlice, signal: AbortSignal): Promise<V1EndpointSlice>;
  update(namespace: string, slice: V1EndpointSlice, signal: AbortSignal): Promise<V1EndpointSlice>;
  /** Deletes; resolves also when it is already gone. */
  delete(namespace: string, name: string, signal: AbortSignal): Promise<void>;
}

const DISCOVERY_V1 = '/apis/discovery.k8s.io/v1';

export function apiEndpointSliceWriter(client: KubeClient): EndpointSliceWriter {
  const discovery = client.discovery;
  return {
    // Creates and updates as plain JSON (KubeClient.writeJson): a slice holds up to 100 endpoints,
    // which the typed API would walk through client-node's models both ways.
    create: (namespace, body, signal) =>
      client.writeJson<V1EndpointSlice>(
        'POST',
        namespacedPath(DISCOVERY_V1, 'endpointslices', namespace),
        body,
        signal,
      ),
    update: (namespace, body, signal) =>
      client.writeJson<V1EndpointSlice>(
        'PUT',
        namespacedPath(DISCOVERY_V1, 'endpointslices', namespace, body.metadata?.name ?? ''),
        body,
        signal,
      ),
    delete: async (namespace, name, signal) => {
      try {
        await discovery.deleteNamespacedEndpointSlice({ name, namespace }, client.withSignal(signal));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}

/**
 * Issues a plan in order (creates, updates, deletes), one request at a time, recording each
 * result in the tracker so that the next sync can tell a stale cache from a fresh one. Stops at
 * the first error (thrown; the controller retries the whole sync, which re-plans from the cache).
 */
export async function executeSlicePlan(
  namespace: string,
  plan: SlicePlan,
  writer: EndpointSliceWriter,
  tracker: EndpointSliceTracker,
  signal: AbortSignal,
): Promise<void> {
  for (const slice of plan.creates) tracker.update(await writer.create(namespace, slice, signal));
  for (const slice of plan.updates) tracker.update(await writer.update(namespace, slice, signal));
  for (const slice of plan.deletes) {
    // Recorded before the request: the watch may deliver the deletion before the response.
    tracker.expectDeletion(slice);
    try {
      await writer.delete(namespace, slice.metadata?.name ?? '', signal);
    } catch (err) {
      tracker.update(slice);
      throw err;
    }
  }
}
