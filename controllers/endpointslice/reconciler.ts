/**
 * EndpointSlice reconciler: plans the slice writes for one Service from the caches (`plan`, pure
 * given the caches, so unit tests assert exact plans) and issues them (`reconcile`).
 *
 * Plan of one sync:
 * - Service gone: delete every slice we manage for its name (no garbage collector needed).
 * - Service we leave alone (ExternalName, no selector): nothing.
 * - The cache lags our own writes (tracker): StaleCacheError, retried; never plan from it.
 * - Otherwise, per address type of the Service, placement (placement.ts) then hints (hints.ts);
 *   slices of address types the Service no longer has are deleted; the trigger-time annotation is
 *   set on every slice written (removed when nothing new triggered the write); no creates while
 *   the Service is being deleted.
 * Writes go out as creates, updates, deletes. Pods on Nodes missing from the cache are left out
 * and the sync fails afterwards, so that it is retried with backoff until the Node shows up.
 */
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Clock } from '../../shared/clock.ts';
import type { Reconciler, Request, Result } from '../../shared/controller/reconciler.ts';
import {
  emptyPlan,
  ENDPOINTSLICE_MANAGED_BY,
  executeSlicePlan,
  LABEL_MANAGED_BY,
  SERVICE_NAME_INDEX,
  SLICE_TRIGGER_TIME_ANNOTATION,
  type EndpointSliceWriter,
  type SlicePlan,
} from '../../shared/endpoints/slices.ts';
import { StaleCacheError } from '../../shared/endpoints/stalecache.ts';
import type { EndpointSliceTracker } from '../../shared/endpoints/tracker.ts';
import { formatTriggerTime, TriggerTimeTracker } from '../../shared/endpoints/triggertime.ts';
import { describeError, hasStatusCause } from '../../shared/kube/errors.ts';
import type { EventRecorder } from '../../shared/kube/events.ts';
import { objectKey } from '../../shared/kube/labels.ts';
import { podsSelectedBy } from '../../shared/endpoints/selection.ts';
import type { ReadonlyStore } from '../../shared/informer/store.ts';
import type { Logger } from '../../shared/log.ts';
import { inPieces, PIECE_SIZE, yieldIfTurnLong } from '../../shared/eventloop.ts';
import { PodMemo } from '../../shared/endpoints/podmemo.ts';
import { DesiredSlicesBuilder, serviceAddressTypes, type PodSliceEntry } from './desired.ts';
import { hintModeOf, TopologyHints, type HintEvent } from './hints.ts';
import { placeEndpoints } from './placement.ts';

export interface EndpointSliceListers {
  services: ReadonlyStore<V1Service>;
  /** Must have POD_LABEL_INDEX (shared/endpoints/selection.ts). */
  pods: ReadonlyStore<V1Pod>;
  /** Must have the SERVICE_NAME_INDEX index. */
  slices: ReadonlyStore<V1EndpointSlice>;
  nodes: ReadonlyStore<V1Node>;
}

/** The writes of one sync, and what else it found. */
export interface SyncPlan extends SlicePlan {
  /** Hint events to record on the Service. */
  events: HintEvent[];
  /** Pods left out because their Node is not cached yet (the sync is retried). */
  podsOnMissingNodes: string[];
}

export class MissingNodesError extends Error {
  constructor(key: string, pods: readonly string[]) {
    super(`Service ${key}: pods ${pods.join(', ')} run on Nodes not in the cache yet; retrying`);
    this.name = 'MissingNodesError';
  }
}

export interface EndpointSliceReconcilerDeps {
  listers: EndpointSliceListers;
  writer: EndpointSliceWriter;
  tracker: EndpointSliceTracker;
  maxEndpointsPerSlice: number;
  /** CPU share per zone of the eligible Nodes (hints.ts zoneCpuRatios), cached by the caller. */
  cpuRatios: () => Map<string, number> | undefined;
  log: Logger;
  clock: Clock;
  events?: Pick<EventRecorder, 'event'>;
}

export class EndpointSliceReconciler implements Reconciler {
  private readonly deps: EndpointSliceReconcilerDeps;
  private readonly triggerTimes = new TriggerTimeTracker();
  private readonly hints = new TopologyHints();
  /** Each pod's endpoints at the last sync of its Service (the incremental desired state). */
  private readonly memo = new PodMemo<PodSliceEntry | null>();

  constructor(deps: EndpointSliceReconcilerDeps) {
    this.deps = deps;
  }

