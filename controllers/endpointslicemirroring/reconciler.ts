/**
 * EndpointSlice mirroring reconciler: for one Endpoints key, plans from the caches (`plan`) and
 * issues the writes (`reconcile`).
 *
 * - Mirroring (see desired.ts `shouldMirror`): the mirrored slices in the cache are compared with
 *   the desired ones; a sync of an unchanged state writes nothing. Skipped addresses are reported
 *   as Warning events on the Endpoints.
 * - Otherwise (Endpoints or Service gone, skip-mirror label, leader-election record, Service with
 *   a selector): every slice mirrored for the key is deleted. Slices of other writers are never
 *   touched.
 *
 * Errors: an API error is thrown (retried with backoff by the controller); a create refused because
 * the namespace is terminating ends the sync quietly; a slice cache that has not caught up with our
 * own writes throws a StaleCacheError (retried) instead of planning from it.
 */
import type { V1EndpointSlice, V1Endpoints, V1Service } from '@kubernetes/client-node';
import { realClock, type Clock } from '../../shared/clock.ts';
import type { Reconciler, Request, Result } from '../../shared/controller/reconciler.ts';
import {
  emptyPlan,
  executeSlicePlan,
  SERVICE_NAME_INDEX,
  type EndpointSliceWriter,
  type SlicePlan,
} from '../../shared/endpoints/slices.ts';
import { StaleCacheError } from '../../shared/endpoints/stalecache.ts';
import { EndpointSliceTracker } from '../../shared/endpoints/tracker.ts';
import type { ReadonlyStore } from '../../shared/informer/store.ts';
import { hasStatusCause } from '../../shared/kube/errors.ts';
import type { EventRecorder } from '../../shared/kube/events.ts';
import { objectKey } from '../../shared/kube/labels.ts';
import { kref, type Logger } from '../../shared/log.ts';
import {
  CLUSTER_IP_INDEX,
  isMirroredSlice,
  planMirroring,
  shouldMirror,
  type MirrorEvent,
  type MirrorPlan,
} from './desired.ts';

export interface MirroringListers {
  endpoints: ReadonlyStore<V1Endpoints>;
  /** Must have the `CLUSTER_IP_INDEX` index. */
  services: ReadonlyStore<V1Service>;
  /** Must have the `SERVICE_NAME_INDEX` index. */
  slices: ReadonlyStore<V1EndpointSlice>;
}

/** What one sync would do. */
export type MirroringDecision =
  | ({ action: 'mirror'; endpoints: V1Endpoints } & MirrorPlan)
  | { action: 'delete'; reason: string; plan: SlicePlan; events: MirrorEvent[] };

/** The slices mirrored for the Endpoints `namespace/name`, by name. */
export function mirroredSlicesFor(
  slices: ReadonlyStore<V1EndpointSlice>,
  namespace: string,
  name: string,
): V1EndpointSlice[] {
  return slices
    .byIndex(SERVICE_NAME_INDEX, `${namespace}/${name}`)
    .filter((s) => s.metadata?.namespace === namespace && isMirroredSlice(s))
    .sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
}

export class EndpointSliceMirroringReconciler implements Reconciler {
  readonly tracker: EndpointSliceTracker;
  private readonly listers: MirroringListers;
  private readonly writer: EndpointSliceWriter;
  private readonly events: EventRecorder | undefined;
  private readonly log: Logger;
  private readonly maxEndpointsPerSubset: number;
  private readonly clock: Clock;

  constructor(deps: {
    listers: MirroringListers;
    writer: EndpointSliceWriter;
    log: Logger;
    maxEndpointsPerSubset: number;
    events?: EventRecorder;
    tracker?: EndpointSliceTracker;
    clock?: Clock;
  }) {
    this.clock = deps.clock ?? realClock;
    this.listers = deps.listers;
    this.writer = deps.writer;
    this.log = deps.log;
    this.events = deps.events;
    this.maxEndpointsPerSubset = deps.maxEndpointsPerSubset;
    this.tracker = deps.tracker ?? new EndpointSliceTracker();
  }

