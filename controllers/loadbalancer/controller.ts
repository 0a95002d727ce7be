/**
 * LoadBalancer wiring, on the leader: Services, Namespaces and LoadBalancerIPPools informers ->
 * the address book -> LoadBalancerReconciler (Service status) and PoolStatusReconciler (pool
 * status, maps, metrics).
 *
 * Start order (spec "Restart"): once the caches have synced, the book is filled from every
 * Service's status (oldest first; a younger Service claiming an address an older one holds, and
 * cannot share, is reassigned), and only then do the workers run. So a restart, or a new leader,
 * keeps every address where it is and writes nothing for Services already right.
 *
 * Triggers: a Service add/update/delete (its key); a pool add/update/delete (every Service of
 * ours: pinned pools, selectors and PoolChanged notes may change); a Namespace added or its
 * labels changed (its Services); addresses freed (every Service still waiting for one). The webhook's part
 * (`newLoadBalancerAdmission`) adds the cleanup finalizer at create.
 */
import type { V1Namespace, V1Service } from '@kubernetes/client-node';
import { whenAborted } from '../../shared/abort.ts';
import { KubeRangeAllocationStore } from '../../shared/allocator/storage.ts';
import { Controller } from '../../shared/controller/controller.ts';
import { customResource, namespaceResource, serviceResource } from '../../shared/informer/resources.ts';
import { NAMESPACE_INDEX } from '../../shared/informer/store.ts';
import type { KubeClient } from '../../shared/kube/client.ts';
import { isNotFound } from '../../shared/kube/errors.ts';
import { keyOf } from '../../shared/kube/labels.ts';
import type { AdmissionContext, ControllerContext, Runnable } from '../context.ts';
import { LoadBalancerAdmission } from './admission.ts';
import { AddressBook } from './book.ts';
import { inScope, type Scope, statusAddresses } from './desired.ts';
import { loadBalancerMetrics } from './metrics.ts';
import { type ParsedPool, resolvePools } from './pools.ts';
import { PoolStatusReconciler } from './poolstatus.ts';
import { LoadBalancerReconciler, type ServiceStatusWriter } from './reconciler.ts';
import { sharingConflictWithAll, sharingProfile } from './sharing.ts';
import { type LoadBalancerIPPool, POOL_GROUP, POOL_KIND, POOL_PLURAL, POOL_VERSION } from './types.ts';

export const LOADBALANCER_CONTROLLER_NAME = 'loadbalancer';
/** Pool counts and maps follow the book at most this often (condition changes go at once). */
export const POOL_SYNC_DELAY_MS = 10_000;

export const poolResource = customResource<LoadBalancerIPPool>(
  POOL_KIND,
  POOL_GROUP,
  POOL_VERSION,
  POOL_PLURAL,
  false,
);

export function scopeOf(config: ControllerContext['config']): Scope {
  return { loadBalancerClass: config.loadBalancerClass, defaultLoadBalancer: config.defaultLoadBalancer };
}

export function newLoadBalancerAdmission(ctx: AdmissionContext): LoadBalancerAdmission {
  return new LoadBalancerAdmission(scopeOf(ctx.config));
}

