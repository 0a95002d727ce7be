import { expect } from 'chai';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { FakeClock } from '../../../shared/clock.ts';
import { InformerFactory } from '../../../shared/informer/factory.ts';
import { SharedInformer } from '../../../shared/informer/informer.ts';
import type { ResourceType } from '../../../shared/informer/resources.ts';
import type { ListWatchClient, Query, WatchEvent } from '../../../shared/kube/client.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';
import { nopLogger } from '../../../shared/log.ts';

const configMaps: ResourceType<V1ConfigMap> = {
  kind: 'ConfigMap',
  listPath: '/api/v1/configmaps',
  modelType: 'V1ConfigMap',
  namespaced: true,
};

const cm = (name: string, rv: string, data: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'n', resourceVersion: rv, managedFields: [{ manager: 'x' }] },
  data,
});

type WatchScript = (onEvent: (ev: WatchEvent) => void, query: Query, signal: AbortSignal) => Promise<void>;

/**
 * A scripted API: each list call returns the next list (an Error entry rejects); each watch call
 * (streaming lists included) runs the next script.
 */
class ScriptedClient implements ListWatchClient {
  lists: ({ items: object[]; rv: string; continue?: string } | Error)[] = [];
  watches: WatchScript[] = [];
  listCalls = 0;
  listQueries: Query[] = [];
  watchQueries: Query[] = [];

  getJson(_path: string, query: Query): Promise<unknown> {
    const next = this.lists.shift();
    this.listCalls++;
    this.listQueries.push(query);
    if (!next) return Promise.reject(new Error('no list scripted'));
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve({
      metadata: { resourceVersion: next.rv, continue: next.continue },
      items: next.items,
    });
  }

