/**
 * Our own comparator: do the Endpoints and EndpointSlices in the API server show exactly the
 * model? Used to time convergence (polled) and to check both controller-managers' results.
 *
 * Per Service of the model:
 * - Endpoints: ready addresses = the ready pods' IPs, not-ready addresses = the others; above
 *   1000 addresses, exactly 1000 of them, all of the Service's, and the over-capacity annotation.
 * - EndpointSlices managed by endpointslice-controller.k8s.io with the Service's name label: the
 *   union of their IPv4 endpoints equals the pods' IPs with `ready` as in the model, no IP twice,
 *   every slice at most 100 endpoints.
 * Objects of Services outside the model are ignored.
 */
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { NAMESPACE, type Model } from './workload.ts';

export interface Comparison {
  ok: boolean;
  /** First few differences, for the report. */
  differences: string[];
  slices: number;
  endpoints: number;
}

export interface Snapshot {
  endpoints: Map<string, V1Endpoints>;
  slices: Map<string, V1EndpointSlice[]>;
}

export async function snapshot(kc: KubeConfig): Promise<Snapshot> {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const [eps, slices] = await Promise.all([
    core.listNamespacedEndpoints({ namespace: NAMESPACE }),
    discovery.listNamespacedEndpointSlice({
      namespace: NAMESPACE,
      labelSelector: 'endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io',
    }),
  ]);
  const bySvc = new Map<string, V1EndpointSlice[]>();
  for (const s of slices.items) {
    const svc = s.metadata?.labels?.['kubernetes.io/service-name'] ?? '';
    bySvc.set(svc, [...(bySvc.get(svc) ?? []), s]);
  }
  return { endpoints: new Map(eps.items.map((e) => [e.metadata?.name ?? '', e])), slices: bySvc };
}

export function compare(model: Model, snap: Snapshot, maxDifferences = 5): Comparison {
  const differences: string[] = [];
  const note = (text: string): void => {
    if (differences.length < maxDifferences) differences.push(text);
  };
  const bySvc = new Map<string, Map<string, boolean>>();
  for (const svc of model.services) bySvc.set(svc, new Map());
  for (const pod of model.pods.values()) bySvc.get(pod.service)?.set(pod.ip, pod.ready);
  let sliceCount = 0;
  let endpointCount = 0;

  for (const [svc, want] of bySvc) {
    const ep = snap.endpoints.get(svc);
    if (ep === undefined) {
      note(`${svc}: no Endpoints`);
    } else {
      const ready = new Set<string>();
      const notReady = new Set<string>();
      for (const subset of ep.subsets ?? []) {
        for (const a of subset.addresses ?? []) ready.add(a.ip);
        for (const a of subset.notReadyAddresses ?? []) notReady.add(a.ip);
      }
      if (want.size > 1000) {
        const all = [...ready, ...notReady];
        const truncated = ep.metadata?.annotations?.['endpoints.kubernetes.io/over-capacity'] === 'truncated';
        if (all.length !== 1000 || !truncated || all.some((ip) => !want.has(ip))) {
          note(
            `${svc}: Endpoints hold ${all.length} addresses (truncated=${truncated}), want 1000 of ${want.size}`,
          );
        }
      } else {
        for (const [ip, isReady] of want) {
          if (!(isReady ? ready : notReady).has(ip)) note(`${svc}: Endpoints miss ${ip} (ready=${isReady})`);
        }
        if (ready.size + notReady.size !== want.size) {
          note(`${svc}: Endpoints hold ${ready.size + notReady.size} addresses, want ${want.size}`);
        }
      }
    }

    const slices = snap.slices.get(svc) ?? [];
    sliceCount += slices.length;
    const seen = new Map<string, boolean>();
    for (const slice of slices) {
      if ((slice.endpoints ?? []).length > 100) note(`${svc}: slice ${slice.metadata?.name} over 100`);
      if (slice.addressType !== 'IPv4') continue;
      for (const e of slice.endpoints ?? []) {
        for (const ip of e.addresses) {
          if (seen.has(ip)) note(`${svc}: ${ip} in two slices`);
          seen.set(ip, e.conditions?.ready === true);
        }
      }
    }
    endpointCount += seen.size;
    if (seen.size !== want.size) note(`${svc}: slices hold ${seen.size} endpoints, want ${want.size}`);
    for (const [ip, isReady] of want) {
      if (seen.get(ip) !== isReady)
        note(`${svc}: slice endpoint ${ip} ready=${seen.get(ip)}, want ${isReady}`);
    }
  }
  return { ok: differences.length === 0, differences, slices: sliceCount, endpoints: endpointCount };
}

/** Polls until the API server shows the model; resolves with the time it first did. */
export const POLL_MS = 200;

export async function waitConverged(
  kc: KubeConfig,
  model: Model,
  timeoutMs: number,
  pollMs = POLL_MS,
): Promise<{ at: number; comparison: Comparison; detectSeconds: number }> {
  const deadline = Date.now() + timeoutMs;
  let last: Comparison | undefined;
  for (;;) {
    const readAt = Date.now();
    last = compare(model, await snapshot(kc));
    // Converged at the latest when the lists came back: an upper bound, off by at most one poll.
    // detectSeconds: what one read and compare costs, the comparator's own share of the figure.
    const now = Date.now();
    if (last.ok) return { at: now, comparison: last, detectSeconds: (now - readAt) / 1000 };
    if (Date.now() > deadline)
      return { at: Number.NaN, comparison: last, detectSeconds: (now - readAt) / 1000 };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
