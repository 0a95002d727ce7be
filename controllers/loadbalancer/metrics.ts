/**
 * LoadBalancer metrics, per pool and family: `..._loadbalancer_pool_addresses{pool,family}` (how
 * many the pool holds), `..._loadbalancer_pool_addresses_used{pool,family}`, and the counters
 * `..._loadbalancer_allocations_total{pool,family}` and
 * `..._loadbalancer_allocation_failures_total{reason}` (the AllocationFailed reasons).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { IPFamily } from '../../shared/net/ip.ts';

const PREFIX = 'service_controller_manager_loadbalancer';

export interface LoadBalancerMetrics {
  setPool(pool: string, family: IPFamily, total: number, used: number): void;
  /** The pool (and family) is gone: its series go too. */
  dropPool(pool: string, family: IPFamily): void;
  allocated(pool: string, family: IPFamily): void;
  failed(reason: string): void;
}

function metric<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}

export function loadBalancerMetrics(registry: Registry): LoadBalancerMetrics {
  const registers = [registry];
  const total = metric(
    registry,
    `${PREFIX}_pool_addresses`,
    () =>
      new Gauge({
        name: `${PREFIX}_pool_addresses`,
        help: 'Addresses the pool holds, by family.',
        labelNames: ['pool', 'family'],
        registers,
      }),
  );
  const used = metric(
    registry,
    `${PREFIX}_pool_addresses_used`,
    () =>
      new Gauge({
        name: `${PREFIX}_pool_addresses_used`,
        help: 'Addresses of the pool held by Services, by family.',
        labelNames: ['pool', 'family'],
        registers,
      }),
  );
  const allocations = metric(
    registry,
    `${PREFIX}_allocations_total`,
    () =>
      new Counter({
        name: `${PREFIX}_allocations_total`,
        help: 'Addresses assigned to Services, by pool and family.',
        labelNames: ['pool', 'family'],
        registers,
      }),
  );
  const failures = metric(
    registry,
    `${PREFIX}_allocation_failures_total`,
    () =>
      new Counter({
        name: `${PREFIX}_allocation_failures_total`,
        help: 'Services refused an address, by reason (the AllocationFailed reasons).',
        labelNames: ['reason'],
        registers,
      }),
  );
  return {
    setPool: (pool, family, t, u) => {
      total.set({ pool, family }, t);
      used.set({ pool, family }, u);
    },
    dropPool: (pool, family) => {
      total.remove({ pool, family });
      used.remove({ pool, family });
    },
    allocated: (pool, family) => allocations.inc({ pool, family }),
    failed: (reason) => failures.inc({ reason }),
  };
}
