/**
 * Endpoints controller wiring: Services, Pods and Endpoints informers -> keys of the Services to
 * sync -> EndpointsReconciler.
 *
 * Triggers (spec "Triggers"): a Service add/update/delete; a pod add/delete (every Service of its
 * namespace whose selector matches it, after --endpoint-updates-batch-period); a pod update only
 * when it changes what Endpoints show (see predicates.ts; wired by watchPodsForServices in shared/endpoints/watches.ts); an Endpoints
 * delete, and an update of an Endpoints we manage (hand edits are corrected at once); and every
 * Endpoints at start (the initial list), so an orphan whose Service is gone is deleted.
 */
import type { V1Endpoints } from '@kubernetes/client-node';
import { Controller } from '../../shared/controller/controller.ts';
import { keyOf, parseKey } from '../../shared/kube/labels.ts';
import { endpointsResource, podResource, serviceResource } from '../../shared/informer/resources.ts';
import { describeError } from '../../shared/kube/errors.ts';
import type { ControllerContext } from '../context.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './desired.ts';
import { watchPodsForServices } from '../../shared/endpoints/watches.ts';
import { apiEndpointsWriter, EndpointsReconciler } from './reconciler.ts';
import { addSelectionIndexes } from '../../shared/endpoints/selection.ts';

export const ENDPOINTS_CONTROLLER_NAME = 'endpoint';
const LEADER_ANNOTATION = 'control-plane.alpha.kubernetes.io/leader';

export function newEndpointsController(ctx: ControllerContext): Controller {
  const services = ctx.informers.informerFor(serviceResource);
  const pods = ctx.informers.informerFor(podResource);
  const endpoints = ctx.informers.informerFor(endpointsResource);
  addSelectionIndexes(pods, services);
  const log = ctx.log.child({ controller: ENDPOINTS_CONTROLLER_NAME });

  const reconciler = new EndpointsReconciler({
    listers: { services: services.lister, pods: pods.lister, endpoints: endpoints.lister },
    writer: apiEndpointsWriter(ctx.client),
    log,
    events: ctx.events,
  });
  const controller = new Controller({
    name: ENDPOINTS_CONTROLLER_NAME,
    workers: ctx.config.concurrentEndpointSyncs,
    adaptiveBatchMaxMs: ctx.config.maxAdaptiveBatchPeriodMs,
    reconciler,
    log,
    clock: ctx.clock,
    registry: ctx.registry,
    maxRetries: 15,
    caches: [services, pods, endpoints],
    onDropped: (key, err) => {
      const { namespace, name } = parseKey(key);
      const svc = services.lister.get(key);
      if (!svc) return;
      ctx.events.event(
        { kind: 'Service', apiVersion: 'v1', namespace, name, uid: svc.metadata?.uid },
        'Warning',
        'FailedToUpdateEndpoint',
        `Giving up on Endpoints ${key} after repeated failures: ${describeError(err)}`,
      );
    },
  });

  const batch = ctx.config.endpointUpdatesBatchPeriodMs;
  services.addEventHandler({
    add: (svc) => controller.enqueue(keyOf(svc)),
    update: (_old, svc) => controller.enqueue(keyOf(svc)),
    delete: (svc) => controller.enqueue(keyOf(svc)),
  });
  watchPodsForServices(pods, services.lister, (key) => controller.enqueueBatched(key, batch));
  const ours = (ep: V1Endpoints): boolean => ep.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
  endpoints.addEventHandler({
    // The initial list brings every Endpoints here once: orphans get deleted.
    add: (ep) => {
      // Old-style leader-election locks live in Endpoints without a Service; never delete them.
      if (ep.metadata?.annotations?.[LEADER_ANNOTATION] === undefined) controller.enqueue(keyOf(ep));
    },
    update: (_old, ep) => {
      if (ours(ep)) controller.enqueue(keyOf(ep));
    },
    delete: (ep) => controller.enqueue(keyOf(ep)),
  });
  return controller;
}
