import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { CoreV1Event, V1Service, V1ServiceStatus } from '@kubernetes/client-node';
import { AddressBook } from '../../../controllers/loadbalancer/book.ts';
import { loadBalancerMetrics } from '../../../controllers/loadbalancer/metrics.ts';
import { type ParsedPool, resolvePools } from '../../../controllers/loadbalancer/pools.ts';
import {
  LoadBalancerReconciler,
  type ServiceStatusWriter,
} from '../../../controllers/loadbalancer/reconciler.ts';
import { sharingProfile } from '../../../controllers/loadbalancer/sharing.ts';
import type { LoadBalancerIPPool } from '../../../controllers/loadbalancer/types.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { Store } from '../../../shared/informer/store.ts';
import { EventRecorder, type EventSink } from '../../../shared/kube/events.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';
import { nopLogger } from '../../../shared/log.ts';
import { pool } from './fixtures.ts';

const FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
const CONDITION = 'scm.dev/AddressAssigned';
const WALL = Date.parse('2026-03-01T12:00:00Z');
const NOW = new Date(WALL);
const PORTS = [{ port: 80, protocol: 'TCP' }];

function service(
  name: string,
  opts: {
    finalizer?: boolean;
    spec?: Partial<NonNullable<V1Service['spec']>>;
    annotations?: Record<string, string>;
  } = {},
): V1Service {
  return {
    metadata: {
      name,
      namespace: 'n',
      uid: `uid-${name}`,
      generation: 1,
      resourceVersion: '1',
      ...(opts.finalizer === false ? {} : { finalizers: [FINALIZER] }),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    spec: {
      type: 'LoadBalancer',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      ports: [{ port: 80, protocol: 'TCP' }],
      ...opts.spec,
    },
  };
}

type Write =
  | { op: 'status'; key: string; resourceVersion: string | undefined; status: V1ServiceStatus }
  | { op: 'finalizers'; key: string; resourceVersion: string | undefined; finalizers: string[] };

/**
 * The API server and the informer in one: writes are checked against the stored resourceVersion
 * (409 when stale, 404 when gone), recorded, and land in the store the reconciler reads. A
 * Service being deleted goes once its last finalizer does.
 */
class FakeApi implements ServiceStatusWriter {
  readonly store = new Store<V1Service>();
  readonly writes: Write[] = [];
  /** The next write fails with this error (once). */
  failNext: Error | undefined;
  private rv = 100;

  put(svc: V1Service): V1Service {
    const stored = structuredClone({
      ...svc,
      metadata: { ...svc.metadata, resourceVersion: String(++this.rv) },
    });
    this.store.upsert(stored);
    return stored;
  }

  get(name: string): V1Service | undefined {
    return this.store.get(`n/${name}`);
  }

  writeStatus(svc: V1Service, status: V1ServiceStatus, _signal: AbortSignal): Promise<V1Service> {
    const current = this.check(svc);
    this.writes.push({
      op: 'status',
      key: keyOf(svc),
      resourceVersion: svc.metadata?.resourceVersion,
      status: structuredClone(status),
    });
    return Promise.resolve(this.put({ ...current, status: structuredClone(status) }));
  }

  writeFinalizers(svc: V1Service, finalizers: string[], _signal: AbortSignal): Promise<V1Service> {
    const current = this.check(svc);
    this.writes.push({
      op: 'finalizers',
      key: keyOf(svc),
      resourceVersion: svc.metadata?.resourceVersion,
      finalizers: [...finalizers],
    });
    const next = { ...current, metadata: { ...current.metadata, finalizers: [...finalizers] } };
    if (next.metadata.deletionTimestamp && finalizers.length === 0) {
      this.store.delete(keyOf(svc));
      return Promise.resolve(structuredClone(next));
    }
    return Promise.resolve(this.put(next));
  }

  private check(svc: V1Service): V1Service {
    const err = this.failNext;
    this.failNext = undefined;
    if (err) throw err;
    const current = this.store.get(keyOf(svc));
    if (!current) throw new KubeApiError(404, 'not found', { reason: 'NotFound' });
    if (current.metadata?.resourceVersion !== svc.metadata?.resourceVersion) {
      throw new KubeApiError(409, 'the object has been modified', { reason: 'Conflict' });
    }
    return current;
  }
}

function keyOf(svc: V1Service): string {
  return `${svc.metadata?.namespace}/${svc.metadata?.name}`;
}

class RecordingSink implements EventSink {
  readonly events: CoreV1Event[] = [];

  create(_namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    this.events.push(event);
    return Promise.resolve(event);
  }

  update(_namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    this.events.push(event);
    return Promise.resolve(event);
  }
}

interface Harness {
  api: FakeApi;
  book: AddressBook;
  registry: Registry;
  reconciler: LoadBalancerReconciler;
  setPools(pools: LoadBalancerIPPool[]): void;
  reconcile(name: string): Promise<void>;
  /** [object, type, reason, message] of every event since the last call. */
  events(): Promise<[string, string, string, string][]>;
  freed: { count: number };
  metric(name: string): Promise<{ labels: Record<string, string | number>; value: number }[]>;
}

function setup(
  pools: LoadBalancerIPPool[],
  opts: { scope?: { loadBalancerClass: string; defaultLoadBalancer: boolean }; reassign?: boolean } = {},
): Harness {
  const api = new FakeApi();
  const book = new AddressBook();
  let parsed: ParsedPool[] = [];
  const setPools = (next: LoadBalancerIPPool[]): void => {
    parsed = resolvePools(next);
    book.setPools(parsed);
  };
  setPools(pools);
  const clock = new FakeClock(0, WALL);
  const sink = new RecordingSink();
  const recorder = new EventRecorder({ sink, component: 'service-controller-manager', clock, host: 'test' });
  const registry = new Registry();
  const freed = { count: 0 };
  const reconciler = new LoadBalancerReconciler({
    services: api.store,
    namespaceLabels: () => undefined,
    pools: () => parsed,
    book,
    writer: api,
    scope: opts.scope ?? { loadBalancerClass: '', defaultLoadBalancer: false },
    reassignOnPoolChange: opts.reassign ?? false,
    events: recorder,
    metrics: loadBalancerMetrics(registry),
    clock,
    log: nopLogger,
    onFreed: () => freed.count++,
  });
  let seen = 0;
  return {
    api,
    book,
    registry,
    reconciler,
    setPools,
    freed,
    reconcile: async (name) => {
      await reconciler.reconcile({ namespace: 'n', name }, new AbortController().signal);
    },
    events: async () => {
      await recorder.flush();
      const out = sink.events
        .slice(seen)
        .map((e): [string, string, string, string] => [
          `${e.involvedObject.namespace}/${e.involvedObject.name}`,
          e.type ?? '',
          e.reason ?? '',
          e.message ?? '',
        ]);
      seen = sink.events.length;
      return out;
    },
    metric: async (name) => {
      const m = registry.getSingleMetric(name);
      if (!m) return [];
      const got = await m.get();
      return got.values.map((v) => ({
        labels: { ...v.labels } as Record<string, string | number>,
        value: v.value,
      }));
    },
  };
}

function assignedStatus(ip: string, message = `assigned ${ip}`): V1ServiceStatus {
  return {
    loadBalancer: { ingress: [{ ip, ipMode: 'VIP', ports: PORTS }] },
    conditions: [
      {
        type: CONDITION,
        status: 'True',
        reason: 'Assigned',
        message,
        observedGeneration: 1,
        lastTransitionTime: NOW,
      },
    ],
  };
}

describe('LoadBalancerReconciler', () => {
  it('first reconcile of a Service with the finalizer: exactly one status write and an IPAllocated event', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    const svc = h.api.put(service('s'));
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([
      {
        op: 'status',
        key: 'n/s',
        resourceVersion: svc.metadata?.resourceVersion,
        status: assignedStatus('192.0.2.0'),
      },
    ]);
    expect(await h.events()).to.deep.equal([['n/s', 'Normal', 'IPAllocated', 'Assigned IP [192.0.2.0]']]);
    expect(h.book.addressesOf('n/s')).to.deep.equal(['192.0.2.0']);
    expect(h.reconciler.pendingKeys.size).to.equal(0);
    expect(await h.metric('service_controller_manager_loadbalancer_allocations_total')).to.deep.equal([
      { labels: { pool: 'a', family: 'IPv4' }, value: 1 },
    ]);
  });

  it('a second reconcile with the Service at that status: no write, no event', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    await h.reconcile('s');
    await h.events();
    const writes = h.api.writes.length;
    expect(h.api.get('s')?.status).to.deep.equal(assignedStatus('192.0.2.0'));
    await h.reconcile('s');
    expect(h.api.writes.length).to.equal(writes);
    expect(await h.events()).to.deep.equal([]);
    expect(h.book.addressesOf('n/s')).to.deep.equal(['192.0.2.0']);
  });

  it('a Service without the finalizer: one finalizer write, then one status write at the new resourceVersion', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    const svc = h.api.put(service('s', { finalizer: false }));
    await h.reconcile('s');
    expect(h.api.writes.map((w) => w.op)).to.deep.equal(['finalizers', 'status']);
    const [fin, status] = h.api.writes;
    expect(fin).to.deep.equal({
      op: 'finalizers',
      key: 'n/s',
      resourceVersion: svc.metadata?.resourceVersion,
      finalizers: [FINALIZER],
    });
    expect(status.resourceVersion).to.not.equal(svc.metadata?.resourceVersion);
    expect(status).to.deep.include({ op: 'status', status: assignedStatus('192.0.2.0') });
    expect(h.api.get('s')?.metadata?.finalizers).to.deep.equal([FINALIZER]);
  });

  it('other finalizers are kept when ours is added', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    const svc = service('s', { finalizer: false });
    svc.metadata!.finalizers = ['example.com/keep'];
    h.api.put(svc);
    await h.reconcile('s');
    expect(h.api.writes[0]).to.deep.include({
      op: 'finalizers',
      finalizers: ['example.com/keep', FINALIZER],
    });
  });

  it('pool 192.0.2.0/30 with avoidBuggyIPs: the status carries 192.0.2.1', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'], { avoidBuggyIPs: true })]);
    h.api.put(service('s'));
    await h.reconcile('s');
    expect(h.api.get('s')?.status).to.deep.equal(assignedStatus('192.0.2.1'));
  });

  it('deletionTimestamp: finalizer removed, address freed, IPReleased, onFreed called', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    await h.reconcile('s');
    await h.events();
    const live = h.api.get('s')!;
    const deleting = h.api.put({ ...live, metadata: { ...live.metadata, deletionTimestamp: NOW } });
    h.api.writes.length = 0;
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([
      { op: 'finalizers', key: 'n/s', resourceVersion: deleting.metadata?.resourceVersion, finalizers: [] },
    ]);
    expect(h.api.get('s')).to.equal(undefined);
    expect(h.book.addressesOf('n/s')).to.equal(undefined);
    expect(h.book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
    expect(await h.events()).to.deep.equal([['n/s', 'Normal', 'IPReleased', 'Released IP [192.0.2.0]']]);
    expect(h.freed.count).to.equal(1);
  });

  it('type changed to ClusterIP: status write clearing ingress and condition, finalizer removed, address free', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    await h.reconcile('s');
    await h.events();
    const live = h.api.get('s')!;
    const changed = h.api.put({ ...live, spec: { ...live.spec, type: 'ClusterIP' } });
    h.api.writes.length = 0;
    await h.reconcile('s');
    expect(h.api.writes.map((w) => w.op)).to.deep.equal(['status', 'finalizers']);
    expect(h.api.writes[0]).to.deep.equal({
      op: 'status',
      key: 'n/s',
      resourceVersion: changed.metadata?.resourceVersion,
      status: { loadBalancer: {}, conditions: undefined },
    });
    expect(h.api.writes[1]).to.deep.include({ op: 'finalizers', finalizers: [] });
    expect(h.api.writes[1].resourceVersion).to.not.equal(changed.metadata?.resourceVersion);
    const after = h.api.get('s')!;
    expect(after.metadata?.finalizers).to.deep.equal([]);
    expect(after.status?.loadBalancer).to.deep.equal({});
    expect(h.book.addressesOf('n/s')).to.equal(undefined);
    expect(h.book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
    expect(await h.events()).to.deep.equal([
      [
        'n/s',
        'Normal',
        'IPReleased',
        'Released IP [192.0.2.0]: the Service is no longer a LoadBalancer this controller serves',
      ],
    ]);
    expect(h.freed.count).to.equal(1);
    // Once cleaned up, nothing more is written.
    h.api.writes.length = 0;
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([]);
  });

  it('type changed to ClusterIP while the manager was down (book rebuilt without it): the ingress we wrote is cleared too', async () => {
    // After a restart the book is rebuilt from in-scope Services only, so it holds nothing for this
    // one; its status still shows the address and our condition, and it still has our finalizer.
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    const svc = service('s', { spec: { type: 'ClusterIP' } });
    svc.status = assignedStatus('192.0.2.0');
    h.api.put(svc);
    await h.reconcile('s');
    expect(h.api.writes.map((w) => w.op)).to.deep.equal(['status', 'finalizers']);
    expect(h.api.get('s')?.status).to.deep.equal({ loadBalancer: {}, conditions: undefined });
    expect(h.api.get('s')?.metadata?.finalizers).to.deep.equal([]);
  });

  it('Service gone from the store: its addresses are released and onFreed is called, nothing written', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    await h.reconcile('s');
    await h.events();
    h.api.store.delete('n/s');
    h.api.writes.length = 0;
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([]);
    expect(h.book.addressesOf('n/s')).to.equal(undefined);
    expect(h.book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
    expect(h.freed.count).to.equal(1);
    expect(await h.events()).to.deep.equal([]);
  });

  it('a Service that cannot get an address: condition False, AllocationFailed, key pending; then the freed address', async () => {
    const h = setup([pool('a', ['192.0.2.0/32'])]);
    h.api.put(service('s1'));
    h.api.put(service('s2'));
    await h.reconcile('s1');
    await h.events();
    h.api.writes.length = 0;
    await h.reconcile('s2');
    const message = 'pool exhausted: no free IPv4 address in a (1 of 1 in use)';
    expect(h.api.writes).to.deep.equal([
      {
        op: 'status',
        key: 'n/s2',
        resourceVersion: '102',
        status: {
          loadBalancer: {},
          conditions: [
            {
              type: CONDITION,
              status: 'False',
              reason: 'PoolExhausted',
              message,
              observedGeneration: 1,
              lastTransitionTime: NOW,
            },
          ],
        },
      },
    ]);
    expect(await h.events()).to.deep.equal([['n/s2', 'Warning', 'AllocationFailed', message]]);
    expect([...h.reconciler.pendingKeys]).to.deep.equal(['n/s2']);
    expect(await h.metric('service_controller_manager_loadbalancer_allocation_failures_total')).to.deep.equal(
      [{ labels: { reason: 'PoolExhausted' }, value: 1 }],
    );

    // Retried unchanged: the same failure is not written or reported again.
    h.api.writes.length = 0;
    await h.reconcile('s2');
    expect(h.api.writes).to.deep.equal([]);
    expect(await h.events()).to.deep.equal([]);

    // Deleting s1 frees the address; s2 gets it.
    h.api.store.delete('n/s1');
    await h.reconcile('s1');
    expect(h.freed.count).to.equal(1);
    await h.reconcile('s2');
    expect(h.api.get('s2')?.status).to.deep.equal(assignedStatus('192.0.2.0'));
    expect(h.reconciler.pendingKeys.size).to.equal(0);
    expect(await h.events()).to.deep.equal([['n/s2', 'Normal', 'IPAllocated', 'Assigned IP [192.0.2.0]']]);
  });

  it('a requested IP outside every pool: AllocationFailed, no ingress', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s', { spec: { loadBalancerIP: '198.51.100.1' } }));
    await h.reconcile('s');
    const status = h.api.get('s')?.status;
    expect(status?.loadBalancer).to.deep.equal({});
    expect(status?.conditions?.map((c) => [c.status, c.reason])).to.deep.equal([
      ['False', 'RequestedIPNotInPool'],
    ]);
    expect(await h.events()).to.deep.equal([
      [
        'n/s',
        'Warning',
        'AllocationFailed',
        'requested IP not in pool: 198.51.100.1 is not in any pool that selects this Service',
      ],
    ]);
    expect(h.book.addressesOf('n/s')).to.equal(undefined);
  });

  it('a Service of another loadBalancerClass: no write at all, no event, nothing held', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s', { finalizer: false, spec: { loadBalancerClass: 'other.io/lb' } }));
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([]);
    expect(await h.events()).to.deep.equal([]);
    expect(h.book.addressesOf('n/s')).to.equal(undefined);
    expect(h.reconciler.pendingKeys.size).to.equal(0);
  });

  it('a non-LoadBalancer Service that was never ours: no write at all', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s', { finalizer: false, spec: { type: 'ClusterIP' } }));
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([]);
  });

  it('after a restart, a Service whose status the book was rebuilt from is not written', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    const svc = service('s');
    svc.status = assignedStatus('192.0.2.3');
    h.api.put(svc);
    h.book.assign(['192.0.2.3'], sharingProfile('n/s', svc));
    await h.reconcile('s');
    expect(h.api.writes).to.deep.equal([]);
    expect(await h.events()).to.deep.equal([]);
    expect(h.book.addressesOf('n/s')).to.deep.equal(['192.0.2.3']);
  });

  it('a changed request moves the Service: IPAllocated and IPReleased, onFreed called', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    await h.reconcile('s');
    await h.events();
    const live = h.api.get('s')!;
    h.api.put({
      ...live,
      metadata: { ...live.metadata, annotations: { 'scm.dev/load-balancer-ips': '192.0.2.3' } },
    });
    await h.reconcile('s');
    expect(h.api.get('s')?.status).to.deep.equal(assignedStatus('192.0.2.3'));
    expect(await h.events()).to.deep.equal([
      ['n/s', 'Normal', 'IPAllocated', 'Assigned IP [192.0.2.3]'],
      ['n/s', 'Normal', 'IPReleased', 'Released IP [192.0.2.0]'],
    ]);
    expect(h.freed.count).to.equal(1);
  });

  it('its pool deleted: the address is kept, condition PoolChanged, a PoolChanged event', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    await h.reconcile('s');
    await h.events();
    h.setPools([]);
    h.api.writes.length = 0;
    await h.reconcile('s');
    const note =
      '192.0.2.0 is no longer in a pool that selects this Service; it keeps the address until the Service changes (or --reassign-on-pool-change is set)';
    expect(h.api.writes).to.have.length(1);
    const status = h.api.get('s')?.status;
    expect(status?.loadBalancer?.ingress?.map((i) => i.ip)).to.deep.equal(['192.0.2.0']);
    expect(status?.conditions).to.deep.equal([
      {
        type: CONDITION,
        status: 'True',
        reason: 'PoolChanged',
        message: note,
        observedGeneration: 1,
        lastTransitionTime: NOW,
      },
    ]);
    expect(await h.events()).to.deep.equal([['n/s', 'Warning', 'PoolChanged', note]]);
  });

  it('a 409 on the status write fails the reconcile; the retry writes the same address', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    h.api.failNext = new KubeApiError(409, 'the object has been modified', { reason: 'Conflict' });
    let thrown: unknown;
    try {
      await h.reconcile('s');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(KubeApiError);
    expect(await h.events()).to.deep.equal([]);
    await h.reconcile('s');
    expect(h.api.get('s')?.status).to.deep.equal(assignedStatus('192.0.2.0'));
  });

  it('a 404 on the status write (deleted meanwhile): the addresses are released, no error', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s'));
    h.api.failNext = new KubeApiError(404, 'not found', { reason: 'NotFound' });
    await h.reconcile('s');
    expect(h.book.addressesOf('n/s')).to.equal(undefined);
    expect(h.book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
  });

  it('two Services with one sharing key and ports 80 and 443 get the same address in their statuses', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    const key = { 'scm.dev/allow-shared-ip': 'k' };
    h.api.put(service('http', { annotations: key }));
    h.api.put(service('https', { annotations: key, spec: { ports: [{ port: 443, protocol: 'TCP' }] } }));
    h.api.put(service('other', { annotations: key }));
    await h.reconcile('http');
    await h.reconcile('https');
    await h.reconcile('other');
    const ips = ['http', 'https', 'other'].map((n) => h.api.get(n)?.status?.loadBalancer?.ingress?.[0]?.ip);
    expect(ips).to.deep.equal(['192.0.2.0', '192.0.2.0', '192.0.2.1']);
  });

  it('RequireDualStack with only an IPv4 pool: nothing assigned, DualStackUnavailable given', async () => {
    const h = setup([pool('a', ['192.0.2.0/30'])]);
    h.api.put(service('s', { spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] } }));
    await h.reconcile('s');
    const status = h.api.get('s')?.status;
    expect(status?.loadBalancer).to.deep.equal({});
    expect(status?.conditions?.map((c) => [c.status, c.reason])).to.deep.equal([
      ['False', 'DualStackUnavailable'],
    ]);
    expect(h.book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
  });
});
