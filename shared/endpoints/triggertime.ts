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

function podTriggerTime(pod: V1Pod): number | undefined {
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const t = ready?.lastTransitionTime;
  return t ? new Date(t).getTime() : undefined;
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
      const t = podTriggerTime(pod);
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
