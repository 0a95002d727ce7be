/**
 * What each pod contributed to a Service's desired state at the last sync, kept by pod object.
 *
 * The informer replaces a pod's cached object whenever the pod changes and never mutates one, so
 * the same object means the same pod content: a sync of a 10,000-pod Service in which five pods
 * changed rebuilds five endpoints and looks up the rest. The Service's part is a `serviceKey`
 * (a string of every Service field the contribution depends on, `signature`): a change of the
 * Service rebuilds everything. Entries live as long as the pod object does (a WeakMap), so pods
 * that changed or left are dropped with their old objects, with no bookkeeping here.
 *
 * A pod selected by several Services keeps one entry per Service signature (at most
 * MAX_SIGNATURES_PER_POD, then it starts over), so they do not evict each other.
 *
 * Callers must treat what they get back as read-only, or copy it before handing it out.
 */
import type { V1Pod } from '@kubernetes/client-node';

const MAX_SIGNATURES_PER_POD = 4;

export class PodMemo<V> {
  private readonly byPod = new WeakMap<V1Pod, Map<string, V>>();

  /** What `pod` contributed under `serviceKey`, if that was remembered. */
  get(pod: V1Pod, serviceKey: string): V | undefined {
    return this.byPod.get(pod)?.get(serviceKey);
  }

  set(pod: V1Pod, serviceKey: string, value: V): void {
    let forPod = this.byPod.get(pod);
    if (forPod === undefined || (forPod.size >= MAX_SIGNATURES_PER_POD && !forPod.has(serviceKey))) {
      forPod = new Map();
      this.byPod.set(pod, forPod);
    }
    forPod.set(serviceKey, value);
  }
}

/** A key of the values given, for `PodMemo`: equal exactly when their JSON is. */
export function signature(...parts: unknown[]): string {
  return JSON.stringify(parts);
}
