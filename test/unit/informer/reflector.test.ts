import { expect } from 'chai';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { FakeClock } from '../../../shared/clock.ts';
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

type WatchScript = (onEvent: (ev: WatchEvent) => void, query: Query) => Promise<void>;

/** A scripted API: each list call returns the next list; each watch call runs the next script. */
class ScriptedClient implements ListWatchClient {
  lists: { items: object[]; rv: string }[] = [];
  watches: WatchScript[] = [];
  listCalls = 0;
  watchQueries: Query[] = [];

  getJson(): Promise<unknown> {
    const next = this.lists.shift();
    this.listCalls++;
    if (!next) return Promise.reject(new Error('no list scripted'));
    return Promise.resolve({ metadata: { resourceVersion: next.rv }, items: next.items });
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
    return script(onEvent, query);
  }
}

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

  it('lists, syncs, then applies watch events in order from the list resourceVersion', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1'), cm('b', '2')], rv: '10' });
    client.watches.push(async (emit) => {
      emit({ type: 'MODIFIED', object: cm('a', '11') });
      emit({ type: 'DELETED', object: cm('b', '12') });
      emit({ type: 'ADDED', object: cm('c', '13') });
      await new Promise(() => {});
    });
    const clock = new FakeClock();
    const inf = new SharedInformer({ resource: configMaps, client, clock, log: nopLogger });
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(inf.hasSynced()).to.equal(true);
    expect(client.watchQueries[0]).to.include({ resourceVersion: '10', allowWatchBookmarks: true });
    expect(events).to.deep.equal(['add a@1', 'add b@2', 'update a@1->11', 'delete b', 'add c@13']);
    expect(inf.lister.keys().sort()).to.deep.equal(['n/a', 'n/c']);
  });

  it('a 410 during the watch re-lists at once and reports exactly the differences, deletes included', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1'), cm('b', '2'), cm('same', '3')], rv: '10' });
    client.lists.push({ items: [cm('a', '20'), cm('c', '21'), cm('same', '3')], rv: '22' });
    client.watches.push((emit) => {
      emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } });
      return Promise.resolve();
    });
    const inf = new SharedInformer({ resource: configMaps, client, clock: new FakeClock(), log: nopLogger });
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(client.listCalls).to.equal(2);
    expect(events).to.deep.equal([
      'add a@1',
      'add b@2',
      'add same@3',
      'delete b',
      'update a@1->20',
      'add c@21',
    ]);
    expect(client.watchQueries[1]).to.include({ resourceVersion: '22' });
  });

  it('any other watch error re-lists after a jittered backoff, not before', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1')], rv: '10' });
    client.lists.push({ items: [], rv: '30' });
    client.watches.push(() => Promise.reject(new KubeApiError(500, 'boom')));
    const clock = new FakeClock();
    const inf = new SharedInformer({ resource: configMaps, client, clock, log: nopLogger });
    const events = recordEvents(inf);
    void inf.run(stop.signal);
    await flush();
    expect(client.listCalls).to.equal(1);
    clock.step(799);
    await flush();
    expect(client.listCalls, 'no re-list before the minimum backoff').to.equal(1);
    clock.step(1000);
    await flush();
    expect(client.listCalls).to.equal(2);
    expect(events).to.deep.equal(['add a@1', 'delete a']);
  });

  it('a bookmark moves the resourceVersion the next watch resumes from', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [], rv: '10' });
    client.watches.push((emit) => {
      emit({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: '55' } } });
      return Promise.resolve();
    });
    const inf = new SharedInformer({ resource: configMaps, client, clock: new FakeClock(), log: nopLogger });
    void inf.run(stop.signal);
    await flush();
    expect(client.watchQueries.map((q) => q.resourceVersion)).to.deep.equal(['10', '55']);
  });

  it('drops managedFields before caching', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1', { k: 'v' })], rv: '10' });
    const inf = new SharedInformer({ resource: configMaps, client, clock: new FakeClock(), log: nopLogger });
    void inf.run(stop.signal);
    await flush();
    const a = inf.lister.get('n/a')!;
    expect(a.metadata!.managedFields).to.equal(undefined);
    expect(a.data).to.deep.equal({ k: 'v' });
  });

  it('a handler added after sync first receives an add for every cached object', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1'), cm('b', '2')], rv: '10' });
    const inf = new SharedInformer({ resource: configMaps, client, clock: new FakeClock(), log: nopLogger });
    void inf.run(stop.signal);
    await flush();
    const events = recordEvents(inf);
    expect(events).to.deep.equal(['add a@1', 'add b@2']);
  });

  it('indexes objects by namespace and by custom index functions', async () => {
    const client = new ScriptedClient();
    client.lists.push({ items: [cm('a', '1', { app: 'x' }), cm('b', '2', { app: 'y' })], rv: '10' });
    const inf = new SharedInformer({ resource: configMaps, client, clock: new FakeClock(), log: nopLogger });
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