  watch(_path: string, query: Query, onEvent: (ev: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.watchQueries.push(query);
    const script = this.watches.shift();
    if (!script) {
      // Nothing more scripted: block until stopped, like a quiet watch.
      return new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    }
    return script(onEvent, query, signal);
  }
}

/** The end-of-initial-events bookmark of a streaming list at `rv`. */
const initialEventsEnd = (rv: string): WatchEvent => ({
  type: 'BOOKMARK',
  object: {
    kind: 'ConfigMap',
    metadata: { resourceVersion: rv, annotations: { 'k8s.io/initial-events-end': 'true' } },
  },
});
const never = (): Promise<void> => new Promise(() => {});
const gone = (): WatchEvent => ({
  type: 'ERROR',
  object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' },
});
const paged = { streamingList: false, random: () => 0 };

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

function recordEvents(inf: SharedInformer<V1ConfigMap>): string[] {
  const events: string[] = [];
  inf.addEventHandler({
    add: (o) => events.push(`add ${o.metadata!.name}@${o.metadata!.resourceVersion}`),
    update: (o, n) =>
      events.push(
        `update ${o.metadata!.name}@${o.metadata!.resourceVersion}->${n.metadata!.resourceVersion}`,
      ),
    delete: (o) => events.push(`delete ${o.metadata!.name}`),
  });
  return events;
}

describe('Reflector and SharedInformer', () => {
  let stop: AbortController;
  beforeEach(() => (stop = new AbortController()));
  afterEach(() => stop.abort());

  const informer = (
    client: ScriptedClient,
    clock = new FakeClock(),
    opts: object = paged,
    resyncPeriodMs = 0,
  ) => new SharedInformer({ resource: configMaps, client, clock, log: nopLogger, opts, resyncPeriodMs });

  it('lists from the watch cache in pages, syncs, then applies watch events in order from the list resourceVersion', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1')], rv: '10', continue: 'page2' });
    client.lists.push({ items: [cm('b', '2')], rv: '10' });
    client.watches.push(async (emit) => {
      emit({ type: 'MODIFIED', object: cm('a', '11') });
      emit({ type: 'DELETED', object: cm('b', '12') });
      emit({ type: 'ADDED', object: cm('c', '13') });
      await never();
    });
    const inf = informer(client);
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(inf.hasSynced()).to.equal(true);
    expect(client.listQueries).to.deep.equal([
      { limit: 500, resourceVersion: '0' },
      { limit: 500, continue: 'page2' },
    ]);
    expect(client.watchQueries[0]).to.include({ resourceVersion: '10', allowWatchBookmarks: true });
    expect(events).to.deep.equal(['add a@1', 'add b@2', 'update a@1->11', 'delete b', 'add c@13']);
    expect(inf.lister.keys().sort()).to.deep.equal(['n/a', 'n/c']);
  });

  it('a streaming list fills the store at its end bookmark and goes on as the watch', async () => {
    const client = new ScriptedClient();
    client.watches.push(async (emit) => {
      emit({ type: 'ADDED', object: cm('a', '1') });
      emit({ type: 'ADDED', object: cm('b', '2') });
      expect(inf.hasSynced(), 'not synced before the end bookmark').to.equal(false);
      expect(inf.lister.size()).to.equal(0);
      emit(initialEventsEnd('10'));
      emit({ type: 'MODIFIED', object: cm('a', '11') });
      await never();
    });
    const inf = informer(client, new FakeClock(), { random: () => 0 });
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(client.watchQueries[0]).to.deep.equal({
      allowWatchBookmarks: true,
      timeoutSeconds: 300,
      sendInitialEvents: true,
      resourceVersionMatch: 'NotOlderThan',
    });
    expect(client.listCalls).to.equal(0);
    expect(inf.hasSynced()).to.equal(true);
    expect(events).to.deep.equal(['add a@1', 'add b@2', 'update a@1->11']);
    expect(inf.requests).to.deep.equal({ lists: 0, streamingLists: 1, watches: 0 });
  });

  it('a server that refuses streaming lists gets paged lists from then on', async () => {
    const client = new ScriptedClient();
    client.watches.push(() => Promise.reject(new KubeApiError(422, 'sendInitialEvents is forbidden')));
    client.lists.push({ items: [cm('a', '1')], rv: '10' });
    client.watches.push((emit) => {
      emit(gone());
      return Promise.resolve();
    });
    client.lists.push({ items: [cm('a', '1')], rv: '20' });
    const clock = new FakeClock();
    const inf = informer(client, clock, { random: () => 0 });
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(inf.hasSynced()).to.equal(true);
    expect(client.listCalls).to.equal(1);
    clock.step(800);
    await flush();
    expect(client.listCalls, 'the re-list after the 410 is paged too').to.equal(2);
    expect(client.watchQueries.filter((q) => q.sendInitialEvents)).to.have.length(1);
    expect(events).to.deep.equal(['add a@1']);
  });

  it('a watch the server closes resumes from the last resourceVersion, with no list and no event twice', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1')], rv: '10' });
    client.watches.push((emit) => {
      emit({ type: 'MODIFIED', object: cm('a', '11') });
      return Promise.resolve(); // the server's timeout
    });
    client.watches.push((emit) => {
      emit({ type: 'ADDED', object: cm('b', '12') });
      emit({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: '20' } } });
      return Promise.resolve();
    });
    const inf = informer(client);
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(client.listCalls).to.equal(1);
    expect(client.watchQueries.map((q) => q.resourceVersion)).to.deep.equal(['10', '11', '20']);
    expect(events).to.deep.equal(['add a@1', 'update a@1->11', 'add b@12']);
  });

  it('a stream cut after it delivered events re-watches at once from the last resourceVersion', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [], rv: '10' });
    client.watches.push((emit) => {
      emit({ type: 'ADDED', object: cm('a', '11') });
      return Promise.reject(new TypeError('terminated: other side closed'));
    });
    const inf = informer(client);
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(client.listCalls).to.equal(1);
    expect(client.watchQueries.map((q) => q.resourceVersion)).to.deep.equal(['10', '11']);
    expect(events).to.deep.equal(['add a@11']);
  });

  it('a watch that fails at once is retried from the same resourceVersion after a jittered backoff, without a list', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1')], rv: '10' });
    client.watches.push(() => Promise.reject(new KubeApiError(500, 'boom')));
    client.watches.push(() => Promise.reject(new KubeApiError(500, 'boom')));
    const clock = new FakeClock();
    const inf = informer(client, clock, { streamingList: false, random: () => 0.5 });
    void inf.run(stop.signal);
    await flush();
    expect(client.watchQueries).to.have.length(1);
    clock.step(1199); // 800 ms * (1 + 0.5)
    await flush();
    expect(client.watchQueries, 'not before the backoff').to.have.length(1);
    clock.step(1);
    await flush();
    expect(client.watchQueries).to.have.length(2);
    clock.step(2399); // then 1.6 s * 1.5
    await flush();
    expect(client.watchQueries).to.have.length(2);
    clock.step(1);
    await flush();
    expect(client.watchQueries.map((q) => q.resourceVersion)).to.deep.equal(['10', '10', '10']);
    expect(client.listCalls).to.equal(1);
  });

  it('a 410 during the watch re-lists (from the watch cache, not older than the last resourceVersion) after a backoff, reporting exactly the differences', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1'), cm('b', '2'), cm('same', '3')], rv: '10' });
    client.lists.push({ items: [cm('a', '20'), cm('c', '21'), cm('same', '3')], rv: '22' });
    client.watches.push((emit) => {
      emit({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: '15' } } });
      return Promise.resolve();
    });
    client.watches.push((emit) => {
      emit(gone());
      return Promise.resolve();
    });
    const clock = new FakeClock();
    const inf = informer(client, clock);
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(client.listCalls).to.equal(1);
    clock.step(799);
    await flush();
    expect(client.listCalls, 'no re-list before the minimum backoff').to.equal(1);
    clock.step(1);
    await flush();
    expect(client.listCalls).to.equal(2);
    expect(client.listQueries[1]).to.deep.equal({
      limit: 500,
      resourceVersion: '15',
      resourceVersionMatch: 'NotOlderThan',
    });
    expect(events).to.deep.equal([
      'add a@1',
      'add b@2',
      'add same@3',
      'delete b',
      'update a@1->20',
      'add c@21',
    ]);
    expect(client.watchQueries[2]).to.include({ resourceVersion: '22' });
  });

  it('a re-list refused with 410 too is retried as a consistent read', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [], rv: '10' });
    client.watches.push((emit) => {
      emit(gone());
      return Promise.resolve();
    });
    client.lists.push(new KubeApiError(410, 'too old'));
    client.lists.push({ items: [], rv: '30' });
    const clock = new FakeClock();
    const inf = informer(client, clock);
    void inf.run(stop.signal);
    await flush();
    clock.step(800);
    await flush();
    clock.step(1600);
    await flush();
    expect(client.listQueries.slice(1)).to.deep.equal([
      { limit: 500, resourceVersion: '10', resourceVersionMatch: 'NotOlderThan' },
      { limit: 500 },
    ]);
  });

  it('a watch silent for the idle timeout is abandoned and resumed from its resourceVersion, without a list', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [], rv: '10' });
    const signals: AbortSignal[] = [];
    client.watches.push(
      (emit, _q, signal) =>
        new Promise((_resolve, reject) => {
          signals.push(signal);
          emit({ type: 'ADDED', object: cm('a', '11') });
          signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    );
    const clock = new FakeClock();
    const inf = informer(client, clock, { ...paged, idleTimeoutMs: 60_000 });
    void inf.run(stop.signal);
    await flush();
    clock.step(59_999);
    await flush();
    expect(client.watchQueries).to.have.length(1);
    clock.step(1);
    await flush();
    expect(signals[0].aborted).to.equal(true);
    expect(client.watchQueries.map((q) => q.resourceVersion)).to.deep.equal(['10', '11']);
    expect(client.listCalls).to.equal(1);
  });

  it('lists again every re-list period as a watchdog, from the watch cache', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1')], rv: '10' });
    client.lists.push({ items: [cm('a', '1')], rv: '40' });
    const clock = new FakeClock();
    const inf = informer(client, clock, { ...paged, relistPeriodMs: 600_000 });
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    clock.step(599_999);
    await flush();
    expect(client.listCalls).to.equal(1);
    clock.step(1);
    await flush();
    expect(client.listCalls).to.equal(2);
    expect(client.listQueries[1]).to.deep.equal({
      limit: 500,
      resourceVersion: '10',
      resourceVersionMatch: 'NotOlderThan',
    });
    expect(events, 'an unchanged object is not reported again').to.deep.equal(['add a@1']);
  });

  it('a bookmark moves the resourceVersion the next watch resumes from', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [], rv: '10' });
    client.watches.push((emit) => {
      emit({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: '55' } } });
      return Promise.resolve();
    });
    const inf = informer(client);
    void inf.run(stop.signal);
    await flush();
    expect(client.watchQueries.map((q) => q.resourceVersion)).to.deep.equal(['10', '55']);
  });

  it('resync re-delivers every cached object as update(obj, obj) every resync period', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1'), cm('b', '2')], rv: '10' });
    const clock = new FakeClock();
    const inf = informer(client, clock, paged, 60_000);
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    clock.step(59_999);
    expect(events).to.deep.equal(['add a@1', 'add b@2']);
    clock.step(1);
    expect(events.slice(2)).to.deep.equal(['update a@1->1', 'update b@2->2']);
    clock.step(60_000);
    expect(events).to.have.length(6);
  });

  it('the factory gives each informer a resync period between 1x and 2x the minimum', () => {
    const picks = [0, 0.999];
    const factory = new InformerFactory({
      client: new ScriptedClient(),
      clock: new FakeClock(),
      log: nopLogger,
      minResyncPeriodMs: 1000,
      random: () => picks.shift()!,
    });
    const periods = [
      factory.informerFor(configMaps).resyncPeriod,
      factory.informerFor({ ...configMaps, kind: 'Other' }).resyncPeriod,
    ];
    expect(periods).to.deep.equal([1000, 1999]);
  });

  it('drops managedFields before caching', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1', { k: 'v' })], rv: '10' });
    const inf = informer(client);
    void inf.run(stop.signal);
    await flush();
    const a = inf.lister.get('n/a')!;
    expect(a.metadata!.managedFields).to.equal(undefined);
    expect(a.data).to.deep.equal({ k: 'v' });
  });

  it('a handler added after sync first receives an add for every cached object', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1'), cm('b', '2')], rv: '10' });
    const inf = informer(client);
    void inf.run(stop.signal);
    await flush();
    const events = recordEvents(inf);
    expect(events).to.deep.equal(['add a@1', 'add b@2']);
  });

  it('indexes objects by namespace and by custom index functions', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1', { app: 'x' }), cm('b', '2', { app: 'y' })], rv: '10' });
    const inf = informer(client);
    inf.addIndexers({ byApp: (o) => (o.data?.app ? [o.data.app] : []) });
    void inf.run(stop.signal);
    await flush();
    expect(
      inf.lister
        .byIndex('namespace', 'n')
        .map((o) => o.metadata!.name)
        .sort(),
    ).to.deep.equal(['a', 'b']);
    expect(inf.lister.byIndex('byApp', 'y').map((o) => o.metadata!.name)).to.deep.equal(['b']);
  });
});
