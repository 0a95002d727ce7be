/** LoadBalancerIPPool objects for the loadbalancer unit tests. */
import type {
  LoadBalancerIPPool,
  LoadBalancerIPPoolSpec,
  LoadBalancerIPPoolStatus,
} from '../../../controllers/loadbalancer/types.ts';

/** The creation time of `pool` unless given, and a later one. */
export const OLD = '2026-01-01T00:00:00Z';
export const NEW = '2026-02-01T00:00:00Z';
/** Every pool's metadata.generation. */
export const POOL_GENERATION = 3;

export function pool(
  name: string,
  addresses: string[],
  extra: Partial<LoadBalancerIPPoolSpec> = {},
  created = OLD,
  status?: LoadBalancerIPPoolStatus,
): LoadBalancerIPPool {
  return {
    apiVersion: 'scm.dev/v1alpha1',
    kind: 'LoadBalancerIPPool',
    metadata: { name, generation: POOL_GENERATION, creationTimestamp: new Date(created) },
    spec: { addresses, ...extra },
    ...(status ? { status } : {}),
  };
}
