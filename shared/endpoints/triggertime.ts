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

interface PodState {
  /** The cached pod object the time was read from: the same object has the same time. */
  pod: V1Pod;
  time: number;
  /** The compute that last saw the pod; older entries are of pods gone since. */
  seen: number;
}

interface ServiceState {
  serviceTime: number | undefined;
  /** Pods with a Ready transition time at the last compute, by name. */
  pods: Map<string, PodState>;
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
  private computes = 0;

  /**
   * Computes the trigger time for this sync and remembers the state it was computed from. The
   * state is updated in place, and a pod whose cached object is the one of the last compute is
   * not read again (the informer replaces objects on change), so a sync of a 10,000-pod Service
   * with a few changed pods costs little more than a walk of the list.
   */
  compute(serviceKey: string, service: V1Service, pods: readonly V1Pod[]): Date | undefined {
    const prev = this.byService.get(serviceKey);
    const created = service.metadata?.creationTimestamp;
    const serviceTime = created ? new Date(created).getTime() : undefined;
    let min: number | undefined;
    const consider = (t: number | undefined): void => {
      if (t !== undefined && (min === undefined || t < min)) min = t;
    };
    if (!prev || prev.serviceTime !== serviceTime) consider(serviceTime);
    const state: ServiceState = { serviceTime, pods: prev?.pods ?? new Map<string, PodState>() };
    const seen = ++this.computes;
    for (const pod of pods) {
      const name = pod.metadata?.name ?? '';
      const known = state.pods.get(name);
      if (known?.pod === pod) {
        known.seen = seen;
        continue;
      }
      const t = podReadyTransitionTime(pod)?.getTime();
      if (t === undefined) {
        state.pods.delete(name);
        continue;
      }
      if (known?.time !== t) consider(t);
      state.pods.set(name, { pod, time: t, seen });
    }
    for (const [name, known] of state.pods) if (known.seen !== seen) state.pods.delete(name);
    this.byService.set(serviceKey, state);
    return min === undefined ? undefined : new Date(min);
  }

  forget(serviceKey: string): void {
    this.byService.delete(serviceKey);
  }
}
