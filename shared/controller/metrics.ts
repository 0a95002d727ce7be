/**
 * controller-runtime's controller metrics, under the same names so existing dashboards work:
 * `controller_runtime_reconcile_total{controller,result}` (result: success, error, requeue_after,
 * terminal_error), `controller_runtime_reconcile_errors_total{controller}`,
 * `controller_runtime_reconcile_time_seconds{controller}`, `controller_runtime_active_workers{controller}`,
 * `controller_runtime_max_concurrent_reconciles{controller}`. Ours besides:
 * `service_controller_manager_reconcile_dropped_total{controller,reason}` (reason: max_retries,
 * terminal_error), `service_controller_manager_batch_window_seconds{controller}` (the delay of
 * each batched enqueue, Controller.enqueueBatched) and
 * `service_controller_manager_unfinished_keys{controller}` (keys queued, waiting out a delay or
 * being reconciled, read when scraped: one scrape is one instant).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetrics {
  total: Counter<'controller' | 'result'>;
  errors: Counter<'controller'>;
  time: Histogram<'controller'>;
  active: Gauge<'controller'>;
  maxConcurrent: Gauge<'controller'>;
  dropped: Counter<'controller' | 'reason'>;
  batchWindow: Histogram<'controller'>;
  /** Reports `unfinished()` of the named controller in `..._unfinished_keys` at every scrape. */
  watch(controller: string, unfinished: () => number): void;
}

const byRegistry = new WeakMap<Registry, ControllerMetrics>();

export function controllerMetrics(registry: Registry): ControllerMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    const registers = [registry];
    const watched = new Map<string, () => number>();
    const unfinished: Gauge<'controller'> = new Gauge({
      name: 'service_controller_manager_unfinished_keys',
      help: 'Keys queued, waiting out a delay (backoff, requeue, batch period) or being reconciled, per controller.',
      labelNames: ['controller'],
      registers,
      collect: () => {
        for (const [controller, read] of watched) unfinished.set({ controller }, read());
      },
    });
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
      dropped: new Counter({
        name: 'service_controller_manager_reconcile_dropped_total',
        help: 'Keys dropped after too many failed reconciles (retried after a long delay) or a terminal error.',
        labelNames: ['controller', 'reason'],
        registers,
      }),
      batchWindow: new Histogram({
        name: 'service_controller_manager_batch_window_seconds',
        help: 'Delay of each batched enqueue (a pod event) before its sync: the fixed batch period, or the adaptive window chosen then.',
        labelNames: ['controller'],
        buckets: [0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers,
      }),
      watch: (controller, read) => {
        watched.set(controller, read);
      },
    };
    byRegistry.set(registry, m);
  }
  return m;
}
