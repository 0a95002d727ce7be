/**
 * Pure filters deciding which Services a Pod event must resync (kube-controller-manager's
 * podEndpointsChanged / GetServicesToUpdateOnPodChange, Kubernetes 1.31+).
 *
 * Contract:
 * - A pod update with an unchanged resourceVersion (an informer resync) never matters.
 * - An update "changes the pod's endpoints" when the deletion timestamp appears, disappears or
 *   moves, readiness flips, the pod IPs change, the node name changes, the hostname or subdomain
 *   changes, or the phase becomes terminal (Succeeded / Failed).
 * - An update "changes membership" when the labels change.
 * - Services to sync: none when neither changed; the Services selecting the new pod when only the
 *   endpoints changed; when only the labels changed, the Services that selected exactly one of the
 *   old and new pod (the others see no difference); when both changed, the union of both sets.
 * - Services whose selector is absent or empty select no pod.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { keyOf, labelsEqual, serviceSelectorMatches } from '../kube/labels.ts';
import { isPodReady, podIPList } from './pods.ts';

/** True when the update can change the Endpoints of some Service (see the module contract). */
export function podUpdateMatters(oldPod: V1Pod, newPod: V1Pod): boolean {
  if (isResync(oldPod, newPod)) return false;
  return podEndpointsChanged(oldPod, newPod) || podLabelsChanged(oldPod, newPod);
}

/**
 * The "ns/name" keys of the Services to resync after a pod update. `services` may hold Services
 * of any namespace; only those of the pod's namespace are considered.
 */
export function servicesToSyncOnPodUpdate(
  oldPod: V1Pod,
  newPod: V1Pod,
  services: readonly V1Service[],
): Set<string> {
  if (isResync(oldPod, newPod)) return new Set();
  const endpointsChanged = podEndpointsChanged(oldPod, newPod);
  const labelsChanged = podLabelsChanged(oldPod, newPod);
  if (!endpointsChanged && !labelsChanged) return new Set();

  const current = servicesSelectingPod(newPod, services);
  if (!labelsChanged) return current;
  const previous = servicesSelectingPod(oldPod, services);
  const result = new Set<string>();
  for (const key of current) if (endpointsChanged || !previous.has(key)) result.add(key);
  for (const key of previous) if (endpointsChanged || !current.has(key)) result.add(key);
  return result;
}

/** The "ns/name" keys of the Services of the pod's namespace whose selector matches the pod. */
export function servicesSelectingPod(pod: V1Pod, services: readonly V1Service[]): Set<string> {
  const keys = new Set<string>();
  const namespace = pod.metadata?.namespace ?? '';
  for (const service of services) {
    if ((service.metadata?.namespace ?? '') !== namespace) continue;
    if (serviceSelectorMatches(service.spec?.selector, pod.metadata?.labels)) keys.add(keyOf(service));
  }
  return keys;
}

/**
 * Both versions carry the same resourceVersion: a periodic resync, not a change. Objects without
 * a resourceVersion (hand-built ones) are never taken for a resync.
 */
function isResync(oldPod: V1Pod, newPod: V1Pod): boolean {
  const version = newPod.metadata?.resourceVersion;
  return version !== undefined && version !== '' && version === oldPod.metadata?.resourceVersion;
}

function podLabelsChanged(oldPod: V1Pod, newPod: V1Pod): boolean {
  return !labelsEqual(oldPod.metadata?.labels, newPod.metadata?.labels);
}

function podEndpointsChanged(oldPod: V1Pod, newPod: V1Pod): boolean {
  return (
    timeOf(oldPod.metadata?.deletionTimestamp) !== timeOf(newPod.metadata?.deletionTimestamp) ||
    isPodReady(oldPod) !== isPodReady(newPod) ||
    !sameList(podIPList(oldPod), podIPList(newPod)) ||
    (oldPod.spec?.nodeName ?? '') !== (newPod.spec?.nodeName ?? '') ||
    (oldPod.spec?.hostname ?? '') !== (newPod.spec?.hostname ?? '') ||
    (oldPod.spec?.subdomain ?? '') !== (newPod.spec?.subdomain ?? '') ||
    (!isTerminalPhase(oldPod.status?.phase) && isTerminalPhase(newPod.status?.phase))
  );
}

function isTerminalPhase(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

/** Milliseconds of a timestamp, `undefined` when absent; tolerates the string form of raw JSON. */
function timeOf(value: Date | string | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? -1 : ms;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