export function newLoadBalancerController(ctx: ControllerContext): Runnable {
  const log = ctx.log.child({ controller: LOADBALANCER_CONTROLLER_NAME });
  const services = ctx.informers.informerFor(serviceResource);
  const namespaces = ctx.informers.informerFor(namespaceResource);
  const pools = ctx.informers.informerFor(poolResource);
  const metrics = loadBalancerMetrics(ctx.registry);
  const scope = scopeOf(ctx.config);
  let started = false;
  // The pools whose addresses changed follow the book (see POOL_SYNC_DELAY_MS).
  const book = new AddressBook((pool) => {
    if (started) poolController.enqueueAfter(pool, POOL_SYNC_DELAY_MS);
  });
  let parsed: ParsedPool[] = [];

  const reconciler = new LoadBalancerReconciler({
    services: services.lister,
    namespaceLabels: (ns) => namespaces.lister.get(ns)?.metadata?.labels,
    pools: () => parsed,
    book,
    writer: apiStatusWriter(ctx.client),
    scope,
    reassignOnPoolChange: ctx.config.reassignOnPoolChange,
    events: ctx.events,
    metrics,
    clock: ctx.clock,
    log,
    onFreed: () => {
      for (const key of reconciler.pendingKeys) serviceController.enqueue(key);
    },
  });
  const serviceController = new Controller({
    name: LOADBALANCER_CONTROLLER_NAME,
    workers: ctx.config.concurrentServiceSyncs,
    reconciler,
    log,
    clock: ctx.clock,
    registry: ctx.registry,
    caches: [services, namespaces, pools],
  });
  const poolController = new Controller({
    name: `${LOADBALANCER_CONTROLLER_NAME}-pools`,
    workers: 1,
    reconciler: new PoolStatusReconciler({
      pools: pools.lister,
      parsed: () => parsed,
      book,
      client: ctx.client,
      maps: new KubeRangeAllocationStore(ctx.client, { fenced: true }),
      metrics,
      clock: ctx.clock,
      log: log.child({ part: 'pools' }),
      busy: () => serviceController.unfinished() > 0,
      events: ctx.events,
    }),
    log: log.child({ part: 'pools' }),
    clock: ctx.clock,
    registry: ctx.registry,
    caches: [services, namespaces, pools],
  });

  const enqueueOurServices = (): void => {
    for (const svc of services.lister.list()) {
      if (inScope(svc, scope) || book.addressesOf(keyOf(svc))) serviceController.enqueue(keyOf(svc));
    }
  };
  const refreshPools = (): void => {
    parsed = resolvePools(pools.lister.list());
    book.setPools(parsed);
    for (const pool of pools.lister.keys()) poolController.enqueue(pool);
    if (started) enqueueOurServices();
  };

  services.addEventHandler({
    add: (svc) => serviceController.enqueue(keyOf(svc)),
    update: (_old, svc) => serviceController.enqueue(keyOf(svc)),
    delete: (svc) => serviceController.enqueue(keyOf(svc)),
  });
  const enqueueNamespace = (ns: V1Namespace): void => {
    for (const svc of services.lister.byIndex(NAMESPACE_INDEX, ns.metadata?.name ?? '')) {
      if (inScope(svc, scope)) serviceController.enqueue(keyOf(svc));
    }
  };
  namespaces.addEventHandler({
    // A Service seen before its namespace (the informers run apart) was matched against no labels.
    add: (ns) => {
      if (started) enqueueNamespace(ns);
    },
    update: (old, ns) => {
      if (started && !sameLabels(old, ns)) enqueueNamespace(ns);
    },
  });
  let refreshQueued = false;
  const onPoolChange = (pool: LoadBalancerIPPool): void => {
    poolController.enqueue(keyOf(pool));
    if (!started || refreshQueued) return;
    // A burst of pool events (kubectl apply of several) is read once.
    refreshQueued = true;
    setImmediate(() => {
      refreshQueued = false;
      refreshPools();
    });
  };
  pools.addEventHandler({
    add: onPoolChange,
    update: (old, pool) => {
      if (
        old.metadata?.generation !== pool.metadata?.generation ||
        old.metadata?.creationTimestamp !== pool.metadata?.creationTimestamp
      )
        onPoolChange(pool);
    },
    delete: onPoolChange,
  });

  const rebuild = (): void => {
    const ours = services.lister
      .list()
      .filter((svc) => inScope(svc, scope) && statusAddresses(svc).length > 0)
      .sort(
        (a, b) =>
          (Date.parse(String(a.metadata?.creationTimestamp ?? '')) || 0) -
            (Date.parse(String(b.metadata?.creationTimestamp ?? '')) || 0) || (keyOf(a) < keyOf(b) ? -1 : 1),
      );
    let adopted = 0;
    let refused = 0;
    for (const svc of ours) {
      const profile = sharingProfile(keyOf(svc), svc);
      const addresses = statusAddresses(svc).filter((ip) => {
        const ok = sharingConflictWithAll(profile, book.holdersOf(ip).values()) === undefined;
        if (!ok) refused++;
        return ok;
      });
      if (addresses.length === 0) continue;
      book.assign(addresses, profile);
      adopted++;
    }
    log.info('address book rebuilt from Service statuses', { services: adopted, refusedDuplicates: refused });
  };

  return {
    name: LOADBALANCER_CONTROLLER_NAME,
    async start(stop: AbortSignal, abort: AbortSignal): Promise<void> {
      const signal = AbortSignal.any([stop, abort]);
      void warnWhileCrdMissing(ctx.client, ctx.clock, log, signal);
      try {
        await Promise.all([services, namespaces, pools].map((c) => c.waitForSync(signal)));
      } catch {
        return; // stopped before the caches synced
      }
      refreshPools();
      rebuild();
      started = true;
      await Promise.all([
        serviceController.start(stop, abort),
        poolController.start(stop, abort),
        whenAborted(signal),
      ]);
    },
  };
}

/**
 * Without the CRD the pool informer retries quietly (at info level); say once a minute, as an
 * error, what is missing and how to install it. Nothing stops: the informer picks the pools up
 * as soon as the CRD is served.
 */
async function warnWhileCrdMissing(
  client: KubeClient,
  clock: ControllerContext['clock'],
  log: ControllerContext['log'],
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    try {
      await client.getJson(poolResource.listPath, { limit: 1 }, signal);
      return;
    } catch (err) {
      if (!isNotFound(err)) return; // the informer reports anything else
      log.error(
        'the LoadBalancerIPPool CRD is not installed: no pool can be read and no address assigned until it is ' +
          '(kubectl apply -f manifests/crds/loadbalancerippools.scm.dev.yaml)',
        undefined,
      );
    }
    await clock.sleep(60_000, signal).catch(() => undefined);
  }
}

function sameLabels(a: V1Namespace, b: V1Namespace): boolean {
  return JSON.stringify(a.metadata?.labels ?? {}) === JSON.stringify(b.metadata?.labels ?? {});
}

/** Status and finalizer writes as JSON patches that carry the resourceVersion read (409 if stale). */
export function apiStatusWriter(client: KubeClient): ServiceStatusWriter {
  const patch = (svc: V1Service, path: string, value: unknown) => ({
    name: svc.metadata?.name ?? '',
    namespace: svc.metadata?.namespace ?? '',
    body: [
      { op: 'replace', path: '/metadata/resourceVersion', value: svc.metadata?.resourceVersion },
      { op: 'add', path, value },
    ],
  });
  return {
    writeStatus: (svc, status, signal) =>
      client.core.patchNamespacedServiceStatus(patch(svc, '/status', status), client.withSignal(signal)),
    writeFinalizers: (svc, finalizers, signal) =>
      client.core.patchNamespacedService(
        patch(svc, '/metadata/finalizers', finalizers),
        client.withSignal(signal),
      ),
  };
}
