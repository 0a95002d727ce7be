/**
 * The process's Prometheus registry: prom-client's default Node metrics (`process_*`,
 * `nodejs_eventloop_lag_*`, heap, GC, ...) and `service_controller_manager_build_info{version} 1`.
 * Every component registers its own metrics on the registry it is handed, never on the global
 * one, so tests can create as many registries as they like.
 */
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

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
  buildInfo.set({ version: opts.version ?? packageVersion() }, 1);
  return registry;
}

let cachedVersion: string | undefined;

/**
 * The `version` of this project's package.json, found from this module's folder upward, so it
 * works from the sources (`shared/`) and from the build (`dist/shared/`). "unknown" if not found.
 */
export function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = 'unknown';
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'service-controller-manager' && typeof pkg.version === 'string') {
        cachedVersion = pkg.version;
        break;
      }
    } catch {
      // not there: try the next candidate
    }
  }
  return cachedVersion;
}
