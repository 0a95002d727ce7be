/**
 * EndpointSlice mirroring controller wiring: Endpoints, Services and EndpointSlices informers ->
 * keys ("namespace/name" of an Endpoints and its Service) -> EndpointSliceMirroringReconciler.
 *
 * Triggers:
 * - an Endpoints add or update (after --mirroring-endpointslice-updates-batch-period), or delete.
 *   The initial list brings every Endpoints as an add.
 * - a Service add or delete; an update only when the presence of its selector changes.
 * - a Service whose ClusterIPs appear, change or go: the mirrorable Endpoints holding one of those
 *   addresses (they may have to drop it, or may mirror it again).
 * - a mirrored slice (managed by us) added or updated by someone else (its generation is newer
 *   than the one we wrote, or we never wrote it: at start, this enqueues the keys of orphaned
 *   slices), or whose service-name / managed-by label changed (old and new keys); a mirrored
 *   slice deleted by anyone but us (wired by watchOwnSlices in shared/endpoints/watches.ts).
 */
import type { V1Service } from '@kubernetes/client-node';
import { Controller } from '../../shared/controller/controller.ts';
import { defaultControllerRateLimiter } from '../../shared/workqueue/ratelimiter.ts';
import { watchOwnSlices } from '../../shared/endpoints/watches.ts';
import {
  apiEndpointSliceWriter,
  SERVICE_NAME_INDEX,
  serviceNameIndex,
} from '../../shared/endpoints/slices.ts';
import {
  endpointSliceResource,
  endpointsResource,
  serviceResource,
} from '../../shared/informer/resources.ts';
import { describeError } from '../../shared/kube/errors.ts';
import { keyOf, parseKey } from '../../shared/kube/labels.ts';
import type { ControllerContext } from '../context.ts';
import {
  CLUSTER_IP_INDEX,
  clusterIPIndex,
  ENDPOINTS_ADDRESS_INDEX,
  endpointsAddressIndex,
  hasSelector,
  isMirroredSlice,
} from './desired.ts';
import { EndpointSliceMirroringReconciler } from './reconciler.ts';

export const MIRRORING_CONTROLLER_NAME = 'endpointslicemirroring';

export function newMirroringController(ctx: ControllerContext): Controller {
  const endpoints = ctx.informers.informerFor(endpointsResource);
  const services = ctx.informers.informerFor(serviceResource);
  const slices = ctx.informers.informerFor(endpointSliceResource);
  slices.addIndexers({ [SERVICE_NAME_INDEX]: serviceNameIndex });
  services.addIndexers({ [CLUSTER_IP_INDEX]: clusterIPIndex });
  endpoints.addIndexers({ [ENDPOINTS_ADDRESS_INDEX]: endpointsAddressIndex });
  const log = ctx.log.child({ controller: MIRRORING_CONTROLLER_NAME });

  const reconciler = new EndpointSliceMirroringReconciler({
    listers: { endpoints: endpoints.lister, services: services.lister, slices: slices.lister },
    writer: apiEndpointSliceWriter(ctx.client),
    log,
    events: ctx.events,
    maxEndpointsPerSubset: ctx.config.mirroringMaxEndpointsPerSubset,
    clock: ctx.clock,
  });
  const tracker = reconciler.tracker;
  const controller = new Controller({
    name: MIRRORING_CONTROLLER_NAME,
    workers: ctx.config.mirroringConcurrentServiceEndpointSyncs,
    // Upstream's: per Endpoints 1 s doubling to 1000 s, and 10 retries/s (burst 100) overall.
    rateLimiter: defaultControllerRateLimiter<string>(ctx.clock, 1000),
    reconciler,
    log,
    clock: ctx.clock,
    registry: ctx.registry,
    maxRetries: 15,
    caches: [endpoints, services, slices],
    onDropped: (key, err) => {
      const ep = endpoints.lister.get(key);
      if (!ep) return;
      const { namespace, name } = parseKey(key);
      ctx.events.event(
        { kind: 'Endpoints', apiVersion: 'v1', namespace, name, uid: ep.metadata?.uid },
        'Warning',
        'FailedToMirrorEndpointSlices',
        `Giving up on mirroring Endpoints ${key} to EndpointSlices after repeated failures: ${describeError(err)}`,
      );
    },
  });

  const batch = ctx.config.mirroringEndpointSliceUpdatesBatchPeriodMs;

  endpoints.addEventHandler({
    add: (ep) => controller.enqueueAfter(keyOf(ep), batch),
    update: (_old, ep) => controller.enqueueAfter(keyOf(ep), batch),
    delete: (ep) => controller.enqueue(keyOf(ep)),
  });

  /** Endpoints (other than the Service's own) holding one of `ips`. */
  const enqueueHoldersOf = (ips: Iterable<string>, service: V1Service): void => {
    const own = keyOf(service);
    for (const ip of ips) {
      for (const ep of endpoints.lister.byIndex(ENDPOINTS_ADDRESS_INDEX, ip)) {
        const key = keyOf(ep);
        if (key !== own) controller.enqueue(key);
      }
    }
  };
  services.addEventHandler({
    add: (svc) => {
      controller.enqueue(keyOf(svc));
      enqueueHoldersOf(clusterIPIndex(svc), svc);
    },
    update: (old, svc) => {
      if (hasSelector(old) !== hasSelector(svc)) controller.enqueue(keyOf(svc));
      const before = new Set(clusterIPIndex(old));
      const after = new Set(clusterIPIndex(svc));
      const changed = [...before, ...after].filter((ip) => before.has(ip) !== after.has(ip));
      enqueueHoldersOf(changed, svc);
    },
    delete: (svc) => {
      controller.enqueue(keyOf(svc));
      enqueueHoldersOf(clusterIPIndex(svc), svc);
    },
  });

  watchOwnSlices(
    slices,
    tracker,
    isMirroredSlice,
    (key) => controller.enqueueAfter(key, batch),
    (key) => controller.enqueue(key),
  );
  return controller;
}
