import { expect } from 'chai';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { compare, type Snapshot } from '../../../bench/compare.ts';
import { floorSeconds } from '../../../bench/floor.ts';
import { Model } from '../../../bench/workload.ts';

function model(): Model {
  const m = new Model();
  m.services.add('s');
  m.pods.set('a', { name: 'a', service: 's', ip: '10.128.0.1', node: 'n', ready: true });
  m.pods.set('b', { name: 'b', service: 's', ip: '10.128.0.2', node: 'n', ready: false });
  return m;
}

function endpoints(ready: string[], notReady: string[]): V1Endpoints {
  return {
    metadata: { name: 's' },
    subsets: [
      {
        addresses: ready.map((ip) => ({ ip })),
        notReadyAddresses: notReady.map((ip) => ({ ip })),
        ports: [{ port: 8080 }],
      },
    ],
  };
}

function slice(name: string, eps: [string, boolean][]): V1EndpointSlice {
  return {
    metadata: { name, labels: { 'kubernetes.io/service-name': 's' } },
    addressType: 'IPv4',
    endpoints: eps.map(([ip, ready]) => ({ addresses: [ip], conditions: { ready } })),
  };
}

function snap(ep: V1Endpoints | undefined, slices: V1EndpointSlice[]): Snapshot {
  return { endpoints: new Map(ep ? [['s', ep]] : []), slices: new Map([['s', slices]]) };
}

describe('bench comparator', () => {
  it('accepts exactly the model: ready and not-ready addresses, slice endpoints with ready', () => {
    const result = compare(
      model(),
      snap(endpoints(['10.128.0.1'], ['10.128.0.2']), [
        slice('s-1', [
          ['10.128.0.1', true],
          ['10.128.0.2', false],
        ]),
      ]),
    );
    expect(result).to.deep.equal({ ok: true, differences: [], slices: 1, endpoints: 2 });
  });

  it('reports a wrong readiness, a missing Endpoints and an IP in two slices', () => {
    expect(
      compare(
        model(),
        snap(endpoints(['10.128.0.1', '10.128.0.2'], []), [slice('s-1', [['10.128.0.1', true]])]),
      ).differences,
    ).to.deep.equal([
      's: Endpoints miss 10.128.0.2 (ready=false)',
      's: slices hold 1 endpoints, want 2',
      's: slice endpoint 10.128.0.2 ready=undefined, want false',
    ]);
    expect(compare(model(), snap(undefined, [])).differences[0]).to.equal('s: no Endpoints');
    const twice = compare(
      model(),
      snap(endpoints(['10.128.0.1'], ['10.128.0.2']), [
        slice('s-1', [
          ['10.128.0.1', true],
          ['10.128.0.2', false],
        ]),
        slice('s-2', [['10.128.0.1', true]]),
      ]),
    );
    expect(twice.differences).to.deep.equal(['s: 10.128.0.1 in two slices']);
  });

  it('floor: writes beyond the workload at the measured rate, plus two deliveries of one write', () => {
    const floor = {
      writes: 600,
      seconds: 5,
      writesPerSecond: 100,
      writeLatencySeconds: 0.01,
      writeSeenSeconds: 0.012,
    };
    // 1,100 writes, burst 100: 10 s of writes; the workload lasted 4 s, so 6 s remain.
    expect(floorSeconds(floor, 100, 1100, 4)).to.be.closeTo(6 + 0.024, 1e-9);
    // All writes fit inside the workload: the controller sees the last write, its write is seen.
    expect(floorSeconds(floor, 100, 500, 60)).to.be.closeTo(0.024, 1e-9);
  });
});
