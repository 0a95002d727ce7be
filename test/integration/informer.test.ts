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
import { waitFor } from './helpers/wait.ts';

const configMaps: ResourceType<V1ConfigMap> = {
  kind: 'ConfigMap',
  listPath: '/api/v1/configmaps',
  modelType: 'V1ConfigMap',
  namespaced: true,
};

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
});
