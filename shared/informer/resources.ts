/**
 * The kinds our controllers watch: where to list and watch them, which client-node model to
 * deserialize into, and which fields to drop before caching (memory: no controller reads them).
 */
import type {
  KubernetesObject,
  V1Endpoints,
  V1Node,
  V1Pod,
  V1Service,
  V1EndpointSlice,
  V1IPAddress,
  V1Namespace,
} from '@kubernetes/client-node';

export interface ResourceType<T extends KubernetesObject> {
  /** Kind, also the informer's identity in the factory and in logs. */
  kind: string;
  /** Path listing every object of the kind across namespaces, e.g. /api/v1/pods. */
  listPath: string;
  /** client-node model name for ObjectSerializer, e.g. V1Pod. */
  modelType: string;
  namespaced: boolean;
  /**
   * Trims a raw (JSON) object before it is deserialized and cached. `managedFields` is always
   * dropped by the informer itself; this removes what no controller reads.
   */
  trim?: (raw: Record<string, unknown>) => void;
  /** Only a type marker; never read. */
  readonly _type?: T;
}

type Raw = Record<string, unknown>;

function dropKeys(obj: unknown, keys: readonly string[]): void {
  if (obj === null || typeof obj !== 'object') return;
  for (const k of keys) delete (obj as Raw)[k];
}

/**
 * Pods: the Endpoints/EndpointSlice controllers read labels, deletionTimestamp, nodeName, hostname,
 * subdomain, container ports, restartable init containers' ports, phase, podIPs, conditions.
 * Volumes, env, probes, resources and the rest of the spec and status are dropped.
 */
function trimPod(raw: Raw): void {
  const meta = raw.metadata as Raw | undefined;
  if (meta) dropKeys(meta, ['annotations', 'ownerReferences', 'finalizers']);
  const spec = raw.spec as Raw | undefined;
  if (spec) {
    const keep = new Set(['nodeName', 'hostname', 'subdomain', 'containers', 'initContainers']);
    for (const k of Object.keys(spec)) if (!keep.has(k)) delete spec[k];
    const trimContainers = (list: unknown, keepRestartPolicy: boolean): unknown =>
      Array.isArray(list)
        ? list
            .filter((c: Raw) => !keepRestartPolicy || c.restartPolicy === 'Always')
            .map((c: Raw) => ({
              name: c.name,
              ports: c.ports,
              ...(keepRestartPolicy ? { restartPolicy: c.restartPolicy } : {}),
            }))
        : list;
    spec.containers = trimContainers(spec.containers, false) ?? [];
    if (spec.initContainers) spec.initContainers = trimContainers(spec.initContainers, true);
  }
  const status = raw.status as Raw | undefined;
  if (status) {
    const keep = new Set(['phase', 'podIP', 'podIPs', 'conditions', 'hostIP']);
    for (const k of Object.keys(status)) if (!keep.has(k)) delete status[k];
    if (Array.isArray(status.conditions)) {
      status.conditions = (status.conditions as Raw[]).filter((c) => c.type === 'Ready');
    }
  }
}

export const podResource: ResourceType<V1Pod> = {
  kind: 'Pod',
  listPath: '/api/v1/pods',
  modelType: 'V1Pod',
  namespaced: true,
  trim: trimPod,
};

export const serviceResource: ResourceType<V1Service> = {
  kind: 'Service',
  listPath: '/api/v1/services',
  modelType: 'V1Service',
  namespaced: true,
};

export const endpointsResource: ResourceType<V1Endpoints> = {
  kind: 'Endpoints',
  listPath: '/api/v1/endpoints',
  modelType: 'V1Endpoints',
  namespaced: true,
};

export const endpointSliceResource: ResourceType<V1EndpointSlice> = {
  kind: 'EndpointSlice',
  listPath: '/apis/discovery.k8s.io/v1/endpointslices',
  modelType: 'V1EndpointSlice',
  namespaced: true,
};

/**
 * Nodes: labels (zone, control-plane role), the Ready condition and allocatable CPU (topology
 * hints) matter to us; the rest of the status (images, other conditions, addresses) is large.
 */
export const nodeResource: ResourceType<V1Node> = {
  kind: 'Node',
  listPath: '/api/v1/nodes',
  modelType: 'V1Node',
  namespaced: false,
  trim: (raw) => {
    dropKeys(raw.metadata, ['annotations']);
    const status = raw.status as Raw | undefined;
    if (status === undefined || status === null) return;
    const cpu = (status.allocatable as Raw | undefined)?.cpu;
    const conditions = Array.isArray(status.conditions) ? (status.conditions as Raw[]) : [];
    const ready = conditions.find((c) => c.type === 'Ready');
    raw.status = {
      ...(cpu === undefined ? {} : { allocatable: { cpu } }),
      ...(ready === undefined ? {} : { conditions: [{ type: 'Ready', status: ready.status }] }),
    };
  },
};

/**
 * IPAddress objects (networking.k8s.io/v1): the API server's own record of each ClusterIP it
 * holds. The webhook never hands out one that exists (a Service that bypassed our map holds it).
 */
export const ipAddressResource: ResourceType<V1IPAddress> = {
  kind: 'IPAddress',
  listPath: '/apis/networking.k8s.io/v1/ipaddresses',
  modelType: 'V1IPAddress',
  namespaced: false,
  trim: (raw) => dropKeys(raw.metadata, ['annotations', 'labels', 'ownerReferences']),
};

/** Namespaces: only their labels matter (LoadBalancerIPPool namespace selectors). */
export const namespaceResource: ResourceType<V1Namespace> = {
  kind: 'Namespace',
  listPath: '/api/v1/namespaces',
  modelType: 'V1Namespace',
  namespaced: false,
  trim: (raw) => {
    dropKeys(raw.metadata, ['annotations', 'ownerReferences', 'finalizers']);
    delete raw.spec;
    delete raw.status;
  },
};

/**
 * A custom resource cached as the JSON the API server sent (client-node has no model for it):
 * `modelType: 'any'` leaves it as parsed.
 */
export function customResource<T extends KubernetesObject>(
  kind: string,
  group: string,
  version: string,
  plural: string,
  namespaced: boolean,
): ResourceType<T> {
  return { kind, listPath: `/apis/${group}/${version}/${plural}`, modelType: 'any', namespaced };
}
