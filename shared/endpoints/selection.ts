/**
 * Which pods a Service selects and which Services select a pod, through two cache indexes instead
 * of a scan of the namespace (upstream lists the namespace's pods and tests the selector on each;
 * in Go that is cheap, here a namespace with 2,000 Services and 10,000 pods spent half of the
 * process's CPU on it: docs/PERFORMANCE.md section 6).
 *
 * Contract (the same answers as testing `serviceSelectorMatches` on every object of the
 * namespace, in no particular order):
 * - `podsSelectedBy(service, pods)`: the cached pods of the Service's namespace its selector
 *   matches; none for an absent or empty selector. `pods` needs POD_LABEL_INDEX.
 * - `servicesSelecting(pod, services)`: the "ns/name" keys of the cached Services of the pod's
 *   namespace whose selector matches it. `services` needs SERVICE_SELECTOR_INDEX.
 * - POD_LABEL_INDEX files a pod under every (namespace, label, value) it carries; the smallest of
 *   the selector's pairs gives the candidates, which are then tested against the whole selector.
 * - SERVICE_SELECTOR_INDEX files a Service under one (namespace, key, value) of its selector, the
 *   one with the smallest key: every pod it matches carries that pair, and a pod carries each key
 *   once, so looking up the pod's pairs finds each candidate exactly once.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { IndexFunc, ReadonlyStore } from '../informer/store.ts';
import { serviceSelectorMatches } from '../kube/labels.ts';
import { servicesSelectingPod } from './predicates.ts';

export const POD_LABEL_INDEX = 'endpoints/label';
export const SERVICE_SELECTOR_INDEX = 'endpoints/selector';

/** Index value of one label pair; NUL cannot occur in a namespace, label key or value. */
function pairKey(namespace: string, key: string, value: string): string {
  return `${namespace}\u0000${key}\u0000${value}`;
}

export const podLabelIndex: IndexFunc<V1Pod> = (pod) => {
  const labels = pod.metadata?.labels;
  if (labels === undefined) return [];
  const namespace = pod.metadata?.namespace ?? '';
  return Object.entries(labels).map(([key, value]) => pairKey(namespace, key, value));
};

export const serviceSelectorIndex: IndexFunc<V1Service> = (service) => {
  const selector = service.spec?.selector;
  if (selector === undefined) return [];
  let first: string | undefined;
  for (const key of Object.keys(selector)) if (first === undefined || key < first) first = key;
  if (first === undefined) return [];
  return [pairKey(service.metadata?.namespace ?? '', first, selector[first])];
};

/** Adds both indexes to the pod and Service caches (idempotent: informers are shared). */
export function addSelectionIndexes(
  pods: { addIndexers(indexers: Record<string, IndexFunc<V1Pod>>): void },
  services: { addIndexers(indexers: Record<string, IndexFunc<V1Service>>): void },
): void {
  pods.addIndexers({ [POD_LABEL_INDEX]: podLabelIndex });
  services.addIndexers({ [SERVICE_SELECTOR_INDEX]: serviceSelectorIndex });
}

/** The cached pods `service` selects (see the module contract). */
export function podsSelectedBy(service: V1Service, pods: ReadonlyStore<V1Pod>): V1Pod[] {
  const selector = service.spec?.selector;
  if (selector === undefined) return [];
  const namespace = service.metadata?.namespace ?? '';
  let smallest: string | undefined;
  let smallestSize = Infinity;
  for (const [key, value] of Object.entries(selector)) {
    const pair = pairKey(namespace, key, value);
    const size = pods.indexSize(POD_LABEL_INDEX, pair);
    if (size < smallestSize) {
      smallest = pair;
      smallestSize = size;
    }
  }
  if (smallest === undefined || smallestSize === 0) return [];
  const candidates = pods.byIndex(POD_LABEL_INDEX, smallest);
  if (Object.keys(selector).length === 1) return candidates;
  return candidates.filter((pod) => serviceSelectorMatches(selector, pod.metadata?.labels));
}

/**
 * The cached Services that may select `pod`: those filed under one of its label pairs, each once.
 * Every Service selecting it is among them; test the selector to know which do.
 */
export function candidateServices(pod: V1Pod, services: ReadonlyStore<V1Service>): V1Service[] {
  const labels = pod.metadata?.labels;
  if (labels === undefined) return [];
  const namespace = pod.metadata?.namespace ?? '';
  const candidates: V1Service[] = [];
  for (const [key, value] of Object.entries(labels)) {
    candidates.push(...services.byIndex(SERVICE_SELECTOR_INDEX, pairKey(namespace, key, value)));
  }
  return candidates;
}

/** The keys of the cached Services selecting `pod` (see the module contract). */
export function servicesSelecting(pod: V1Pod, services: ReadonlyStore<V1Service>): Set<string> {
  return servicesSelectingPod(pod, candidateServices(pod, services));
}
