/**
 * Which pods back a Service and how: readiness, IPs, terminal phases and named-port lookup,
 * shared by the Endpoints and EndpointSlice controllers (upstream's endpoint utilities).
 */
import type { V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';

/**
 * Whether the controllers derive this Service's endpoints from pods: not for type ExternalName nor
 * without a (non-empty) selector, whose Endpoints are the user's.
 */
export function selectsPods(service: V1Service): boolean {
  const spec = service.spec;
  if (spec === undefined || spec.type === 'ExternalName') return false;
  return spec.selector !== undefined && Object.keys(spec.selector).length > 0;
}

/** Whether the pod's Ready condition is True. */
export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function isPodTerminal(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/**
 * Terminal pods and pods without an IP never appear; pods being deleted appear only when the
 * Service publishes not-ready addresses.
 */
export function shouldPodBeInEndpoints(pod: V1Pod, includeTerminating: boolean): boolean {
  if (isPodTerminal(pod)) return false;
  if (podIPList(pod).length === 0) return false;
  if (!includeTerminating && pod.metadata?.deletionTimestamp != null) return false;
  return true;
}

/** `status.podIPs`, or `[status.podIP]` from a server that predates `podIPs`. */
export function podIPList(pod: V1Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip) => ip !== undefined && ip !== '');
  if (ips.length > 0) return ips;
  const single = pod.status?.podIP;
  return single ? [single] : [];
}

/**
 * The container port a Service port targets on this pod: a number is used as is (an absent
 * targetPort means the Service port); a name is the first port with that name and the Service
 * port's protocol, over regular containers then restartable (sidecar) init containers. An absent
 * protocol is TCP on both sides, as the API server defaults it.
 */
export function findPort(pod: V1Pod, servicePort: V1ServicePort): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === 'number') return target;
  const protocol = servicePort.protocol ?? 'TCP';
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  for (const container of [...(pod.spec?.containers ?? []), ...sidecars]) {
    for (const port of container.ports ?? []) {
      if (port.name === target && (port.protocol ?? 'TCP') === protocol) return port.containerPort;
    }
  }
  return undefined;
}

/**
 * Whether an address for `pod` carries its hostname: the pod sets one and its subdomain names
 * this Service, in the same namespace.
 */
export function shouldSetHostname(pod: V1Pod, service: V1Service): boolean {
  const hostname = pod.spec?.hostname;
  return (
    hostname !== undefined &&
    hostname !== '' &&
    pod.spec?.subdomain === service.metadata?.name &&
    (pod.metadata?.namespace ?? '') === (service.metadata?.namespace ?? '')
  );
}
