import { expect } from 'chai';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { MissingNodesError } from '../../../controllers/endpointslice/reconciler.ts';
import {
  endpointIdentity,
  ENDPOINTSLICE_MANAGED_BY,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  SLICE_TRIGGER_TIME_ANNOTATION,
} from '../../../shared/endpoints/slices.ts';
import { node, pod, service, SliceWorld, threeZones } from './world.ts';

function sizes(slices: readonly V1EndpointSlice[]): number[] {
  return slices.map((s) => s.endpoints?.length ?? 0);
}

function counts(plan: { creates: unknown[]; updates: unknown[]; deletes: unknown[] }): number[] {
  return [plan.creates.length, plan.updates.length, plan.deletes.length];
}

function world(max = 100): SliceWorld {
  const w = new SliceWorld(max);
  w.addNodes(...threeZones());
  return w;
}

function pods(from: number, to: number, opts: Parameters<typeof pod>[1] = {}): ReturnType<typeof pod>[] {
  const out = [];
  for (let i = from; i < to; i++) out.push(pod(i, opts));
  return out;
}

describe('EndpointSlice placement (spec cases 1-15)', () => {
  it('1: one pod gives one IPv4 slice s-xxxxx with conditions, zone, nodeName, labels, ownerReference', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(pod(0));
    const plan = await w.sync();
    expect(counts(plan)).to.deep.equal([1, 0, 0]);
    const [slice] = w.slicesOf();
    expect(slice.metadata?.name).to.match(/^s-[0-9a-z]{5}$/);
    expect(slice.metadata?.labels).to.deep.equal({
      tier: 'web',
      [LABEL_SERVICE_NAME]: 's',
      [LABEL_MANAGED_BY]: ENDPOINTSLICE_MANAGED_BY,
    });
    expect(slice.metadata?.ownerReferences).to.deep.equal([
      {
        apiVersion: 'v1',
        kind: 'Service',
        name: 's',
        uid: 'uid-s',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(slice.metadata?.annotations).to.deep.equal({
      [SLICE_TRIGGER_TIME_ANNOTATION]: '2026-01-01T00:00:00Z',
    });
    expect(slice.addressType).to.equal('IPv4');
    expect(slice.ports).to.deep.equal([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(slice.endpoints).to.deep.equal([
      {
        addresses: ['10.0.0.1'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'node-0',
        zone: 'a',
        targetRef: { kind: 'Pod', namespace: 'n', name: 'p0000', uid: 'uid-p0000' },
      },
    ]);
    expect(counts(await w.sync())).to.deep.equal([0, 0, 0]);
  });

  it('2: no pods give one placeholder; a dual-stack Service gets two; neither is rewritten', async () => {
    const w = world();
    w.addServices(service(), service({ name: 'd', uid: 'uid-d', families: ['IPv4', 'IPv6'] }));
    expect(counts(await w.sync())).to.deep.equal([1, 0, 0]);
    const [placeholder] = w.slicesOf();
    expect(placeholder.endpoints).to.deep.equal([]);
    expect(placeholder.ports).to.deep.equal([]);
    expect(counts(await w.sync('d'))).to.deep.equal([2, 0, 0]);
    expect(w.slicesOf('d').map((s) => s.addressType)).to.have.members(['IPv4', 'IPv6']);
    expect(counts(await w.sync())).to.deep.equal([0, 0, 0]);
    expect(counts(await w.sync('d'))).to.deep.equal([0, 0, 0]);
  });

  it('3: a terminating ready pod is serving and terminating, not ready; with publishNotReadyAddresses ready', async () => {
    const w = world();
    w.addServices(service(), service({ name: 'p', uid: 'uid-p', publishNotReadyAddresses: true }));
    w.addPods(pod(0, { deleting: true }));
    await w.sync();
    await w.sync('p');
    expect(w.slicesOf()[0].endpoints?.[0].conditions).to.deep.equal({
      ready: false,
      serving: true,
      terminating: true,
    });
    expect(w.slicesOf('p')[0].endpoints?.[0].conditions).to.deep.equal({
      ready: true,
      serving: true,
      terminating: true,
    });
  });

  it('4: 250 pods give slices of 100, 100, 50; a targetPort change updates all 3 in place', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(...pods(0, 250));
    expect(counts(await w.sync())).to.deep.equal([3, 0, 0]);
    const names = w.slicesOf().map((s) => s.metadata?.name);
    expect(sizes(w.slicesOf())).to.have.members([100, 100, 50]);
    w.addServices(service({ targetPort: 9090 }));
    w.addPods(...pods(0, 250, { containerPorts: [{ name: 'web', containerPort: 9090 }] }));
    const plan = await w.sync();
    expect(counts(plan)).to.deep.equal([0, 3, 0]);
    expect(w.slicesOf().map((s) => s.metadata?.name)).to.deep.equal(names);
    expect(w.slicesOf().every((s) => s.ports?.[0].port === 9090)).to.equal(true);
    expect(sizes(w.slicesOf())).to.have.members([100, 100, 50]);
  });

  it('5: 74 + 74 existing and 152 new give two creates (100, 52), existing slices untouched', async () => {
    const w = world(74);
    w.addServices(service());
    w.addPods(...pods(0, 148));
    await w.settle();
    expect(sizes(w.slicesOf())).to.deep.equal([74, 74]);
    const before = w.slicesOf().map((s) => s.metadata?.resourceVersion);
    w.setMaxEndpointsPerSlice(100);
    w.addPods(...pods(148, 300));
    const plan = await w.sync();
    expect(counts(plan)).to.deep.equal([2, 0, 0]);
    expect(sizes(plan.creates)).to.deep.equal([100, 52]);
    expect(
      w
        .slicesOf()
        .slice(0, 2)
        .map((s) => s.metadata?.resourceVersion),
    ).to.deep.equal(before);
  });

  it('6: a pod lacking the named port goes to a separate slice with ports []', async () => {
    const w = world();
    w.addServices(service({ targetPort: 'web' }));
    w.addPods(pod(0), pod(1, { containerPorts: [{ name: 'other', containerPort: 7070 }] }));
    expect(counts(await w.sync())).to.deep.equal([2, 0, 0]);
    const byPorts = w.slicesOf().map((s) => [s.ports, s.endpoints?.map((e) => e.targetRef?.name)]);
    expect(byPorts).to.have.deep.members([
      [[{ name: 'http', port: 8080, protocol: 'TCP' }], ['p0000']],
      [[], ['p0001']],
    ]);
  });

  it('7: the last endpoint going away updates the slice into a placeholder', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(pod(0));
    await w.sync();
    const name = w.slicesOf()[0].metadata?.name;
    w.pods.delete('n/p0000');
    expect(counts(await w.sync())).to.deep.equal([0, 1, 0]);
    const [slice] = w.slicesOf();
    expect(slice.metadata?.name).to.equal(name);
    expect(slice.endpoints).to.deep.equal([]);
    expect(slice.ports).to.deep.equal([]);
    expect(counts(await w.sync())).to.deep.equal([0, 0, 0]);
  });

  it('8: a Service recreated with a new UID gets new slices; the old ones are deleted', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(pod(0), pod(1));
    await w.sync();
    const [old] = w.slicesOf();
    w.addServices(service({ uid: 'uid-s2' }));
    expect(counts(await w.sync())).to.deep.equal([1, 0, 1]);
    const [fresh] = w.slicesOf();
    expect(fresh.metadata?.name).to.not.equal(old.metadata?.name);
    expect(fresh.metadata?.ownerReferences?.[0].uid).to.equal('uid-s2');
    expect(fresh.endpoints).to.have.length(2);
  });

  it('9: an endpoint found in two slices is removed from one of them', async () => {
    const w = world(2);
    w.addServices(service());
    w.addPods(pod(0), pod(1), pod(2));
    await w.settle();
    const [first, second] = w.slicesOf();
    const duplicate = first.endpoints![0];
    w.handEdit({ ...second, endpoints: [...second.endpoints!, duplicate] });
    const plan = await w.sync();
    expect(counts(plan)).to.deep.equal([0, 1, 0]);
    const all = w.slicesOf().flatMap((s) => s.endpoints!.map(endpointIdentity));
    expect(all).to.have.length(3);
    expect(new Set(all).size).to.equal(3);
  });

  it('10: a managed slice edited by hand is reverted; deleted by hand it is recreated', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(pod(0), pod(1));
    await w.sync();
    const [slice] = w.slicesOf();
    const wanted = structuredClone(slice.endpoints);
    w.handEdit({ ...slice, endpoints: [slice.endpoints![0]] });
    expect(counts(await w.sync())).to.deep.equal([0, 1, 0]);
    expect(w.slicesOf()[0].endpoints).to.deep.equal(wanted);
    const [current] = w.slicesOf();
    w.slices.delete(`n/${current.metadata?.name}`);
    w.tracker.handleDeletion(current);
    expect(counts(await w.sync())).to.deep.equal([1, 0, 0]);
    expect(w.slicesOf()[0].endpoints).to.deep.equal(wanted);
  });

  it('11: pod IP 2001:DB8::1 is published as 2001:db8::1', async () => {
    const w = world();
    w.addServices(service({ families: ['IPv6'] }));
    w.addPods(pod(0, { ips: ['2001:DB8::1'] }));
    await w.sync();
    const [slice] = w.slicesOf();
    expect(slice.addressType).to.equal('IPv6');
    expect(slice.endpoints?.[0].addresses).to.deep.equal(['2001:db8::1']);
  });

  it('12: a Service going from dual-stack to IPv4 only loses its IPv6 slices', async () => {
    const w = world();
    w.addServices(service({ families: ['IPv4', 'IPv6'] }));
    w.addPods(pod(0, { ips: ['10.0.0.1', 'fd00::1'] }));
    expect(counts(await w.sync())).to.deep.equal([2, 0, 0]);
    w.addServices(service({ families: ['IPv4'] }));
    const plan = await w.sync();
    expect(counts(plan)).to.deep.equal([0, 0, 1]);
    expect(plan.deletes[0].addressType).to.equal('IPv6');
    expect(w.slicesOf().map((s) => s.addressType)).to.deep.equal(['IPv4']);
  });

  it('13: PreferClose hints each ready endpoint to its own zone', async () => {
    const w = world();
    w.addServices(service({ trafficDistribution: 'PreferClose' }));
    w.addPods(pod(0), pod(1), pod(2, { ready: false }));
    await w.sync();
    const hints = w
      .slicesOf()[0]
      .endpoints!.map((e) => [e.targetRef?.name, e.hints?.forZones?.map((z) => z.name) ?? null]);
    expect(hints).to.have.deep.members([
      ['p0000', ['a']],
      ['p0001', ['b']],
      ['p0002', null],
    ]);
    expect(counts(await w.sync())).to.deep.equal([0, 0, 0]);
  });

  it('14: topology-mode Auto with 3 zones and 2 endpoints gives no hints and an Event', async () => {
    const w = world();
    w.addServices(service({ annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } }));
    w.addPods(pod(0), pod(1));
    await w.sync();
    expect(w.slicesOf()[0].endpoints!.every((e) => e.hints === undefined)).to.equal(true);
    expect(w.events.map((e) => [e.type, e.reason])).to.deep.include([
      'Warning',
      'TopologyAwareHintsDisabled',
    ]);
  });

  it('15: scaling 1000 -> 10 -> 1000 pods keeps slices <= 100, no duplicates, exactly the ready set', async () => {
    const w = world();
    w.addServices(service());
    const check = (n: number): void => {
      const slices = w.slicesOf();
      expect(slices.every((s) => (s.endpoints?.length ?? 0) <= 100)).to.equal(true);
      const ids = slices.flatMap((s) => s.endpoints!.map((e) => e.targetRef?.name));
      expect(new Set(ids).size).to.equal(ids.length);
      expect(ids.length).to.equal(n);
    };
    w.addPods(...pods(0, 1000));
    await w.settle();
    check(1000);
    for (let i = 10; i < 1000; i++) w.pods.delete(`n/${pod(i).metadata!.name}`);
    await w.settle();
    check(10);
    w.addPods(...pods(0, 1000));
    await w.settle();
    check(1000);
  });
});

