/**
 * Allocation metrics, named as kube-apiserver names its own with our prefix, so dashboards carry
 * over: `..._clusterip_allocator_allocated_ips{cidr}`, `..._available_ips`, `..._allocation_total
 * {cidr,scope}`, `..._allocation_errors_total{cidr,scope}`, `..._clusterip_repair_ip_errors_total
 * {type}`, and the `nodeport_allocator_*_ports` / `nodeport_repair_port_errors_total` family
 * (no range label: there is one node port range). `scope` is `static` for a requested value,
 * `dynamic` for one we picked. Beyond the API server: the use of each map as a ratio, and how
 * often it crossed the 80 / 95 % alert thresholds.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type AllocationScope = 'static' | 'dynamic';
export type RepairErrorType = 'leak' | 'repair' | 'full' | 'outOfRange' | 'duplicate' | 'invalid' | 'unknown';

export interface RangeMetrics {
  /** The counts of map `map` (range `range`) as last written or read. */
  setCounts(map: string, range: string, used: number, free: number): void;
  allocated(range: string, scope: AllocationScope): void;
  allocationFailed(range: string, scope: AllocationScope): void;
  repairError(type: RepairErrorType): void;
  /** A repair pass of map `map` completed. */
  repairPass(map: string): void;
  /** The map `map` of range `range` crossed `threshold` percent on the way up. */
  alert(map: string, threshold: number): void;
}

const PREFIX = 'service_controller_manager';

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

function gauge(registry: Registry, name: string, help: string, labelNames: string[]): Gauge<string> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<string>;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

export function rangeMetrics(registry: Registry, kind: 'clusterip' | 'nodeport'): RangeMetrics {
  const unit = kind === 'clusterip' ? 'ips' : 'ports';
  const rangeLabels = kind === 'clusterip' ? ['cidr'] : [];
  const withRange = (range: string): Record<string, string> => (kind === 'clusterip' ? { cidr: range } : {});
  const allocatedGauge = gauge(
    registry,
    `${PREFIX}_${kind}_allocator_allocated_${unit}`,
    `Allocated ${unit} in the ${kind} map, as last written or read.`,
    rangeLabels,
  );
  const availableGauge = gauge(
    registry,
    `${PREFIX}_${kind}_allocator_available_${unit}`,
    `Free ${unit} in the ${kind} map, as last written or read.`,
    rangeLabels,
  );
  const total = counter(
    registry,
    `${PREFIX}_${kind}_allocator_allocation_total`,
    `${unit} allocated by the admission webhook, by scope (static: requested, dynamic: picked).`,
    [...rangeLabels, 'scope'],
  );
  const errors = counter(
    registry,
    `${PREFIX}_${kind}_allocator_allocation_errors_total`,
    `Allocations the admission webhook refused or failed, by scope.`,
    [...rangeLabels, 'scope'],
  );
  const repair = counter(
    registry,
    `${PREFIX}_${kind}_repair_${kind === 'clusterip' ? 'ip' : 'port'}_errors_total`,
    `Problems the ${kind} repair loop found, by type (leak, repair, full, outOfRange, duplicate, invalid, unknown).`,
    ['type'],
  );
  const utilization = gauge(
    registry,
    `${PREFIX}_allocation_map_utilization_ratio`,
    'Used / size of each allocation map (RangeAllocation), as last written or read.',
    ['map'],
  );
  const passes = counter(
    registry,
    `${PREFIX}_allocation_repair_passes_total`,
    'Repair passes completed, per map.',
    ['map'],
  );
  const alerts = counter(
    registry,
    `${PREFIX}_allocation_map_utilization_alerts_total`,
    'Times a map crossed an alert threshold (80 or 95 percent used) on the way up.',
    ['map', 'threshold'],
  );
  return {
    setCounts: (map, range, used, free) => {
      allocatedGauge.set(withRange(range), used);
      availableGauge.set(withRange(range), free);
      utilization.set({ map }, used + free === 0 ? 1 : used / (used + free));
    },
    allocated: (range, scope) => total.inc({ ...withRange(range), scope }),
    allocationFailed: (range, scope) => errors.inc({ ...withRange(range), scope }),
    repairError: (type) => repair.inc({ type }),
    repairPass: (map) => passes.inc({ map }),
    alert: (map, threshold) => alerts.inc({ map, threshold: String(threshold) }),
  };
}
