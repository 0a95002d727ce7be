import { expect } from 'chai';
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import { realClock } from '../../shared/clock.ts';
import { SharedInformer } from '../../shared/informer/informer.ts';
import type { ResourceType } from '../../shared/informer/resources.ts';
import { KubeClient } from '../../shared/kube/client.ts';
import { nopLogger } from '../../shared/log.ts';
import {
  startControlPlane,
  type ControlPlane,
  type ExtraApiServer,
} from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { apiServerMetrics, type ApiServerMetrics } from './helpers/apiserver.ts';
import { startCutProxy } from './helpers/cutproxy.ts';
import { waitFor } from './helpers/wait.ts';

const configMaps: ResourceType<V1ConfigMap> = {
  kind: 'ConfigMap',
  listPath: '/api/v1/configmaps',
  modelType: 'V1ConfigMap',
  namespaced: true,
};

/** The events the informer reports for ConfigMaps of `namespace`, as "add name v" and so on. */
function recordIn(informer: SharedInformer<V1ConfigMap>, namespace: string): string[] {
  const events: string[] = [];
  const ours = (o: V1ConfigMap): boolean => o.metadata?.namespace === namespace;
  informer.addEventHandler({
    add: (o) => ours(o) && events.push(`add ${o.metadata!.name} ${o.data?.v}`),
    update: (_o, n) => ours(n) && events.push(`update ${n.metadata!.name} ${n.data?.v}`),
    delete: (o) => ours(o) && events.push(`delete ${o.metadata!.name}`),
  });
  return events;
}

/**
 * Twelve changes to four ConfigMaps of `namespace` (create, unconditional update, delete), each
 * followed by `after(i, changesSoFar)`; returns the events they must give, in order.
 */
async function changeConfigMaps(
  api: CoreV1Api,
  namespace: string,
  after: (i: number, made: readonly string[]) => Promise<unknown>,
): Promise<string[]> {
  const made: string[] = [];
  for (let i = 0; i < 12; i++) {
    const name = `cm-${i % 4}`;
    const body = { metadata: { name }, data: { v: `${i}` } };
    if (i < 4) {
      await api.createNamespacedConfigMap({ namespace, body });
      made.push(`add ${name} ${i}`);
    } else if (i < 8) {
      await api.replaceNamespacedConfigMap({ name, namespace, body });
      made.push(`update ${name} ${i}`);
    } else {
      await api.deleteNamespacedConfigMap({ name, namespace });
      made.push(`delete ${name}`);
    }
    await after(i, made);
  }
  return made;
}

const configMapLists = (metrics: ApiServerMetrics): Promise<number> =>
  metrics.sum('apiserver_request_total', { verb: 'LIST', resource: 'configmaps' });

