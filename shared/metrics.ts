/**
 * The process's Prometheus registry: prom-client's default Node metrics (`process_*`,
 * `nodejs_eventloop_lag_*`, heap, GC, ...) and `service_controller_manager_build_info{version} 1`.
 * Every component registers its own metrics on the registry it is handed, never on the global
 * one, so tests can create as many registries as they like.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { VERSION } from './version.ts';

export interface RegistryOptions {
  /** Defaults to the version in package.json. */
  version?: string;
}

export function createRegistry(opts: RegistryOptions = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const buildInfo = new Gauge({
    name: 'service_controller_manager_build_info',
    help: 'A metric with a constant 1 value labelled by the version of service-controller-manager.',
    labelNames: ['version'],
    registers: [registry],
  });
  buildInfo.set({ version: opts.version ?? VERSION }, 1);
  return registry;
}
