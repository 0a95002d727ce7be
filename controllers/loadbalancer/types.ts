/**
 * The LoadBalancerIPPool custom resource (`scm.dev/v1alpha1`, cluster-scoped,
 * manifests/crds/loadbalancerippools.scm.dev.yaml) and the names this controller reads and writes on
 * Services. The CRD's OpenAPI schema and CEL rules refuse malformed pools at the API server; what
 * a schema cannot see (overlap between pools, an address range too wide) is the controller's, which
 * marks such a pool with a `Conflict` or a not-`Ready` condition and skips it.
 */
import type { KubernetesObject, V1Condition, V1LabelSelector, V1ObjectMeta } from '@kubernetes/client-node';

export const POOL_GROUP = 'scm.dev';
export const POOL_VERSION = 'v1alpha1';
export const POOL_PLURAL = 'loadbalancerippools';
export const POOL_KIND = 'LoadBalancerIPPool';
export const POOL_API_VERSION = `${POOL_GROUP}/${POOL_VERSION}`;

export interface LoadBalancerIPPoolSpec {
  /** CIDRs (`192.0.2.0/24`, `2001:db8::/120`) and ranges (`192.0.2.10-192.0.2.20`), both families. */
  addresses: string[];
  /** Hand out addresses to Services that did not ask for one of this pool; default true. */
  autoAssign?: boolean;
  /** Skip IPv4 addresses ending in .0 and .255 (some old clients drop them); default false. */
  avoidBuggyIPs?: boolean;
  /** Only Services whose labels match (unset: every Service). */
  serviceSelector?: V1LabelSelector;
  /** Only Services in namespaces whose labels match (unset: every namespace). */
  namespaceSelector?: V1LabelSelector;
  /** Pools with a lower priority are tried first; pools without one come after, then by name. */
  priority?: number;
  /** A disabled pool hands out nothing new; Services keep the addresses they have. */
  disabled?: boolean;
}

export interface PoolFamilyCounts {
  total: number;
  used: number;
  free: number;
}

/**
 * metav1.Condition as the pool informer caches it: the JSON as sent (no client-node model), so
 * the time is RFC 3339 text, written in whole seconds as the API server writes metav1.Time.
 */
export interface PoolCondition extends Omit<V1Condition, 'lastTransitionTime'> {
  lastTransitionTime: string;
}

export interface LoadBalancerIPPoolStatus {
  conditions?: PoolCondition[];
  ipv4?: PoolFamilyCounts;
  ipv6?: PoolFamilyCounts;
  /** Sums over both families (the printer columns). */
  total?: number;
  used?: number;
  free?: number;
  observedGeneration?: number;
}

export interface LoadBalancerIPPool extends KubernetesObject {
  apiVersion: typeof POOL_API_VERSION;
  kind: typeof POOL_KIND;
  metadata: V1ObjectMeta;
  spec: LoadBalancerIPPoolSpec;
  status?: LoadBalancerIPPoolStatus;
}

/** Requested addresses, a comma list with at most one per family (spec.loadBalancerIP's successor). */
export const REQUESTED_IPS_ANNOTATION = 'scm.dev/load-balancer-ips';
/** Pins a Service to one pool by name. */
export const POOL_ANNOTATION = 'scm.dev/address-pool';
/** Services with the same key may share an address (see sharing.ts for when they can). */
export const SHARING_KEY_ANNOTATION = 'scm.dev/allow-shared-ip';
/** What the controller adds before it assigns, and removes once the address is released. */
export const CLEANUP_FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
/** The Service condition telling whether (and why not) an address is assigned. */
export const ADDRESS_ASSIGNED_CONDITION = 'scm.dev/AddressAssigned';
/** Pool conditions. */
export const POOL_READY_CONDITION = 'Ready';
export const POOL_CONFLICT_CONDITION = 'Conflict';