  /** The writes one sync of `namespace/name` would issue, from the caches alone. No side effect. */
  plan({ namespace, name }: Request): MirroringDecision {
    const key = objectKey(namespace, name);
    const endpoints = this.listers.endpoints.get(key);
    const service = this.listers.services.get(key);
    const cached = mirroredSlicesFor(this.listers.slices, namespace, name);
    if (endpoints === undefined || !shouldMirror(endpoints, service)) {
      const reason =
        endpoints === undefined
          ? 'the Endpoints is gone'
          : service === undefined
            ? 'the Service is gone'
            : 'the Endpoints or its Service is not to be mirrored';
      return { action: 'delete', reason, plan: { ...emptyPlan(), deletes: cached }, events: [] };
    }
    const mirror = planMirroring(endpoints, cached, {
      maxEndpointsPerSubset: this.maxEndpointsPerSubset,
      clusterIPOwners: (ip) =>
        this.listers.services
          .byIndex(CLUSTER_IP_INDEX, ip)
          .map((s) => objectKey(s.metadata?.namespace, s.metadata?.name ?? '')),
    });
    return { action: 'mirror', endpoints, ...mirror };
  }

  /** A stale cache waits for our own writes to arrive (tracker.waitForCache); it uses up no retries. */
  async reconcile(request: Request, signal: AbortSignal): Promise<Result | void> {
    const key = objectKey(request.namespace, request.name);
    const object = kref(request.namespace, request.name);
    try {
      await this.sync(request, signal);
    } catch (err) {
      if (!(err instanceof StaleCacheError)) throw err;
      const wait = this.tracker.waitForCache(key, this.clock.now());
      if (wait.gaveUp) this.log.info(`${err.message}; gave up waiting, planning from the cache`, { object });
      else this.log.v(4).info(err.message, { object });
      return { requeueAfterMs: wait.requeueAfterMs };
    }
    this.tracker.cacheCaughtUp(key);
  }

  /** Plans and issues the writes of one sync; throws StaleCacheError on a lagging cache. */
  async sync(request: Request, signal: AbortSignal): Promise<void> {
    const { namespace, name } = request;
    const key = objectKey(namespace, name);
    const decision = this.plan(request);
    const cached = mirroredSlicesFor(this.listers.slices, namespace, name);
    if (decision.action === 'delete') {
      if (cached.length === 0) {
        // Slices we created that the cache does not show yet come back through their add events
        // (unknown to the tracker from now on, so they are synced and deleted).
        this.tracker.deleteService(key);
        return;
      }
      // Also here: a cache still holding slices we already deleted would only cost 404 DELETEs.
      this.checkFresh(key, cached);
      this.log.v(2).info('deleting mirrored EndpointSlices', {
        object: kref(namespace, name),
        reason: decision.reason,
        slices: decision.plan.deletes.length,
      });
      await executeSlicePlan(namespace, decision.plan, this.writer, this.tracker, signal);
      return;
    }

    this.checkFresh(key, cached);
    const { endpoints, plan, events } = decision;
    for (const event of events) {
      this.events?.event(
        { kind: 'Endpoints', apiVersion: 'v1', namespace, name, uid: endpoints.metadata?.uid },
        'Warning',
        event.reason,
        event.message,
      );
    }
    if (plan.creates.length + plan.updates.length + plan.deletes.length === 0) return;
    this.log.v(2).info('mirroring Endpoints to EndpointSlices', {
      object: kref(namespace, name),
      creates: plan.creates.length,
      updates: plan.updates.length,
      deletes: plan.deletes.length,
    });
    try {
      await executeSlicePlan(namespace, plan, this.writer, this.tracker, signal);
    } catch (err) {
      if (hasStatusCause(err, 'NamespaceTerminating')) {
        this.log.v(2).info('namespace is terminating; not mirroring', { object: kref(namespace, name) });
        return;
      }
      throw err;
    }
  }

  /** Throws StaleCacheError when the slice cache does not show our own last writes for `key`. */
  private checkFresh(key: string, cached: readonly V1EndpointSlice[]): void {
    if (this.tracker.staleSlices(key, cached)) {
      throw new StaleCacheError(
        `the EndpointSlice cache for ${key} has not caught up with our own writes; retrying`,
      );
    }
  }
}
