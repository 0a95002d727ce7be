/**
 * EndpointSlice controller wiring: Services, Pods, EndpointSlices and Nodes -> keys of the
 * Services to sync -> EndpointSliceReconciler.
 *
 * Triggers:
 * - Service add/update/delete: at once.
 * - Pod add/delete, and pod updates that change endpoints or membership (shared predicates,
 *   wired by watchPodsForServices in shared/endpoints/watches.ts): the Services selecting it, after --endpointslice-updates-batch-period.
 * - Our slices: add/update only when someone else wrote them (newer generation than we
 *   wrote, or new to us — which also brings every slice once at start, so orphans are cleaned),
 *   or when their service-name / managed-by labels moved them; delete only when we did not expect
 *   it (wired by watchOwnSlices in shared/endpoints/watches.ts). After max(1 s, batch period), as upstream, so a fight with another
 *   writer stays slow.
 * - Nodes: add/delete, or a change of readiness or zone label: the Services with pods on that
 *   Node (zone, pods skipped while their Node was missing), and when the zones' CPU shares moved,
 *   every Service with topology-mode Auto.
 */
import type { V1EndpointSlice, V1Node, V1Pod } from '@kubernetes/client-node';
import { Controller } from '../../shared/controller/controller.ts';
import { defaultControllerRateLimiter } from '../../shared/workqueue/ratelimiter.ts';
import { addSelectionIndexes, servicesSelecting } from '../../shared/endpoints/selection.ts';
import { watchOwnSlices, watchPodsForServices } from '../../shared/endpoints/watches.ts';
import {
  apiEndpointSliceWriter,
  ENDPOINTSLICE_MANAGED_BY,
  LABEL_MANAGED_BY,
  SERVICE_NAME_INDEX,
  serviceNameIndex,
} from '../../shared/endpoints/slices.ts';
import { EndpointSliceTracker } from '../../shared/endpoints/tracker.ts';
import {
  endpointSliceResource,
  nodeResource,
  podResource,
  serviceResource,
} from '../../shared/informer/resources.ts';
import { describeError } from '../../shared/kube/errors.ts';
import { keyOf, parseKey } from '../../shared/kube/labels.ts';
import type { ControllerContext } from '../context.ts';
import { ZONE_LABEL } from './desired.ts';
import { hintModeOf } from './hints.ts';
import { zoneCpuRatios } from './zones.ts';
import { EndpointSliceReconciler } from './reconciler.ts';

export const ENDPOINTSLICE_CONTROLLER_NAME = 'endpointslice';
/** Pods by node name, to find the Services a Node change concerns. */
export const POD_NODE_INDEX = 'nodeName';
export const podNodeIndex = (pod: V1Pod): string[] => (pod.spec?.nodeName ? [pod.spec.nodeName] : []);
/** Smallest delay before a sync triggered by a slice change (upstream's endpointSliceChangeMinSyncDelay). */
const SLICE_CHANGE_MIN_DELAY_MS = 1000;

