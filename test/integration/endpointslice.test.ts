import { expect } from 'chai';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { setPodStatus } from './helpers/pods.ts';
import { core, createPod, createRunningPod, createService, inParallel, podIp } from './helpers/fixtures.ts';
import { startManager, type RunningManager } from './helpers/manager.ts';
import { waitFor } from './helpers/wait.ts';

const CONTROLLER = 'endpointslice';
const NODES = [
  { name: 'node-a', zone: 'zone-a' },
  { name: 'node-b', zone: 'zone-b' },
  { name: 'node-c', zone: 'zone-c' },
];

describe('EndpointSlice controller against a real API server', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let mgr: RunningManager;
  let ns: string;

  before(async () => {
    cp = await startControlPlane({ serviceClusterIpRange: '10.0.0.0/16,fd00:10::/108' });
    for (const n of NODES) {
      await core(cp.kubeConfig).createNode({
        body: { metadata: { name: n.name, labels: { 'topology.kubernetes.io/zone': n.zone } } },
      });
    }
    mgr = await startManager(cp, [`--controllers=${CONTROLLER}`]);
  });
  after(async () => {
    if (mgr) expect(await mgr.stop()).to.equal(0);
    await cp?.stop();
  });
  beforeEach(async () => {
    ns = await createNamespace(cp.kubeConfig, 'eps');
  });

  const discovery = (): DiscoveryV1Api => cp.kubeConfig.makeApiClient(DiscoveryV1Api);
  const slicesOf = async (service = 's'): Promise<V1EndpointSlice[]> => {
    const list = await discovery().listNamespacedEndpointSlice({
      namespace: ns,
      labelSelector: `kubernetes.io/service-name=${service}`,
    });
    return list.items.sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
  };
  const waitSlices = (
    what: string,
    ok: (slices: V1EndpointSlice[]) => boolean,
    service = 's',
  ): Promise<V1EndpointSlice[]> =>
    waitFor(`slices of ${service}: ${what}`, async () => {
      const slices = await slicesOf(service);
      return ok(slices) ? slices : undefined;
    });
  const sizes = (slices: V1EndpointSlice[]): number[] => slices.map((s) => s.endpoints?.length ?? 0);
  const writes = async (): Promise<{ create: number; update: number; delete: number }> => ({
    create: await mgr.metric('service_controller_manager_api_writes_total', {
      resource: 'endpointslices',
      verb: 'POST',
    }),
    update: await mgr.metric('service_controller_manager_api_writes_total', {
      resource: 'endpointslices',
      verb: 'PUT',
    }),
    delete: await mgr.metric('service_controller_manager_api_writes_total', {
      resource: 'endpointslices',
      verb: 'DELETE',
    }),
  });
  const since = async (before: { create: number; update: number; delete: number }) => {
    const now = await writes();
    return {
      create: now.create - before.create,
      update: now.update - before.update,
      delete: now.delete - before.delete,
    };
  };
  const runningPods = (from: number, to: number, node = (i: number) => NODES[i % 3].name): Promise<void> =>
    inParallel(
      Array.from({ length: to - from }, (_, k) => from + k),
      32,
      (i) =>
        createRunningPod(cp.kubeConfig, ns, `p${i}`, { ip: podIp(i + 1), ready: true, nodeName: node(i) }),
    );

  it('1: one pod gives slice s-xxxxx with IPv4, conditions, zone, nodeName, labels and ownerReference', async () => {
    const svc = await createService(cp.kubeConfig, ns, 's', {}, { tier: 'web' });
    const pod = await createRunningPod(cp.kubeConfig, ns, 'p1', {
      ip: '10.200.0.1',
      ready: true,
      nodeName: 'node-b',
    });
    const [slice] = await waitSlices('has the pod', (s) => s.length === 1 && sizes(s)[0] === 1);
    expect(slice.metadata!.name).to.match(/^s-[a-z0-9]{5}$/);
    expect(slice.addressType).to.equal('IPv4');
    expect(slice.metadata!.labels).to.deep.equal({
      tier: 'web',
      'kubernetes.io/service-name': 's',
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    });
    expect(slice.metadata!.ownerReferences).to.deep.equal([
      {
        apiVersion: 'v1',
        kind: 'Service',
        name: 's',
        uid: svc.metadata!.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(slice.ports).to.deep.equal([{ name: '', port: 8080, protocol: 'TCP' }]);
    expect(slice.endpoints).to.deep.equal([
      {
        addresses: ['10.200.0.1'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'node-b',
        zone: 'zone-b',
        targetRef: { kind: 'Pod', namespace: ns, name: 'p1', uid: pod.metadata!.uid },
      },
    ]);
  });

  it('2: no pods give one placeholder; a dual-stack Service gets two', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createService(cp.kubeConfig, ns, 'd', {
      ipFamilyPolicy: 'RequireDualStack',
      ipFamilies: ['IPv4', 'IPv6'],
    });
    const [one] = await waitSlices('placeholder', (s) => s.length === 1);
    expect(one.endpoints ?? []).to.deep.equal([]);
    expect(one.ports ?? []).to.deep.equal([]);
    const two = await waitSlices('two placeholders', (s) => s.length === 2, 'd');
    expect(two.map((s) => s.addressType).sort()).to.deep.equal(['IPv4', 'IPv6']);
    expect(two.every((s) => (s.endpoints ?? []).length === 0)).to.equal(true);
  });

  it('3: a terminating ready pod is {ready:false, serving:true, terminating:true}; ready with publishNotReadyAddresses', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createService(cp.kubeConfig, ns, 's-pub', { publishNotReadyAddresses: true });
    const api = core(cp.kubeConfig);
    await api.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'p1', labels: { app: 'a' }, finalizers: ['scm.dev/test-hold'] },
        spec: { containers: [{ name: 'c', image: 'registry.invalid/none:1' }] },
      },
    });
    await setPodStatus(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.3', ready: true, nodeName: 'node-a' });
    await waitSlices('has the pod', (s) => sizes(s)[0] === 1);
    await api.deleteNamespacedPod({ name: 'p1', namespace: ns });
    const terminating = (s: V1EndpointSlice[]): boolean =>
      s[0]?.endpoints?.[0]?.conditions?.terminating === true;
    const [slice] = await waitSlices('terminating', terminating);
    expect(slice.endpoints![0].conditions).to.deep.equal({ ready: false, serving: true, terminating: true });
    const [pub] = await waitSlices('terminating', terminating, 's-pub');
    expect(pub.endpoints![0].conditions).to.deep.equal({ ready: true, serving: true, terminating: true });
    await api.patchNamespacedPod(
      { name: 'p1', namespace: ns, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      { middleware: [], middlewareMergeStrategy: 'append' },
    );
  });

  it('4: 250 pods give 100/100/50; a targetPort change is exactly 3 updates, no create, no delete', async () => {
    // Pods first, then the Service: one sync sees them all. (Pods trickling in one by one may end
    // as e.g. 100/90/60, as upstream's placement also would: it never moves endpoints around.)
    await runningPods(0, 250);
    const svc = await createService(cp.kubeConfig, ns, 's');
    const first = await waitSlices('100/100/50', (s) => sizes(s).sort().join() === '100,100,50');
    await mgr.waitIdle();
    const before = await writes();
    await core(cp.kubeConfig).replaceNamespacedService({
      name: 's',
      namespace: ns,
      body: { ...svc, spec: { ...svc.spec, ports: [{ port: 80, targetPort: 9090, protocol: 'TCP' }] } },
    });
    const after = await waitSlices(
      'on port 9090',
      (s) => s.length === 3 && s.every((x) => x.ports?.[0]?.port === 9090),
    );
    await mgr.waitIdle();
    expect(await since(before)).to.deep.equal({ create: 0, update: 3, delete: 0 });
    expect(after.map((s) => s.metadata!.name)).to.deep.equal(first.map((s) => s.metadata!.name));
    expect(sizes(after).sort()).to.deep.equal(['100', '100', '50'].map(Number).sort());
  });

  it('7: the last endpoint going away updates the slice into a placeholder (same slice)', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.7', ready: true, nodeName: 'node-a' });
    const [slice] = await waitSlices('has the pod', (s) => sizes(s)[0] === 1);
    await mgr.waitIdle();
    const before = await writes();
    await core(cp.kubeConfig).deleteNamespacedPod({ name: 'p1', namespace: ns, gracePeriodSeconds: 0 });
    const [placeholder] = await waitSlices('placeholder', (s) => s.length === 1 && sizes(s)[0] === 0);
    await mgr.waitIdle();
    expect(placeholder.metadata!.name).to.equal(slice.metadata!.name);
    expect(placeholder.ports ?? []).to.deep.equal([]);
    // A bound pod deleted with grace 0 still passes through terminating (deletionTimestamp set) for
    // a moment, which is one update; its removal is the other. Never a create or a delete.
    const delta = await since(before);
    expect({ create: delta.create, delete: delta.delete }).to.deep.equal({ create: 0, delete: 0 });
    expect(delta.update).to.be.within(1, 2);
  });

  it('8: a Service recreated with a new UID gets new slices and loses the old ones', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.8', ready: true, nodeName: 'node-a' });
    const [old] = await waitSlices('has the pod', (s) => sizes(s)[0] === 1);
    const api = core(cp.kubeConfig);
    await api.deleteNamespacedService({ name: 's', namespace: ns });
    const svc = await createService(cp.kubeConfig, ns, 's');
    const [fresh] = await waitSlices(
      'owned by the new Service',
      (s) =>
        s.length === 1 && s[0].metadata!.ownerReferences?.[0]?.uid === svc.metadata!.uid && sizes(s)[0] === 1,
    );
    expect(fresh.metadata!.name).to.not.equal(old.metadata!.name);
  });

  it('10: a managed slice edited by hand is reverted; deleted by hand it is recreated', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.10', ready: true, nodeName: 'node-a' });
    await createRunningPod(cp.kubeConfig, ns, 'p2', { ip: '10.200.0.11', ready: true, nodeName: 'node-b' });
    const [slice] = await waitSlices('has both pods', (s) => sizes(s)[0] === 2);
    await discovery().replaceNamespacedEndpointSlice({
      name: slice.metadata!.name!,
      namespace: ns,
      body: { ...slice, endpoints: [slice.endpoints![0]] },
    });
    const [reverted] = await waitSlices(
      'reverted',
      (s) => sizes(s)[0] === 2 && s[0].metadata!.generation! >= slice.metadata!.generation! + 2,
    );
    expect(reverted.endpoints).to.have.deep.members(slice.endpoints!);
    await discovery().deleteNamespacedEndpointSlice({ name: slice.metadata!.name!, namespace: ns });
    const [recreated] = await waitSlices(
      'recreated',
      (s) => s.length === 1 && s[0].metadata!.uid !== slice.metadata!.uid && sizes(s)[0] === 2,
    );
    expect(recreated.endpoints).to.have.deep.members(slice.endpoints!);
  });

  it('12: a Service going from dual-stack to IPv4 only loses its IPv6 slice', async () => {
    const svc = await createService(cp.kubeConfig, ns, 's', {
      ipFamilyPolicy: 'RequireDualStack',
      ipFamilies: ['IPv4', 'IPv6'],
    });
    await createRunningPod(cp.kubeConfig, ns, 'p1', {
      ip: ['10.200.0.12', 'fd00:200::c'],
      ready: true,
      nodeName: 'node-a',
    });
    const both = await waitSlices(
      'two slices with the pod',
      (s) => s.length === 2 && sizes(s).join() === '1,1',
    );
    expect(both.map((s) => [s.addressType, s.endpoints![0].addresses]).sort()).to.deep.equal([
      ['IPv4', ['10.200.0.12']],
      ['IPv6', ['fd00:200::c']],
    ]);
    await core(cp.kubeConfig).replaceNamespacedService({
      name: 's',
      namespace: ns,
      body: {
        ...svc,
        spec: {
          ...svc.spec,
          ipFamilyPolicy: 'SingleStack',
          ipFamilies: ['IPv4'],
          clusterIPs: [svc.spec!.clusterIPs![0]],
        },
      },
    });
    const left = await waitSlices('IPv4 only', (s) => s.length === 1);
    expect(left[0].addressType).to.equal('IPv4');
  });

  it('13: trafficDistribution PreferClose hints ready endpoints to their own zone', async () => {
    await createService(cp.kubeConfig, ns, 's', { trafficDistribution: 'PreferClose' });
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.13', ready: true, nodeName: 'node-a' });
    await createRunningPod(cp.kubeConfig, ns, 'p2', { ip: '10.200.0.14', ready: true, nodeName: 'node-c' });
    await createRunningPod(cp.kubeConfig, ns, 'p3', { ip: '10.200.0.15', ready: false, nodeName: 'node-b' });
    const [slice] = await waitSlices(
      'hinted',
      (s) => sizes(s)[0] === 3 && s[0].endpoints!.filter((e) => e.hints).length === 2,
    );
    const hints = slice.endpoints!.map((e) => [
      e.targetRef!.name,
      e.hints?.forZones?.map((z) => z.name) ?? null,
    ]);
    expect(hints).to.have.deep.members([
      ['p1', ['zone-a']],
      ['p2', ['zone-c']],
      ['p3', null],
    ]);
  });

  it('15: scaling 1000 -> 10 -> 1000 pods keeps slices <= 100, no endpoint twice, exactly the ready set', async () => {
    await createService(cp.kubeConfig, ns, 's');
    const check = (slices: V1EndpointSlice[], n: number): boolean => {
      const ips = slices.flatMap((s) => (s.endpoints ?? []).map((e) => e.addresses[0]));
      return (
        slices.every((s) => (s.endpoints ?? []).length <= 100) && ips.length === n && new Set(ips).size === n
      );
    };
    const phases: Record<string, { create: number; update: number; delete: number; slices: number }> = {};
    let before = await writes();
    await runningPods(0, 1000);
    let slices = await waitSlices('1000 endpoints', (s) => check(s, 1000));
    await mgr.waitIdle();
    phases['0 -> 1000'] = { ...(await since(before)), slices: slices.length };

    before = await writes();
    await inParallel(
      Array.from({ length: 990 }, (_, k) => k + 10),
      32,
      (i) => core(cp.kubeConfig).deleteNamespacedPod({ name: `p${i}`, namespace: ns, gracePeriodSeconds: 0 }),
    );
    slices = await waitSlices('10 endpoints', (s) => check(s, 10));
    await mgr.waitIdle();
    phases['1000 -> 10'] = { ...(await since(before)), slices: slices.length };

    before = await writes();
    await runningPods(10, 1000);
    slices = await waitSlices('1000 endpoints again', (s) => check(s, 1000));
    await mgr.waitIdle();
    phases['10 -> 1000'] = { ...(await since(before)), slices: slices.length };
    const expected = new Set(Array.from({ length: 1000 }, (_, i) => podIp(i + 1)));
    expect(
      slices.flatMap((s) => s.endpoints!.map((e) => e.addresses[0])).every((ip) => expected.has(ip)),
    ).to.equal(true);
    // The figures quoted in the issue note (EndpointSlice writes per phase).
    console.log(`      EndpointSlice writes per phase: ${JSON.stringify(phases)}`);
  });

  it('a pod that is not ready yet is published not ready, then ready', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createPod(cp.kubeConfig, ns, 'p1');
    await setPodStatus(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.20', ready: false, nodeName: 'node-a' });
    await waitSlices('not ready', (s) => s[0]?.endpoints?.[0]?.conditions?.ready === false);
    await setPodStatus(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.20', ready: true, nodeName: 'node-a' });
    const [slice] = await waitSlices('ready', (s) => s[0]?.endpoints?.[0]?.conditions?.ready === true);
    expect(slice.endpoints![0].conditions).to.deep.equal({ ready: true, serving: true, terminating: false });
  });

  it('a deleted Service has its slices deleted (no garbage collector runs here)', async () => {
    await createService(cp.kubeConfig, ns, 's');
    await createRunningPod(cp.kubeConfig, ns, 'p1', { ip: '10.200.0.21', ready: true, nodeName: 'node-a' });
    await waitSlices('has the pod', (s) => sizes(s)[0] === 1);
    await core(cp.kubeConfig).deleteNamespacedService({ name: 's', namespace: ns });
    await waitSlices('gone', (s) => s.length === 0);
  });
});
