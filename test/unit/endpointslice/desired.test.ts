import { expect } from 'chai';
import type { V1Endpoint } from '@kubernetes/client-node';
import { desiredEndpointGroups } from '../../../controllers/endpointslice/desired.ts';
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
});