describe('EndpointSlice reconciler edges', () => {
  it('a pod on a Node missing from the cache is left out and the sync fails to be retried', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(pod(0), pod(1, { node: 'node-9' }));
    let error: unknown;
    try {
      await w.sync();
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(MissingNodesError);
    expect(w.slicesOf()[0].endpoints?.map((e) => e.targetRef?.name)).to.deep.equal(['p0000']);
    w.addNodes(node('node-9', 'a'));
    expect(counts(await w.sync())).to.deep.equal([0, 1, 0]);
    expect(w.slicesOf()[0].endpoints).to.have.length(2);
  });

  it('a placeholder read back from the API server with ports: null is not rewritten', async () => {
    const w = world();
    w.addServices(service());
    await w.sync();
    const [placeholder] = w.slicesOf();
    // The API server returns null, not [], for an empty ports list.
    w.slices.upsert({ ...placeholder, ports: null as unknown as undefined });
    expect(counts(await w.sync())).to.deep.equal([0, 0, 0]);
  });

  it('a deleted Service has its slices deleted', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(...pods(0, 150));
    await w.sync();
    w.services.delete('n/s');
    expect(counts(await w.sync())).to.deep.equal([0, 0, 2]);
    expect(w.slicesOf()).to.deep.equal([]);
  });

  it('Service labels flow to the slices (reserved keys ignored)', async () => {
    const w = world();
    w.addServices(service());
    w.addPods(pod(0));
    await w.sync();
    w.addServices(service({ labels: { tier: 'db', [LABEL_MANAGED_BY]: 'someone' } }));
    expect(counts(await w.sync())).to.deep.equal([0, 1, 0]);
    expect(w.slicesOf()[0].metadata?.labels).to.deep.equal({
      tier: 'db',
      [LABEL_SERVICE_NAME]: 's',
      [LABEL_MANAGED_BY]: ENDPOINTSLICE_MANAGED_BY,
    });
  });
});