export function newEndpointSliceController(ctx: ControllerContext): Controller {
  const services = ctx.informers.informerFor(serviceResource);
  const pods = ctx.informers.informerFor(podResource);
  const slices = ctx.informers.informerFor(endpointSliceResource);
  const nodes = ctx.informers.informerFor(nodeResource);
  slices.addIndexers({ [SERVICE_NAME_INDEX]: serviceNameIndex });
  pods.addIndexers({ [POD_NODE_INDEX]: podNodeIndex });
  addSelectionIndexes(pods, services);
  const log = ctx.log.child({ controller: ENDPOINTSLICE_CONTROLLER_NAME });
  const tracker = new EndpointSliceTracker();

  let ratios: Map<string, number> | undefined;
  let ratiosFresh = false;
  const cpuRatios = (): Map<string, number> | undefined => {
    if (!ratiosFresh) {
      ratios = zoneCpuRatios(nodes.lister.list());
      ratiosFresh = true;
    }
    return ratios;
  };

  const reconciler = new EndpointSliceReconciler({
    listers: { services: services.lister, pods: pods.lister, slices: slices.lister, nodes: nodes.lister },
    writer: apiEndpointSliceWriter(ctx.client),
    tracker,
    maxEndpointsPerSlice: ctx.config.maxEndpointsPerSlice,
    cpuRatios,
    log,
    clock: ctx.clock,
    events: ctx.events,
  });
  const controller = new Controller({
    name: ENDPOINTSLICE_CONTROLLER_NAME,
    workers: ctx.config.concurrentServiceEndpointSyncs,
    adaptiveBatchMaxMs: ctx.config.maxAdaptiveBatchPeriodMs,
    reconciler,
    // Upstream's: per Service 1 s doubling to 1000 s, and 10 retries/s (burst 100) overall.
    rateLimiter: defaultControllerRateLimiter<string>(ctx.clock, 1000),
    log,
    clock: ctx.clock,
    registry: ctx.registry,
    maxRetries: 15,
    caches: [services, pods, slices, nodes],
    onDropped: (key, err) => {
      const { namespace, name } = parseKey(key);
      const svc = services.lister.get(key);
      if (!svc) return;
      ctx.events.event(
        { kind: 'Service', apiVersion: 'v1', namespace, name, uid: svc.metadata?.uid },
        'Warning',
        'FailedToUpdateEndpointSlices',
        `Giving up on the EndpointSlices of ${key} after repeated failures: ${describeError(err)}`,
      );
    },
  });

  const batch = ctx.config.endpointSliceUpdatesBatchPeriodMs;
  const sliceDelay = Math.max(SLICE_CHANGE_MIN_DELAY_MS, batch);
  const enqueueAfterBatch = (serviceKey: string): void => controller.enqueueBatched(serviceKey, batch);

  services.addEventHandler({
    add: (svc) => controller.enqueue(keyOf(svc)),
    update: (_old, svc) => controller.enqueue(keyOf(svc)),
    delete: (svc) => controller.enqueue(keyOf(svc)),
  });
  watchPodsForServices(pods, services.lister, enqueueAfterBatch);

  const ours = (slice: V1EndpointSlice): boolean =>
    slice.metadata?.labels?.[LABEL_MANAGED_BY] === ENDPOINTSLICE_MANAGED_BY;
  watchOwnSlices(
    slices,
    tracker,
    ours,
    (key) => controller.enqueueAfter(key, sliceDelay),
    (key) => controller.enqueue(key),
  );

  const enqueueServicesOnNode = (node: V1Node): void => {
    const name = node.metadata?.name;
    if (!name) return;
    for (const pod of pods.lister.byIndex(POD_NODE_INDEX, name)) {
      for (const key of servicesSelecting(pod, services.lister)) enqueueAfterBatch(key);
    }
  };
  const nodeChanged = (node: V1Node): void => {
    enqueueServicesOnNode(node);
    const before = JSON.stringify([...(ratios ?? new Map<string, number>())].sort());
    ratiosFresh = false;
    const after = JSON.stringify([...(cpuRatios() ?? new Map<string, number>())].sort());
    if (before === after) return;
    for (const svc of services.lister.list()) {
      if (hintModeOf(svc) === 'auto') controller.enqueue(keyOf(svc));
    }
  };
  nodes.addEventHandler({
    add: nodeChanged,
    update: (oldNode, node) => {
      if (nodeFacts(oldNode) !== nodeFacts(node)) nodeChanged(node);
    },
    delete: nodeChanged,
  });
  return controller;
}

/** What of a Node the slices depend on: zone, readiness, role and CPU (hints). */
function nodeFacts(node: V1Node): string {
  const labels = node.metadata?.labels ?? {};
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  return JSON.stringify([
    labels[ZONE_LABEL],
    ready,
    labels['node-role.kubernetes.io/control-plane'],
    labels['node-role.kubernetes.io/master'],
    node.status?.allocatable?.cpu,
  ]);
}
