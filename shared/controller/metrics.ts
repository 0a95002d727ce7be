/**
 * controller-runtime's controller metrics, under the same names so existing dashboards work:
 * `controller_runtime_reconcile_total{controller,result}` (result: success, error, requeue_after,
 * terminal_error), `controller_runtime_reconcile_errors_total{controller}`,
 * `controller_runtime_reconcile_time_seconds{controller}`, `controller_runtime_active_workers{controller}`,
 * `controller_runtime_max_concurrent_reconciles{controller}`.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetrics {
  total: Counter<'controller' | 'result'>;
  errors: Counter<'controller'>;
  time: Histogram<'controller'>;
  active: Gauge<'controller'>;
  maxConcurrent: Gauge<'controller'>;
}

const byRegistry = new WeakMap<Registry, ControllerMetrics>();

export function controllerMetrics(registry: Registry): ControllerMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      total: new Counter({
        name: 'controller_runtime_reconcile_total',
        help: 'Total number of reconciliations per controller and result.',
        labelNames: ['controller', 'result'],
        registers,
      }),
      errors: new Counter({
        name: 'controller_runtime_reconcile_errors_total',
        help: 'Total number of reconciliation errors per controller.',
        labelNames: ['controller'],
        registers,
      }),
      time: new Histogram({
        name: 'controller_runtime_reconcile_time_seconds',
        help: 'Length of time per reconciliation per controller.',
        labelNames: ['controller'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers,
      }),
      active: new Gauge({
        name: 'controller_runtime_active_workers',
        help: 'Number of workers currently reconciling, per controller.',
        labelNames: ['controller'],
        registers,
      }),
      maxConcurrent: new Gauge({
        name: 'controller_runtime_max_concurrent_reconciles',
        help: 'Maximum number of concurrent reconciles per controller.',
        labelNames: ['controller'],
        registers,
      }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}
