/**
 * Our own comparator: do the Endpoints and EndpointSlices in the API server show exactly the
 * model? Used to time convergence (from a watch) and to check both controller-managers' results.
 *
 * Per Service of the model:
 * - Endpoints: ready addresses = the ready pods' IPs, not-ready addresses = the others; above
 *   1000 addresses, exactly 1000 of them, all of the Service's, and the over-capacity annotation.
 * - EndpointSlices managed by endpointslice-controller.k8s.io with the Service's name label: the
 *   union of their IPv4 endpoints equals the pods' IPs with `ready` as in the model, no IP twice,
 *   every slice at most 100 endpoints.
 * Objects of Services outside the model are ignored.
 */
import type { KubeConfig, KubernetesObject, V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { EventGate } from './eventgate.ts';
import { realClock } from '../shared/clock.ts';
import { SharedInformer } from '../shared/informer/informer.ts';
import { endpointSliceResource, endpointsResource } from '../shared/informer/resources.ts';
import { KubeClient } from '../shared/kube/client.ts';
import {
  ENDPOINTSLICE_MANAGED_BY,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
} from '../shared/endpoints/slices.ts';
import { nopLogger } from '../shared/log.ts';
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

interface ReadinessProbe {
  ready: boolean;
  issuedAt: number;
  resolve: (seconds: number | undefined) => void;
}

const BY_SERVICE = 'service';
const OVER_CAPACITY = 'endpoints.kubernetes.io/over-capacity';

/** What a Service's Endpoints and slices say of each pod IP's readiness. */
export interface ReadinessView {
  inEndpoints: Map<string, boolean>;
  inSlices: Map<string, boolean>;
  /** The Endpoints holds only 1000 of more addresses (the over-capacity annotation). */
  truncated: boolean;
}

export function readinessView(
  endpoints: V1Endpoints | undefined,
  slices: readonly V1EndpointSlice[],
): ReadinessView {
  const inEndpoints = new Map<string, boolean>();
  for (const subset of endpoints?.subsets ?? []) {
    for (const a of subset.addresses ?? []) inEndpoints.set(a.ip, true);
    for (const a of subset.notReadyAddresses ?? []) inEndpoints.set(a.ip, false);
  }
  const inSlices = new Map<string, boolean>();
  for (const slice of slices) {
    if (slice.metadata?.labels?.[LABEL_MANAGED_BY] !== ENDPOINTSLICE_MANAGED_BY) continue;
    for (const e of slice.endpoints ?? [])
      for (const ip of e.addresses) inSlices.set(ip, e.conditions?.ready === true);
  }
  const truncated = endpoints?.metadata?.annotations?.[OVER_CAPACITY] === 'truncated';
  return { inEndpoints, inSlices, truncated };
}

/**
 * Do both objects show `ip` with readiness `ready`? The slices must list it so. A truncated
 * Endpoints holds 1000 addresses, ready ones first, so a pod turning not ready leaves it instead of
 * showing as not ready, and one turning ready need not enter it: there it is enough that the
 * Endpoints no longer lists the IP with the other readiness.
 */
export function readinessShown(view: ReadinessView, ip: string, ready: boolean): boolean {
  if (view.inSlices.get(ip) !== ready) return false;
  const listed = view.inEndpoints.get(ip);
  return view.truncated ? listed === undefined || listed === ready : listed === ready;
}

/**
 * Keeps Endpoints and EndpointSlices of the bench namespace in memory from a list + watch (our
 * informer, the same code for both controller-managers) and tells when they first equal a model:
 * the arrival time of the watch event after which the state matched. No polling, so the figure is
 * not rounded up to a poll interval, and the API server is not loaded by repeated lists.
 */
export class ConvergenceWatch {
  private readonly stopping = new AbortController();
  private readonly endpoints: SharedInformer<V1Endpoints>;
  private readonly slices: SharedInformer<V1EndpointSlice>;
  private readonly running: Promise<unknown>;
  private readonly gate = new EventGate();
  /** Pending readiness probes by Service name, then pod IP. */
  private readonly probes = new Map<string, Map<string, ReadinessProbe>>();
  /** Arrival time of the latest Endpoints or EndpointSlice event of the namespace (for `quiet`). */
  private lastEventAt = Date.now();

  private constructor(kc: KubeConfig) {
    const client = new KubeClient(kc, { qps: 0, burst: 0, userAgent: 'bench-comparator' });
    const deps = { client, clock: realClock, log: nopLogger };
    this.endpoints = new SharedInformer({ resource: endpointsResource, ...deps });
    this.slices = new SharedInformer({ resource: endpointSliceResource, ...deps });
    this.slices.addIndexers({ [BY_SERVICE]: (s) => [s.metadata?.labels?.[LABEL_SERVICE_NAME] ?? ''] });
    const handlers = (serviceOf: (o: KubernetesObject) => string | undefined) => {
      const onEvent = (o: KubernetesObject): void => {
        if (o.metadata?.namespace !== NAMESPACE) return;
        const at = this.gate.noteEvent();
        this.lastEventAt = at;
        const service = serviceOf(o);
        if (service !== undefined && this.probes.has(service)) this.checkProbes(service, at);
      };
      return {
        add: onEvent,
        update: (_: KubernetesObject, n: KubernetesObject) => onEvent(n),
        delete: onEvent,
      };
    };
    this.endpoints.addEventHandler(handlers((o) => o.metadata?.name));
    this.slices.addEventHandler(handlers((o) => o.metadata?.labels?.[LABEL_SERVICE_NAME]));
    this.running = Promise.all([
      this.endpoints.run(this.stopping.signal),
      this.slices.run(this.stopping.signal),
    ]);
  }

  static async start(kc: KubeConfig): Promise<ConvergenceWatch> {
    const watch = new ConvergenceWatch(kc);
    await Promise.all([
      watch.endpoints.waitForSync(watch.stopping.signal),
      watch.slices.waitForSync(watch.stopping.signal),
    ]);
    return watch;
  }

  snapshot(): Snapshot {
    const endpoints = new Map<string, V1Endpoints>();
    for (const e of this.endpoints.lister.list()) {
      if (e.metadata?.namespace === NAMESPACE) endpoints.set(e.metadata.name ?? '', e);
    }
    const slices = new Map<string, V1EndpointSlice[]>();
    for (const s of this.slices.lister.list()) {
      const labels = s.metadata?.labels ?? {};
      if (s.metadata?.namespace !== NAMESPACE || labels[LABEL_MANAGED_BY] !== ENDPOINTSLICE_MANAGED_BY)
        continue;
      const svc = labels[LABEL_SERVICE_NAME] ?? '';
      slices.set(svc, [...(slices.get(svc) ?? []), s]);
    }
    return { endpoints, slices };
  }

  /**
   * Resolves when the state equals the model, `at` being the arrival time of the last event
   * applied before the match (`NaN` on timeout). Compares again after each burst of events.
   */
  async until(model: Model, timeoutMs: number): Promise<{ at: number; comparison: Comparison }> {
    let comparison: Comparison | undefined;
    const at = await this.gate.until(() => (comparison = compare(model, this.snapshot())).ok, timeoutMs);
    return { at, comparison: comparison ?? compare(model, this.snapshot()) };
  }

  /**
   * Resolves with the seconds from `issuedAt` until the watch event after which both the Endpoints
   * and the EndpointSlices of `service` show `ip` with readiness `ready`; `undefined` when a later
   * write to the same pod superseded the probe or `settleProbes` ended it.
   */
  expectReadiness(
    service: string,
    ip: string,
    ready: boolean,
    issuedAt: number,
  ): Promise<number | undefined> {
    return new Promise((resolve) => {
      let byIp = this.probes.get(service);
      if (byIp === undefined) {
        byIp = new Map();
        this.probes.set(service, byIp);
      }
      byIp.get(ip)?.resolve(undefined);
      byIp.set(ip, { ready, issuedAt, resolve });
    });
  }

  /** The IPs the Endpoints of `service` lists as ready (all its ready pods' up to 1000). */
  listedReady(service: string): Set<string> {
    return new Set(
      [...readinessView(this.endpoints.lister.get(`${NAMESPACE}/${service}`), []).inEndpoints]
        .filter(([, ready]) => ready)
        .map(([ip]) => ip),
    );
  }

  /**
   * Resolves once no Endpoints or EndpointSlice event of the namespace arrived for `quietMs` (at
   * most after `maxMs`): the controllers' writes for what came before have landed, so the next
   * step's figures do not take in their tail.
   */
  async quiet(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    for (;;) {
      const left = this.lastEventAt + quietMs - Date.now();
      if (left <= 0 || Date.now() >= deadline) return;
      await new Promise((r) => setTimeout(r, Math.min(left, deadline - Date.now())));
    }
  }

  /** Ends the probes still pending (a pod flipped back before the first flip was seen). */
  settleProbes(): void {
    for (const byIp of this.probes.values()) for (const probe of byIp.values()) probe.resolve(undefined);
    this.probes.clear();
  }

  private checkProbes(service: string, at: number): void {
    const byIp = this.probes.get(service);
    if (byIp === undefined) return;
    const view = readinessView(
      this.endpoints.lister.get(`${NAMESPACE}/${service}`),
      this.slices.lister.byIndex(BY_SERVICE, service),
    );
    for (const [ip, probe] of byIp) {
      if (readinessShown(view, ip, probe.ready)) {
        probe.resolve(Math.max(0, at - probe.issuedAt) / 1000);
        byIp.delete(ip);
      }
    }
    if (byIp.size === 0) this.probes.delete(service);
  }

  async stop(): Promise<void> {
    this.settleProbes();
    this.stopping.abort();
    await this.running.catch(() => undefined);
  }
}
