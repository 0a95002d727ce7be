/**
 * What node ports a Service must hold: the pure half of the NodePort webhook and repair loop.
 *
 * Rules (Kubernetes 1.36 pkg/registry/core/service/storage: initNodePorts,
 * allocHealthCheckNodePort, patchAllocatedValues):
 * - NodePort Services, and LoadBalancer Services unless `allocateLoadBalancerNodePorts: false`,
 *   get a nodePort on every port; a LoadBalancer with that flag off keeps only the ones asked for.
 * - Ports with the same `port` number (53/TCP and 53/UDP) share one nodePort; the same nodePort
 *   on two different port numbers is refused.
 * - A LoadBalancer with `externalTrafficPolicy: Local` gets a `healthCheckNodePort`.
 * - An update keeps what the Service held: a port whose nodePort is left out gets its old one
 *   back (matched by port number and protocol).
 */
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { Claim } from '../../shared/allocator/repair.ts';
import { type FieldError, isFieldError } from '../clusterip/desired.ts';

export { type FieldError, isFieldError };

export interface NodePortSlot {
  field: string;
  /** Held already (an update): nothing to allocate. */
  keep?: number;
  /** Asked for: allocate exactly it. */
  request?: number;
  /** Share the nodePort of the port at this index (same port number, other protocol). */
  shareWith?: number;
  /** Nothing to do for this port (a LoadBalancer without node ports). */
  none?: boolean;
}

export interface NodePortPlan {
  ports: NodePortSlot[];
  healthCheck?: Omit<NodePortSlot, 'shareWith' | 'none'>;
}

export function isNodePortType(svc: V1Service | undefined): boolean {
  const type = svc?.spec?.type;
  return type === 'NodePort' || type === 'LoadBalancer';
}

/** Every port gets a nodePort: NodePort, or LoadBalancer unless allocateLoadBalancerNodePorts is false. */
export function allocatesNodePorts(svc: V1Service | undefined): boolean {
  const spec = svc?.spec;
  if (spec?.type === 'NodePort') return true;
  return spec?.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false;
}

export function needsHealthCheckNodePort(svc: V1Service | undefined): boolean {
  const spec = svc?.spec;
  return spec?.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
}

/** The distinct node ports a stored Service holds (ports and health check). */
export function heldNodePorts(svc: V1Service | undefined): number[] {
  if (!isNodePortType(svc)) return [];
  const ports = new Set<number>();
  for (const p of svc?.spec?.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
  if (needsHealthCheckNodePort(svc) && svc?.spec?.healthCheckNodePort)
    ports.add(svc.spec.healthCheckNodePort);
  return [...ports];
}

const sameServicePort = (a: V1ServicePort, b: V1ServicePort): boolean =>
  a.port === b.port && (a.protocol ?? 'TCP') === (b.protocol ?? 'TCP');

/** The plan for `svc` (`old` on an update); undefined when it needs no node port. */
export function planNodePorts(
  svc: V1Service,
  old: V1Service | undefined,
): NodePortPlan | FieldError | undefined {
  if (!isNodePortType(svc)) return undefined;
  const held = new Set(heldNodePorts(old));
  const oldPorts = isNodePortType(old) ? (old?.spec?.ports ?? []) : [];
  const ports = svc.spec?.ports ?? [];
  const allocateAll = allocatesNodePorts(svc);
  /** port number -> index of the first port of that number with a nodePort slot */
  const byPortNumber = new Map<number, number>();
  /** nodePort value -> the port number that holds it */
  const owners = new Map<number, { port: number; index: number }>();
  const slots: NodePortSlot[] = [];

  const valueFor = (p: V1ServicePort): number => {
    if (p.nodePort) return p.nodePort;
    return oldPorts.find((o) => sameServicePort(o, p) && o.nodePort)?.nodePort ?? 0;
  };
  for (const [i, p] of ports.entries()) {
    const field = `spec.ports[${i}].nodePort`;
    let value = valueFor(p);
    if (value === 0 && !allocateAll) {
      slots.push({ field, none: true });
      continue;
    }
    const first = byPortNumber.get(p.port);
    if (first !== undefined && (value === 0 || value === nodePortOf(slots[first], ports[first]))) {
      slots.push({ field, shareWith: first });
      continue;
    }
    if (value === 0) {
      // A later port of the same number may ask for a value: then this one shares it.
      value = ports.slice(i + 1).find((q) => q.port === p.port && q.nodePort)?.nodePort ?? 0;
    }
    if (value !== 0) {
      const owner = owners.get(value);
      if (owner !== undefined && owner.port !== p.port) {
        return {
          field,
          message: `Duplicate value: ${value}: spec.ports[${owner.index}] (port ${owner.port}) uses it`,
        };
      }
      owners.set(value, { port: p.port, index: i });
    }
    if (first === undefined) byPortNumber.set(p.port, i);
    slots.push(
      value === 0 ? { field } : held.has(value) ? { field, keep: value } : { field, request: value },
    );
  }

  let healthCheck: NodePortPlan['healthCheck'];
  if (needsHealthCheckNodePort(svc)) {
    const field = 'spec.healthCheckNodePort';
    const asked = svc.spec?.healthCheckNodePort ?? 0;
    const oldValue = needsHealthCheckNodePort(old) ? (old?.spec?.healthCheckNodePort ?? 0) : 0;
    const value = asked || oldValue;
    if (value !== 0 && owners.has(value)) {
      return { field, message: `Duplicate value: ${value}: spec.ports[${owners.get(value)!.index}] uses it` };
    }
    healthCheck =
      value === 0 ? { field } : value === oldValue ? { field, keep: value } : { field, request: value };
  }
  return { ports: slots, healthCheck };
}

function nodePortOf(slot: NodePortSlot, port: V1ServicePort): number {
  return slot.keep ?? slot.request ?? port.nodePort ?? 0;
}

/** The claims of `svc` on the node port map: each distinct node port once. */
export function nodePortClaims(svc: V1Service): Claim<number>[] {
  const owner = { namespace: svc.metadata?.namespace ?? '', name: svc.metadata?.name ?? '' };
  if (!isNodePortType(svc)) return [];
  const claims: Claim<number>[] = [];
  const seen = new Set<number>();
  for (const [i, p] of (svc.spec?.ports ?? []).entries()) {
    if (!p.nodePort || seen.has(p.nodePort)) continue;
    seen.add(p.nodePort);
    claims.push({ owner, field: `spec.ports[${i}].nodePort`, text: String(p.nodePort), value: p.nodePort });
  }
  const hc = svc.spec?.healthCheckNodePort;
  if (needsHealthCheckNodePort(svc) && hc && !seen.has(hc)) {
    claims.push({ owner, field: 'spec.healthCheckNodePort', text: String(hc), value: hc });
  }
  return claims;
}

/** Node ports `old` held that `svc` (undefined: deleted) no longer holds: to release. */
export function releasedNodePorts(old: V1Service | undefined, svc: V1Service | undefined): number[] {
  const kept = new Set(heldNodePorts(svc));
  return heldNodePorts(old).filter((p) => !kept.has(p));
}
