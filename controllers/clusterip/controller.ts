/**
 * ClusterIP allocation wiring: one map per configured family (`serviceips-ipv4`,
 * `serviceips-ipv6`), with
 * - `newClusterIPAdmission`: the part of the Service webhook (admission.ts), in the webhook's
 *   worker thread on every replica, allocating through unfenced compare-and-swap writes and
 *   skipping IPs the API server holds as IPAddress objects;
 * - `newClusterIPController`: on the leader, the repair loop (at start and every
 *   --repair-interval) and release on watch (a Service deleted or changed frees its IPs at once),
 *   both behind the write fence.
 */
import type { V1Service } from '@kubernetes/client-node';
import { StoredRangeAllocator } from '../../shared/allocator/committer.ts';
import { rangeMetrics } from '../../shared/allocator/metrics.ts';
import type { IPRange } from '../../shared/allocator/ranges.ts';
import { ReservedPool } from '../../shared/allocator/pool.ts';
import { WatchReleaser } from '../../shared/allocator/release.ts';
import { RepairLoop } from '../../shared/allocator/repairloop.ts';
import { KubeRangeAllocationStore } from '../../shared/allocator/storage.ts';
import { reportUtilization } from '../../shared/allocator/utilization.ts';
import { ipAddressResource, serviceResource } from '../../shared/informer/resources.ts';
import { canonicalIP, type IPFamily } from '../../shared/net/ip.ts';
import { AllocationController, listAllServices } from '../allocation.ts';
import type { AdmissionContext, ControllerContext, Runnable } from '../context.ts';
import { ClusterIPAdmission } from './admission.ts';
import { heldClusterIPs, releasedClusterIPs } from './desired.ts';
import { clusterIPRepairOptions, mapNameFor } from './reconciler.ts';

export const CLUSTERIP_CONTROLLER_NAME = 'clusterip';
const CLUSTERIP_INDEX = 'clusterIP';

export function newClusterIPAdmission(ctx: AdmissionContext): ClusterIPAdmission {
  const ranges = ctx.allocationRanges?.clusterIPs;
  if (!ranges) throw new Error('the clusterip webhook part needs the service ranges resolved at start');
  const metrics = rangeMetrics(ctx.registry, 'clusterip');
  const ipAddresses = ctx.informers.informerFor(ipAddressResource);
  const store = new KubeRangeAllocationStore(ctx.client, { fenced: false });
  const heldByApiServer = (ip: string): boolean => ipAddresses.lister.get(ip) !== undefined;
  const allocators = new Map<IPFamily, StoredRangeAllocator<string>>();
  const pools = new Map<IPFamily, ReservedPool<string>>();
  for (const range of ranges) {
    const allocator = allocatorFor(ctx, mapNameFor(range), range, store, metrics);
    allocators.set(range.family, allocator);
    pools.set(
      range.family,
      new ReservedPool({
        allocator,
        holder: ctx.holder,
        clock: ctx.clock,
        log: ctx.log,
        skip: heldByApiServer,
      }),
    );
  }
  return new ClusterIPAdmission({
    ranges,
    allocators,
    pools,
    heldByApiServer,
    externalIPsAllowedCidrs: ctx.config.externalIPsAllowedCidrs,
    metrics,
  });
}

export function newClusterIPController(ctx: ControllerContext): Runnable {
  const ranges = ctx.allocationRanges?.clusterIPs;
  if (!ranges?.length) throw new Error('the clusterip controller needs the service ranges resolved at start');
  const log = ctx.log.child({ controller: CLUSTERIP_CONTROLLER_NAME });
  const metrics = rangeMetrics(ctx.registry, 'clusterip');
  const services = ctx.informers.informerFor(serviceResource);
  services.addIndexers({
    [CLUSTERIP_INDEX]: (svc: V1Service) =>
      heldClusterIPs(svc)
        .map((ip) => canonicalIP(ip)?.address)
        .filter((ip): ip is string => ip !== undefined),
  });
  const store = new KubeRangeAllocationStore(ctx.client, { fenced: true });
  const listServices = listAllServices(ctx.client);
  const loops: RepairLoop<string>[] = [];
  const releasers: WatchReleaser<string>[] = [];
  for (const range of ranges) {
    const name = mapNameFor(range);
    loops.push(
      new RepairLoop({
        ...clusterIPRepairOptions(range, ranges),
        store,
        listServices,
        intervalMs: ctx.config.repairIntervalMs,
        events: ctx.events,
        metrics,
        clock: ctx.clock,
        log: log.child({ map: name }),
      }),
    );
    releasers.push(
      new WatchReleaser({
        allocator: allocatorFor(ctx, name, range, store, metrics),
        heldByAService: (ip) => services.lister.indexSize(CLUSTERIP_INDEX, ip) > 0,
        log,
      }),
    );
  }
  const release = (old: V1Service, svc: V1Service | undefined): void => {
    const freed = releasedClusterIPs(old, svc);
    if (freed.length > 0) for (const r of releasers) r.release(freed);
  };
  services.addEventHandler({
    update: (old, svc) => release(old, svc),
    delete: (svc) => release(svc, undefined),
  });
  return new AllocationController({
    name: CLUSTERIP_CONTROLLER_NAME,
    loops: loops as RepairLoop<unknown>[],
    releasers: releasers as WatchReleaser<unknown>[],
    caches: [services],
    log,
  });
}

function allocatorFor(
  ctx: Pick<ControllerContext, 'clock' | 'log' | 'events'>,
  name: string,
  range: IPRange,
  store: KubeRangeAllocationStore,
  metrics: ReturnType<typeof rangeMetrics>,
): StoredRangeAllocator<string> {
  return new StoredRangeAllocator({
    name,
    range,
    store,
    clock: ctx.clock,
    log: ctx.log.child({ map: name }),
    onCommit: ({ before, after }) => reportUtilization(before, after, metrics, ctx.events),
  });
}
