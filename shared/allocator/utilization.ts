/**
 * Utilisation alerts: an Event on the RangeAllocation (and a metric) when a map's use crosses 80 or
 * 95 percent on the way up, so a range running out is seen before creates are refused. Whoever
 * writes the crossing (a webhook replica, the repair loop) reports it; a map that stays above a
 * threshold reports it once per crossing, not per write.
 */
import type { EventRecorder } from '../kube/events.ts';
import type { RangeMetrics } from './metrics.ts';
import { RANGE_ALLOCATION_API_VERSION, type RangeAllocation } from './storage.ts';

export const ALERT_THRESHOLDS: readonly number[] = [80, 95];

/** The thresholds `after` reached that `before` had not, ascending. Pure. */
export function crossedThresholds(beforePercent: number, afterPercent: number): number[] {
  return ALERT_THRESHOLDS.filter((t) => beforePercent < t && afterPercent >= t);
}

export function reportUtilization(
  before: Pick<RangeAllocation, 'percent'> | undefined,
  after: RangeAllocation,
  metrics: RangeMetrics,
  events: EventRecorder,
): void {
  const name = after.metadata.name ?? '';
  metrics.setCounts(name, after.range, after.used, after.free);
  for (const threshold of crossedThresholds(before?.percent ?? 0, after.percent)) {
    metrics.alert(name, threshold);
    events.event(
      { kind: 'RangeAllocation', apiVersion: RANGE_ALLOCATION_API_VERSION, name, uid: after.metadata.uid },
      'Warning',
      'RangeUtilizationHigh',
      `${after.range} is ${after.percent}% used (${after.used} of ${after.size}, ${after.free} free), past the ${threshold}% alert threshold; ` +
        `a full range refuses new Services: free values or widen the range (kubectl get rangeallocations ${name})`,
    );
  }
}