  /**
   * The writes one sync of the Service would issue now. Throws StaleCacheError on a lagging cache.
   * A large Service's endpoints are built a piece at a time, the event loop going round between
   * pieces (shared/eventloop.ts); the caches are read again after that.
   */
  async plan({ namespace, name }: Request, signal?: AbortSignal): Promise<SyncPlan> {
    const key = objectKey(namespace, name);
    const { listers, tracker } = this.deps;
    const ownSlices = (): V1EndpointSlice[] => {
      const slices = listers.slices
        .byIndex(SERVICE_NAME_INDEX, key)
        .filter((s) => s.metadata?.labels?.[LABEL_MANAGED_BY] === ENDPOINTSLICE_MANAGED_BY);
      const stale = tracker.staleSlices(key, slices);
      if (stale !== undefined) {
        throw new StaleCacheError(
          `the EndpointSlice cache of ${key} lags our own writes (${stale}); retrying`,
        );
      }
      return slices;
    };
    let ours = ownSlices();
    const plan: SyncPlan = { ...emptyPlan(), events: [], podsOnMissingNodes: [] };

    const service = listers.services.get(key);
    if (!service) {
      this.triggerTimes.forget(key);
      this.hints.forget(key);
      plan.deletes = ours;
      return plan;
    }
    const pods = podsSelectedBy(service, listers.pods);
    const builder = new DesiredSlicesBuilder(service, (node) => listers.nodes.get(node), this.memo);
    await inPieces(pods, (piece) => builder.addPods(piece), signal);
    const desired = builder.finish();
    if (!desired) return plan;
    plan.podsOnMissingNodes = desired.podsOnMissingNodes;
    // Built in more than one piece: the loop may have gone round in between, and may again.
    const pieced = pods.length > PIECE_SIZE;
    if (pieced) {
      // Other events were handled between the pieces: place against the slices cached now.
      await yieldIfTurnLong(signal);
      ours = ownSlices();
    }

    const types = new Set<string>(serviceAddressTypes(service));
    const mode = hintModeOf(service);
    for (const addressType of desired.addressTypes) {
      if (pieced) await yieldIfTurnLong(signal);
      const placed = placeEndpoints({
        service,
        addressType,
        existing: ours.filter((s) => s.addressType === addressType),
        groups: desired.groups.get(addressType) ?? new Map(),
        maxEndpointsPerSlice: this.deps.maxEndpointsPerSlice,
      });
      const hinted = this.hints.reconcile({
        serviceKey: key,
        mode,
        addressType,
        creates: placed.creates,
        updates: placed.updates,
        unchanged: placed.unchanged,
        cpuRatios: this.deps.cpuRatios(),
      });
      plan.creates.push(...hinted.creates);
      plan.updates.push(...hinted.updates);
      plan.deletes.push(...placed.deletes);
      plan.events.push(...hinted.events);
    }
    plan.deletes.push(...ours.filter((s) => !types.has(s.addressType)));

    if (service.metadata?.deletionTimestamp != null) plan.creates = [];
    if (plan.creates.length + plan.updates.length > 0) {
      await yieldIfTurnLong(signal);
      const triggerTime = this.triggerTimes.compute(key, service, pods);
      for (const slice of [...plan.creates, ...plan.updates]) {
        const annotations = { ...(slice.metadata?.annotations ?? {}) };
        if (triggerTime) annotations[SLICE_TRIGGER_TIME_ANNOTATION] = formatTriggerTime(triggerTime);
        else delete annotations[SLICE_TRIGGER_TIME_ANNOTATION];
        slice.metadata = { ...slice.metadata, annotations };
      }
    }
    return plan;
  }

  /** A stale cache waits for our own writes to arrive (tracker.waitForCache); it uses up no retries. */
  async reconcile(request: Request, signal: AbortSignal): Promise<Result | void> {
    const key = objectKey(request.namespace, request.name);
    const object = { namespace: request.namespace, name: request.name };
    try {
      await this.sync(request, signal);
    } catch (err) {
      if (!(err instanceof StaleCacheError)) throw err;
      const wait = this.deps.tracker.waitForCache(key, this.deps.clock.now());
      if (wait.gaveUp)
        this.deps.log.info(`${err.message}; gave up waiting, planning from the cache`, { object });
      else this.deps.log.v(4).info(err.message, { object });
      return { requeueAfterMs: wait.requeueAfterMs };
    }
    this.deps.tracker.cacheCaughtUp(key);
  }

  /** Plans, issues the writes and returns the plan it issued (tests read it). */
  async sync(request: Request, signal: AbortSignal): Promise<SyncPlan> {
    const { namespace, name } = request;
    const key = objectKey(namespace, name);
    const plan = await this.plan(request, signal);
    const service = this.deps.listers.services.get(key);
    const ref = service && {
      kind: 'Service',
      apiVersion: 'v1',
      namespace,
      name,
      uid: service.metadata?.uid,
    };
    if (ref) for (const e of plan.events) this.deps.events?.event(ref, e.type, e.reason, e.message);
    try {
      await executeSlicePlan(namespace, plan, this.deps.writer, this.deps.tracker, signal);
    } catch (err) {
      if (hasStatusCause(err, 'NamespaceTerminating')) {
        this.deps.log.v(2).info('namespace is terminating; not creating EndpointSlices', {
          object: { namespace, name },
        });
        return plan;
      }
      if (ref) {
        this.deps.events?.event(
          ref,
          'Warning',
          'FailedToUpdateEndpointSlices',
          `Error updating Endpoint Slices for Service ${key}: ${describeError(err)}`,
        );
      }
      throw err;
    }
    // The Service is gone and so are its slices: nothing left to track.
    if (!service && plan.deletes.length === 0) this.deps.tracker.deleteService(key);
    if (plan.podsOnMissingNodes.length > 0) throw new MissingNodesError(key, plan.podsOnMissingNodes);
    return plan;
  }
}
