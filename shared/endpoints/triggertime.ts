/**
 * The value of `endpoints.kubernetes.io/last-change-trigger-time`, as upstream's
 * TriggerTimeTracker computes it: for one Service, the EARLIEST trigger time among the objects that
 * changed since the previous sync. A pod's trigger time is its Ready condition's last transition
 * (a pod without one has none); the Service's is its creation time, and it counts as changed on first
 * sight. Nothing changed -> undefined (the annotation keeps its value).
 *
 * Earliest, not latest: the annotation feeds the "network programming latency" SLI, measured from
 * the first change that this write reflects.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';

interface ServiceState {
  serviceTime: number | undefined;
  podTimes: Map<string, number>;
}

/** The `lastTransitionTime` of the pod's Ready condition, if it has one. */
export function podReadyTransitionTime(pod: V1Pod): Date | undefined {
  const condition = pod.status?.conditions?.find((c) => c.type === 'Ready');
  // Typed as Date, but objects built from raw JSON may still hold the string form.
  const time: unknown = condition?.lastTransitionTime;
  if (time instanceof Date) return Number.isNaN(time.getTime()) ? undefined : time;
  if (typeof time === 'string') {
    const parsed = new Date(time);
    return Number.isNaN(parsed.getTime()) ? undefined : parsed;
  }
  return undefined;
}

/**
 * `date` in UTC as Go's `time.RFC3339Nano` prints it: fractional seconds with trailing zeros
 * trimmed, and no fraction at all when it is zero ("2026-01-02T03:04:05Z", "...05.12Z").
 */
export function formatTriggerTime(date: Date): string {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const dot = iso.lastIndexOf('.');
  const fraction = iso.slice(dot + 1, -1).replace(/0+$/, '');
  return fraction === '' ? `${iso.slice(0, dot)}Z` : `${iso.slice(0, dot)}.${fraction}Z`;
}

export class TriggerTimeTracker {
  private readonly byService = new Map<string, ServiceState>();

  /** Computes the trigger time for this sync and remembers the state it was computed from. */
  compute(serviceKey: string, service: V1Service, pods: readonly V1Pod[]): Date | undefined {
    const prev = this.byService.get(serviceKey);
    const created = service.metadata?.creationTimestamp;
    const serviceTime = created ? new Date(created).getTime() : undefined;
    let min: number | undefined;
    const consider = (t: number | undefined): void => {
      if (t !== undefined && (min === undefined || t < min)) min = t;
    };
    if (!prev || prev.serviceTime !== serviceTime) consider(serviceTime);
    const podTimes = new Map<string, number>();
    for (const pod of pods) {
      const t = podReadyTransitionTime(pod)?.getTime();
      const name = pod.metadata?.name ?? '';
      if (t === undefined) continue;
      podTimes.set(name, t);
      if (prev?.podTimes.get(name) !== t) consider(t);
    }
    this.byService.set(serviceKey, { serviceTime, podTimes });
    return min === undefined ? undefined : new Date(min);
  }

  forget(serviceKey: string): void {
    this.byService.delete(serviceKey);
  }
}
