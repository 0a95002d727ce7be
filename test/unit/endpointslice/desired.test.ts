import { expect } from 'chai';
import type { V1Endpoint, V1Node, V1Pod } from '@kubernetes/client-node';
import {
  DesiredSlicesBuilder,
  desiredEndpointGroups,
  type PodSliceEntry,
} from '../../../controllers/endpointslice/desired.ts';
import { PodMemo } from '../../../shared/endpoints/podmemo.ts';
import type { AddressType } from '../../../shared/endpoints/slices.ts';
import { node, pod, service } from './world.ts';

/** The endpoints desired per address type for one pod with `podIP` in a dual-stack Service. */
function publishedFor(podIP: string): Record<AddressType, V1Endpoint[]> {
  const zoneA = node('node-0', 'a');
  const desired = desiredEndpointGroups(
    service({ families: ['IPv4', 'IPv6'] }),
    [pod(0, { ips: [podIP] })],
    (name) => (name === 'node-0' ? zoneA : undefined),
  );
  const byType = (type: AddressType): V1Endpoint[] =>
    [...(desired?.groups.get(type)?.values() ?? [])].flatMap((group) => [...group.endpoints.values()]);
  return { IPv4: byType('IPv4'), IPv6: byType('IPv6') };
}

/** The endpoint of pod 0 (ready, node-0 in zone a) with `address`. */
function endpointOfPod0(address: string): V1Endpoint {
  return {
    addresses: [address],
    conditions: { ready: true, serving: true, terminating: false },
    nodeName: 'node-0',
    zone: 'a',
    targetRef: { kind: 'Pod', namespace: 'n', name: 'p0000', uid: 'uid-p0000' },
  };
}

describe('desiredEndpointGroups: address text, as kube-controller-manager publishes it', () => {
  // Upstream parses each pod IP (ParseIPSloppy) and publishes it back with String(), in the slice
  // of its family.
  const cases: { name: string; podIP: string; type: AddressType; want: string }[] = [
    {
      name: 'an upper-case IPv6 pod IP is published in lower case',
      podIP: 'FD00:1::1',
      type: 'IPv6',
      want: 'fd00:1::1',
    },
    {
      name: 'an IPv6 pod IP with leading zeros in its groups is published without them',
      podIP: 'fd00:0001::0001',
      type: 'IPv6',
      want: 'fd00:1::1',
    },
    {
      name: 'an IPv4-mapped IPv6 pod IP is published as the IPv4 address it maps, in the IPv4 slice',
      podIP: '::ffff:10.0.0.1',
      type: 'IPv4',
      want: '10.0.0.1',
    },
    {
      name: 'a plain IPv4 pod IP is published as it is',
      podIP: '10.0.0.1',
      type: 'IPv4',
      want: '10.0.0.1',
    },
    {
      name: 'an IPv4 pod IP with leading zeros is read as decimal and published without them',
      podIP: '010.000.000.001',
      type: 'IPv4',
      want: '10.0.0.1',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const other: AddressType = c.type === 'IPv4' ? 'IPv6' : 'IPv4';
      expect(publishedFor(c.podIP)).to.deep.equal({ [c.type]: [endpointOfPod0(c.want)], [other]: [] });
    });
  }

  it('a pod IP that is not an IP is published in no slice (upstream publishes "<nil>", which the API server rejects)', () => {
    expect(publishedFor('not-an-ip')).to.deep.equal({ IPv4: [], IPv6: [] });
  });

  it('built in pieces of 1, 9 and 30 pods it gives the same groups as all the pods at once', () => {
    const zones = new Map(['node-0', 'node-1'].map((n, i) => [n, node(n, i === 0 ? 'a' : 'b')]));
    const nodeOf = (name: string): ReturnType<typeof node> | undefined => zones.get(name);
    // Pods on node-2 are on a Node missing from the cache; every fourth is not ready.
    const pods = Array.from({ length: 30 }, (_, i) => pod(i, { ready: i % 4 !== 0 }));
    const flatten = (d: ReturnType<typeof desiredEndpointGroups>): unknown =>
      d && {
        addressTypes: d.addressTypes,
        groups: [...d.groups].map(([type, byPorts]) => [
          type,
          [...byPorts].map(([key, g]) => [key, g.ports, [...g.endpoints]]),
        ]),
        podsOnMissingNodes: d.podsOnMissingNodes,
      };
    const reference = flatten(desiredEndpointGroups(service(), pods, nodeOf));
    expect((reference as { podsOnMissingNodes: string[] }).podsOnMissingNodes).to.have.length(10);
    for (const size of [1, 9, 30]) {
      const builder = new DesiredSlicesBuilder(service(), nodeOf);
      for (let i = 0; i < pods.length; i += size) builder.addPods(pods.slice(i, i + size));
      expect(flatten(builder.finish())).to.deep.equal(reference);
    }
  });

  it('with a memo: only pods or Nodes changed since the last sync are rebuilt, with the same groups', () => {
    class CountingMemo extends PodMemo<PodSliceEntry | null> {
      built = 0;
      override set(pod: V1Pod, key: string, value: PodSliceEntry | null): void {
        this.built++;
        super.set(pod, key, value);
      }
    }
    const memo = new CountingMemo();
    const nodes = new Map(['node-0', 'node-1', 'node-2'].map((n) => [n, node(n, 'a')]));
    const nodeOf = (name: string): V1Node | undefined => nodes.get(name);
    const endpointsOf = (d: ReturnType<typeof desiredEndpointGroups>): unknown =>
      [...(d?.groups.get('IPv4')?.values() ?? [])].map((g) => [g.ports, [...g.endpoints]]);
    const build = (list: readonly V1Pod[]): unknown => {
      memo.built = 0;
      const builder = new DesiredSlicesBuilder(service(), nodeOf, memo);
      builder.addPods(list);
      return endpointsOf(builder.finish());
    };
    const pods = Array.from({ length: 12 }, (_, i) => pod(i));
    expect(build(pods)).to.deep.equal(endpointsOf(desiredEndpointGroups(service(), pods, nodeOf)));
    expect(memo.built).to.equal(12);
    const changed = [...pods];
    changed[4] = pod(4, { ready: false });
    expect(build(changed)).to.deep.equal(endpointsOf(desiredEndpointGroups(service(), changed, nodeOf)));
    expect(memo.built).to.equal(1);
    // node-2 moves to zone b: its four pods (2, 5, 8, 11) are rebuilt with the new zone.
    nodes.set('node-2', node('node-2', 'b'));
    const rezoned = build(changed);
    expect(rezoned).to.deep.equal(endpointsOf(desiredEndpointGroups(service(), changed, nodeOf)));
    expect(memo.built).to.equal(4);
    // Hints set on one sync's endpoints (as the slices being written get them) do not reach the next.
    const builder = new DesiredSlicesBuilder(service(), nodeOf, memo);
    builder.addPods(changed);
    for (const group of builder.finish()!.groups.get('IPv4')!.values())
      for (const endpoint of group.endpoints.values()) endpoint.hints = { forZones: [{ name: 'z' }] };
    expect(build(changed)).to.deep.equal(rezoned);
  });
});