describe('SharedInformer against a real API server', function () {
  let cp: ControlPlane | undefined;
  let extra: ExtraApiServer | undefined;
  let stopInformer: AbortController | undefined;
  let informerDone: Promise<void> | undefined;

  before(async function () {
    cp = await startControlPlane();
  });

  after(async function () {
    stopInformer?.abort();
    await informerDone;
    await extra?.stop();
    await cp?.stop();
  });

  it('an informer converges with the right add/update/delete events after the API server is stopped and restarted while objects change', async function () {
    if (!cp) throw new Error('the control plane did not start');
    const plane = cp;
    const core = (kc: KubeConfig): CoreV1Api => kc.makeApiClient(CoreV1Api);
    const namespace = await createNamespace(plane.kubeConfig, 'informer');
    const created: Record<string, string> = {};
    for (const name of ['a', 'b', 'c']) {
      const cm = await core(plane.kubeConfig).createNamespacedConfigMap({
        namespace,
        body: { metadata: { name }, data: { v: '1' } },
      });
      created[name] = cm.metadata!.resourceVersion!;
    }

    const informer = new SharedInformer<V1ConfigMap>({
      resource: configMaps,
      client: new KubeClient(plane.kubeConfig, { qps: 50, burst: 100, userAgent: 'informer-test' }),
      clock: realClock,
      log: nopLogger,
      opts: { minBackoffMs: 200, maxBackoffMs: 1000 },
    });
    // Only our namespace: the API servers maintain ConfigMaps in kube-system on their own.
    const events: string[] = [];
    const ours = (o: V1ConfigMap): boolean => o.metadata?.namespace === namespace;
    const record = (o: V1ConfigMap, text: string): void => {
      if (ours(o)) events.push(text);
    };
    informer.addEventHandler({
      add: (o) => record(o, `add ${o.metadata!.name}@${o.metadata!.resourceVersion}`),
      update: (o, n) =>
        record(
          n,
          `update ${n.metadata!.name}@${o.metadata!.resourceVersion}->${n.metadata!.resourceVersion}`,
        ),
      delete: (o) => record(o, `delete ${o.metadata!.name}`),
    });
    stopInformer = new AbortController();
    informerDone = informer.run(stopInformer.signal);

    await waitFor('the informer to sync', () => informer.hasSynced());
    await waitFor('the three adds', () => events.length >= 3 && events);
    expect([...events].sort()).to.deep.equal([
      `add a@${created.a}`,
      `add b@${created.b}`,
      `add c@${created.c}`,
    ]);
    events.length = 0;

    await plane.stopApiServer();
    extra = await plane.startExtraApiServer();
    const viaExtra = core(extra.kubeConfig);
    const updated = await viaExtra.replaceNamespacedConfigMap({
      name: 'a',
      namespace,
      body: { metadata: { name: 'a', resourceVersion: created.a }, data: { v: '2' } },
    });
    await viaExtra.deleteNamespacedConfigMap({ name: 'b', namespace });
    const d = await viaExtra.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'd' }, data: { v: '1' } },
    });
    await extra.stop();
    extra = undefined;
    // Nothing could reach the informer while its API server was down.
    expect(events).to.deep.equal([]);
    await plane.startApiServer();

    const cache = (): Record<string, string | undefined> =>
      Object.fromEntries(
        informer.lister
          .list()
          .filter(ours)
          .map((o) => [o.metadata!.name!, `${o.metadata!.resourceVersion}:${o.data?.v}`]),
      );
    const want = {
      a: `${updated.metadata!.resourceVersion}:2`,
      c: `${created.c}:1`,
      d: `${d.metadata!.resourceVersion}:1`,
    };
    await waitFor(
      'the cache to hold a (updated), c and d',
      () => JSON.stringify(cache()) === JSON.stringify(want) && events.length >= 3,
      { timeoutMs: 60_000 },
    );

    // The informer either resumes its watch (events in commit order) or gets 410 Gone and re-lists
    // (deletes first, then by key), so compare as a set; each change is reported exactly once.
    expect([...events].sort()).to.deep.equal(
      [
        'delete b',
        `update a@${created.a}->${updated.metadata!.resourceVersion}`,
        `add d@${d.metadata!.resourceVersion}`,
      ].sort(),
    );
    expect(events.filter((e) => e.includes(' c@') || e.endsWith(' c'))).to.deep.equal([]);
    expect(informer.hasSynced()).to.equal(true);
  });

  it('a watch the API server closes (its timeout) resumes with no list request and no missed or repeated event', async function () {
    if (!cp) throw new Error('the control plane did not start');
    const plane = cp;
    const api = plane.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = await createNamespace(plane.kubeConfig, 'rewatch');
    const metrics = apiServerMetrics(plane);
    const informer = new SharedInformer<V1ConfigMap>({
      resource: configMaps,
      client: new KubeClient(plane.kubeConfig, { qps: 50, burst: 100, userAgent: 'rewatch-test' }),
      clock: realClock,
      log: nopLogger,
      // The API server ends each watch after 1-2 s: several closes while the changes below happen.
      opts: { minWatchTimeoutSeconds: 1 },
    });
    const events = recordIn(informer, namespace);
    const stop = new AbortController();
    const done = informer.run(stop.signal);
    try {
      await waitFor('the informer to sync', () => informer.hasSynced());
      const listsBefore = await configMapLists(metrics);
      const watchesBefore = informer.requests.watches;

      // Changes spread over about 6 s: each in its own watch or at a watch's end.
      const want = await changeConfigMaps(api, namespace, () => new Promise((r) => setTimeout(r, 500)));
      await waitFor('every change to arrive', () => events.length >= want.length, { timeoutMs: 30_000 });
      // Past the last change, one more close and re-watch: nothing more may arrive.
      const watchesAtEnd = informer.requests.watches;
      await waitFor('one more re-watch', () => informer.requests.watches >= watchesAtEnd + 1, {
        timeoutMs: 10_000,
      });

      expect(events).to.deep.equal(want);
      expect(
        informer.requests.watches - watchesBefore,
        'the server closed the watch several times',
      ).to.be.at.least(3);
      const listsAfter = await configMapLists(metrics);
      expect(listsAfter - listsBefore, 'LIST requests for configmaps while re-watching').to.equal(0);
      expect(
        informer.requests.lists,
        'kube-apiserver v1.36 serves streaming lists: no paged list at all',
      ).to.equal(0);
      expect(informer.requests.streamingLists).to.equal(1);
    } finally {
      stop.abort();
      await done;
      await metrics.close();
    }
  });

  it('a watch stream cut by the network resumes from the last resourceVersion: no list request, no missed or repeated event', async function () {
    if (!cp) throw new Error('the control plane did not start');
    const plane = cp;
    const api = plane.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = await createNamespace(plane.kubeConfig, 'cut');
    const metrics = apiServerMetrics(plane);
    const proxy = await startCutProxy(plane.apiServerUrl);
    const informer = new SharedInformer<V1ConfigMap>({
      resource: configMaps,
      client: new KubeClient(proxy.kubeConfigThrough(plane.kubeConfig), {
        qps: 50,
        burst: 100,
        userAgent: 'cut-test',
      }),
      clock: realClock,
      log: nopLogger,
    });
    const events = recordIn(informer, namespace);
    const stop = new AbortController();
    const done = informer.run(stop.signal);
    try {
      await waitFor('the informer to sync', () => informer.hasSynced());
      const listsBefore = await configMapLists(metrics);
      const want = await changeConfigMaps(api, namespace, async (i, made) => {
        // Every other change happens while the informer's connection is down.
        if (i % 2 === 0) expect(proxy.cutAll(), 'a connection to cut').to.be.at.least(1);
        await waitFor(`change ${i} to arrive`, () => events.length === made.length, { timeoutMs: 30_000 });
      });
      expect(events).to.deep.equal(want);
      expect(proxy.cuts).to.be.at.least(6);
      const listsAfter = await configMapLists(metrics);
      expect(listsAfter - listsBefore, 'LIST requests for configmaps after 6 cuts').to.equal(0);
      expect(
        informer.requests.lists + informer.requests.streamingLists,
        'one initial list, no re-list',
      ).to.equal(1);
    } finally {
      stop.abort();
      await done;
      await proxy.close();
      await metrics.close();
    }
  });
});
