import { expect } from 'chai';
import type { V1Endpoints } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { setPodStatus } from './helpers/pods.ts';
import { isNotFound } from '../../shared/kube/errors.ts';
import { core, createPod, createRunningPod, createService, inParallel, podIp } from './helpers/fixtures.ts';
import { startManager, type RunningManager } from './helpers/manager.ts';
import { waitFor } from './helpers/wait.ts';

describe('Endpoints controller against a real API server', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let mgr: RunningManager;
  let ns: string;

  before(async () => {
    cp = await startControlPlane();
    mgr = await startManager(cp, ['--controllers=endpoint']);
  });
  after(async () => {
    if (mgr) expect(await mgr.stop()).to.equal(0);
    await cp?.stop();
  });
  beforeEach(async () => {
    ns = await createNamespace(cp.kubeConfig, 'ep');
  });

  const readEndpoints = async (name = 's'): Promise<V1Endpoints | undefined> => {
    try {
      return await core(cp.kubeConfig).readNamespacedEndpoints({ name, namespace: ns });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const waitEndpoints = (what: string, ok: (ep: V1Endpoints) => boolean, name = 's'): Promise<V1Endpoints> =>
    waitFor(`Endpoints ${name}: ${what}`, async () => {
      const ep = await readEndpoints(name);
      return ep && ok(ep) ? ep : undefined;
    });
  const writes = (): Promise<number> =>
    mgr.metric('service_controller_manager_api_writes_total', { resource: 'endpoints' });

  it('1: one ready pod gives one subset with its address and port, within a second of turning ready', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createPod(cp.kubeConfig, ns, 'p1');
    await waitEndpoints('created empty', (ep) => (ep.subsets ?? []).length === 0);
    const pod = await setPodStatus(cp.kubeConfig, ns, 'p1', {
      ip: '10.200.0.1',
      ready: true,
      nodeName: 'node-a',
    });
    const started = Date.now();
    const ep = await waitEndpoints('has the pod', (e) => (e.subsets ?? []).length === 1);
    const latencyMs = Date.now() - started;
    expect(ep.subsets).to.deep.equal([
      {
        addresses: [
          {
            ip: '10.200.0.1',
            nodeName: 'node-a',
            targetRef: { kind: 'Pod', namespace: ns, name: 'p1', uid: pod.metadata!.uid },
          },
        ],
        ports: [{ port: 8080, protocol: 'TCP' }],
      },
    ]);
    expect(ep.metadata!.labels).to.deep.equal({
      'endpoints.kubernetes.io/managed-by': 'endpoint-controller',
    });
    expect(latencyMs, 'status change -> Endpoints latency').to.be.below(1000);
  });

  it('2: a not-ready pod is in notReadyAddresses, and in addresses with publishNotReadyAddresses', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createService(cp.kubeConfig, ns, 's-pub', { publishNotReadyAddresses: true });
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.2', ready: false });
    const ep = await waitEndpoints(
      'has a not-ready address',
      (e) => (e.subsets?.[0]?.notReadyAddresses ?? []).length === 1,
    );
    expect(ep.subsets![0].addresses).to.equal(undefined);
    expect(ep.subsets![0].notReadyAddresses!.map((a) => a.ip)).to.deep.equal(['10.200.0.2']);
    const pub = await waitEndpoints(
      'publishes it ready',
      (e) => (e.subsets?.[0]?.addresses ?? []).length === 1,
      's-pub',
    );
    expect(pub.subsets![0].notReadyAddresses).to.equal(undefined);
    expect(pub.subsets![0].addresses!.map((a) => a.ip)).to.deep.equal(['10.200.0.2']);
  });

  it('3: a terminating ready pod leaves the Endpoints, but stays with publishNotReadyAddresses', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createService(cp.kubeConfig, ns, 's-pub', { publishNotReadyAddresses: true });
    const api = core(cp.kubeConfig);
    // A finalizer keeps the pod visible (terminating) after the delete, as a kubelet's grace period would.
    await api.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'p1', labels: { app: 'a' }, finalizers: ['scm.dev/test-hold'] },
        spec: { containers: [{ name: 'c', image: 'registry.invalid/none:1' }] },
      },
    });
    await setPodStatus(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.3', ready: true });
    await waitEndpoints('has the pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1);
    await waitEndpoints('has the pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1, 's-pub');
    await api.deleteNamespacedPod({ name: 'p1', namespace: ns });
    const ep = await waitEndpoints('dropped the terminating pod', (e) => (e.subsets ?? []).length === 0);
    expect(ep.subsets ?? []).to.deep.equal([]);
    const pub = await readEndpoints('s-pub');
    expect(pub!.subsets![0].addresses!.map((a) => a.ip)).to.deep.equal(['10.200.0.3']);
    await api.patchNamespacedPod(
      { name: 'p1', namespace: ns, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      { middleware: [], middlewareMergeStrategy: 'append' },
    );
  });

  it('5: a named targetPort resolving to 8080 on one pod and 9090 on another gives two subsets', async () => {
    await createService(cp.kubeConfig, ns, 's', {
      ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }],
    });
    await createRunningPod(
      cp.kubeConfig,
      ns,
      'pa',
      { ip: '10.200.0.10', ready: true },
      {
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
      },
    );
    await createRunningPod(
      cp.kubeConfig,
      ns,
      'pb',
      { ip: '10.200.0.11', ready: true },
      {
        ports: [{ name: 'http', containerPort: 9090, protocol: 'TCP' }],
      },
    );
    const ep = await waitEndpoints('has two subsets', (e) => (e.subsets ?? []).length === 2);
    const summary = ep.subsets!.map((s) => ({ ips: s.addresses!.map((a) => a.ip), ports: s.ports }));
    expect(summary).to.have.deep.members([
      { ips: ['10.200.0.10'], ports: [{ port: 8080, protocol: 'TCP' }] },
      { ips: ['10.200.0.11'], ports: [{ port: 9090, protocol: 'TCP' }] },
    ]);
  });

  it('8: a headless Service without ports gives one subset without ports and the headless label', async () => {
    await createService(cp.kubeConfig, ns, 's', { clusterIP: 'None', ports: undefined });
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.20', ready: true });
    const ep = await waitEndpoints('has the pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1);
    expect(ep.subsets![0].ports).to.equal(undefined);
    expect(ep.metadata!.labels).to.deep.equal({
      'endpoints.kubernetes.io/managed-by': 'endpoint-controller',
      'service.kubernetes.io/headless': '',
    });
  });

  it('11: 1001 ready pods give 1000 addresses and the over-capacity annotation; 999 remove it', async () => {
    await createService(cp.kubeConfig, ns, 's');
    const indexes = Array.from({ length: 1001 }, (_, i) => i);
    await inParallel(indexes, 32, (i) =>
      createRunningPod(cp.kubeConfig, ns, `p${i}`, { ip: podIp(i + 1), ready: true }),
    );
    const full = await waitEndpoints(
      'truncated at 1000',
      (e) =>
        e.metadata?.annotations?.['endpoints.kubernetes.io/over-capacity'] === 'truncated' &&
        (e.subsets?.[0]?.addresses ?? []).length === 1000,
      's',
    );
    expect(full.subsets).to.have.length(1);
    expect(full.subsets![0].notReadyAddresses).to.equal(undefined);
    const api = core(cp.kubeConfig);
    await api.deleteNamespacedPod({ name: 'p0', namespace: ns, gracePeriodSeconds: 0 });
    await api.deleteNamespacedPod({ name: 'p1', namespace: ns, gracePeriodSeconds: 0 });
    const under = await waitEndpoints(
      '999 addresses without the annotation',
      (e) => (e.subsets?.[0]?.addresses ?? []).length === 999,
    );
    expect(under.metadata!.annotations ?? {}).to.not.have.property('endpoints.kubernetes.io/over-capacity');
  });

  it('13: a pod annotation change or a label change that keeps membership writes nothing', async () => {
    await createService(cp.kubeConfig, ns, 's');
    // A second Service over other pods in the same namespace serves as the barrier: the pod
    // informer delivers events in order, so once s2 shows pod q1 the earlier changes were seen.
    await createService(cp.kubeConfig, ns, 's2', { selector: { app: 'b' } });
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.30', ready: true });
    await waitEndpoints('has the pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1);
    await waitEndpoints('exists', () => true, 's2');
    await mgr.waitIdle();
    const before = await writes();
    const api = core(cp.kubeConfig);
    const patch = (body: object[]) =>
      api.patchNamespacedPod(
        { name: 'p1', namespace: ns, body },
        { middleware: [], middlewareMergeStrategy: 'append' },
      );
    await patch([{ op: 'add', path: '/metadata/annotations', value: { note: 'x' } }]);
    await patch([{ op: 'add', path: '/metadata/labels/extra', value: 'y' }]);
    await createRunningPod(
      cp.kubeConfig,
      ns,
      'q1',
      { ip: '10.200.0.31', ready: true },
      { labels: { app: 'b' } },
    );
    await waitEndpoints('has the barrier pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1, 's2');
    await mgr.waitIdle();
    expect((await writes()) - before, 'Endpoints writes: only s2 for the barrier pod').to.equal(1);
  });

  it('15: a selector-less Service keeps the user Endpoints; deleting the Service deletes them', async () => {
    await createService(cp.kubeConfig, ns, 's', { selector: undefined });
    const api = core(cp.kubeConfig);
    const user: V1Endpoints = {
      metadata: { name: 's', labels: { owner: 'me' } },
      subsets: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ port: 443, protocol: 'TCP' }] }],
    };
    await api.createNamespacedEndpoints({ namespace: ns, body: user });
    // Barrier: a selector Service in the same namespace syncs after the selector-less one was seen.
    await createService(cp.kubeConfig, ns, 'barrier');
    await waitEndpoints('exists', () => true, 'barrier');
    await mgr.waitIdle();
    const kept = await readEndpoints('s');
    expect(kept!.metadata!.labels).to.deep.equal({ owner: 'me' });
    expect(kept!.subsets).to.deep.equal(user.subsets);
    await api.deleteNamespacedService({ name: 's', namespace: ns });
    await waitFor(
      'the user Endpoints to be deleted with the Service',
      async () => (await readEndpoints('s')) === undefined,
    );
  });

  it('17: Endpoints deleted by hand are recreated', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.40', ready: true });
    const first = await waitEndpoints('has the pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1);
    await core(cp.kubeConfig).deleteNamespacedEndpoints({ name: 's', namespace: ns });
    const again = await waitEndpoints(
      'recreated',
      (e) => e.metadata!.uid !== first.metadata!.uid && (e.subsets?.[0]?.addresses ?? []).length === 1,
    );
    expect(again.subsets![0].addresses!.map((a) => a.ip)).to.deep.equal(['10.200.0.40']);
  });

  it('an Endpoints edited by hand is corrected', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.41', ready: true });
    const ep = await waitEndpoints('has the pod', (e) => (e.subsets?.[0]?.addresses ?? []).length === 1);
    await core(cp.kubeConfig).replaceNamespacedEndpoints({
      name: 's',
      namespace: ns,
      body: {
        ...ep,
        subsets: [{ addresses: [{ ip: '192.0.2.99' }], ports: [{ port: 1, protocol: 'TCP' }] }],
      },
    });
    const fixed = await waitEndpoints(
      'corrected',
      (e) => e.subsets?.[0]?.addresses?.[0]?.ip === '10.200.0.41',
    );
    expect(fixed.subsets![0].ports).to.deep.equal([{ port: 8080, protocol: 'TCP' }]);
  });

  it('18: an orphan Endpoints (no Service) present at start is deleted', async () => {
    expect(await mgr.stop()).to.equal(0);
    await core(cp.kubeConfig).createNamespacedEndpoints({
      namespace: ns,
      body: {
        metadata: { name: 'orphan' },
        subsets: [{ addresses: [{ ip: '192.0.2.1' }], ports: [{ port: 80 }] }],
      },
    });
    mgr = await startManager(cp, ['--controllers=endpoint']);
    await waitFor('the orphan to be deleted', async () => (await readEndpoints('orphan')) === undefined);
  });
});
