/**
 * NodePort allocation wiring: one map (`servicenodeports`) with
 * - `newNodePortAdmission`: the part of the Service webhook (admission.ts), in the webhook's worker
 *   thread on every replica, allocating through unfenced compare-and-swap writes;
 * - `newNodePortController`: on the leader, the repair loop (at start and every --repair-interval)
 *   and release on watch, both behind the write fence.
 */
import type { V1Service } from '@kubernetes/client-node';
import { StoredRangeAllocator } from '../../shared/allocator/committer.ts';
import { type RangeMetrics, rangeMetrics } from '../../shared/allocator/metrics.ts';
import type { PortRange } from '../../shared/allocator/ranges.ts';
import { ReservedPool } from '../../shared/allocator/pool.ts';
import { WatchReleaser } from '../../shared/allocator/release.ts';
import { RepairLoop } from '../../shared/allocator/repairloop.ts';
import { KubeRangeAllocationStore } from '../../shared/allocator/storage.ts';
import { reportUtilization } from '../../shared/allocator/utilization.ts';
import { serviceResource } from '../../shared/informer/resources.ts';
import { AllocationController, listAllServices } from '../allocation.ts';
import type { AdmissionContext, ControllerContext, Runnable } from '../context.ts';
import { NodePortAdmission } from './admission.ts';
import { heldNodePorts, releasedNodePorts } from './desired.ts';
import { NODEPORT_MAP_NAME, nodePortRepairOptions } from './reconciler.ts';

export const NODEPORT_CONTROLLER_NAME = 'nodeport';
const NODEPORT_INDEX = 'nodePort';

function nodePortAllocator(
  ctx: Pick<ControllerContext, 'clock' | 'log' | 'events'>,
  range: PortRange,
  store: KubeRangeAllocationStore,
  metrics: RangeMetrics,
): StoredRangeAllocator<number> {
  return new StoredRangeAllocator({
    name: NODEPORT_MAP_NAME,
    range,
    store,
    clock: ctx.clock,
    log: ctx.log.child({ map: NODEPORT_MAP_NAME }),
    onCommit: ({ before, after }) => reportUtilization(before, after, metrics, ctx.events),
  });
}

export function newNodePortAdmission(ctx: AdmissionContext): NodePortAdmission {
  const metrics = rangeMetrics(ctx.registry, 'nodeport');
  const store = new KubeRangeAllocationStore(ctx.client, { fenced: false });
  const range = ctx.allocationRanges?.nodePorts;
  if (!range) throw new Error('the nodeport webhook part needs the service ranges resolved at start');
  const allocator = nodePortAllocator(ctx, range, store, metrics);
  const pool = new ReservedPool({ allocator, holder: ctx.holder, clock: ctx.clock, log: ctx.log });
  return new NodePortAdmission({ allocator, pool, metrics });
}

export function newNodePortController(ctx: ControllerContext): Runnable {
  const range = ctx.allocationRanges?.nodePorts;
  if (!range) throw new Error('the nodeport controller needs the node port range resolved at start');
  const log = ctx.log.child({ controller: NODEPORT_CONTROLLER_NAME });
  const metrics = rangeMetrics(ctx.registry, 'nodeport');
  const services = ctx.informers.informerFor(serviceResource);
  services.addIndexers({ [NODEPORT_INDEX]: (svc: V1Service) => heldNodePorts(svc).map(String) });
  const store = new KubeRangeAllocationStore(ctx.client, { fenced: true });
  const loop = new RepairLoop({
    ...nodePortRepairOptions(range),
    store,
    listServices: listAllServices(ctx.client),
    intervalMs: ctx.config.repairIntervalMs,
    events: ctx.events,
    metrics,
    clock: ctx.clock,
    log: log.child({ map: NODEPORT_MAP_NAME }),
  });
  const releaser = new WatchReleaser<number>({
    allocator: nodePortAllocator(ctx, range, store, metrics),
    heldByAService: (port) => services.lister.indexSize(NODEPORT_INDEX, String(port)) > 0,
    log,
  });
  const release = (old: V1Service, svc: V1Service | undefined): void => {
    const freed = releasedNodePorts(old, svc);
    if (freed.length > 0) releaser.release(freed);
  };
  services.addEventHandler({
    update: (old, svc) => release(old, svc),
    delete: (svc) => release(svc, undefined),
  });
  return new AllocationController({
    name: NODEPORT_CONTROLLER_NAME,
    loops: [loop as RepairLoop<unknown>],
    releasers: [releaser as WatchReleaser<unknown>],
    caches: [services],
    log,
  });
}
