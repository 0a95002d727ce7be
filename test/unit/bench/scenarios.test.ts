import { expect } from 'chai';
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import { readinessShown, readinessView } from '../../../bench/compare.ts';
import { singlePodFlipCount, singlePodFlipPlan } from '../../../bench/scenarios.ts';
import type { PodModel } from '../../../bench/workload.ts';

function pods(count: number): PodModel[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `big-r0-${i}`,
    service: 'big',
    ip: `10.128.0.${i + 1}`,
    node: 'n',
    ready: true,
  }));
}

function endpoints(ready: string[], notReady: string[], truncated = false): V1Endpoints {
  return {
    metadata: {
      name: 'big',
      ...(truncated ? { annotations: { 'endpoints.kubernetes.io/over-capacity': 'truncated' } } : {}),
    },
    subsets: [{ addresses: ready.map((ip) => ({ ip })), notReadyAddresses: notReady.map((ip) => ({ ip })) }],
  };
}

function slice(eps: [string, boolean][]): V1EndpointSlice {
  return {
    metadata: {
      name: 'big-1',
      labels: {
        'kubernetes.io/service-name': 'big',
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    endpoints: eps.map(([ip, ready]) => ({ addresses: [ip], conditions: { ready } })),
  };
}

describe('bench single-pod flips', () => {
  it('count: 200 at scale 1, at least 20, always even (each pod is flipped back)', () => {
    expect(singlePodFlipCount(1)).to.equal(200);
    expect(singlePodFlipCount(0.02)).to.equal(20);
    expect(singlePodFlipCount(0.5)).to.equal(100);
    expect(singlePodFlipCount(0.105)).to.equal(22);
    expect(singlePodFlipCount(3)).to.equal(600);
  });

  it('plan: each pod twice in a row, distinct pods while there are enough, seeded', () => {
    const plan = singlePodFlipPlan(pods(50), 20, 1);
    expect(plan).to.have.length(20);
    for (let i = 0; i < plan.length; i += 2) expect(plan[i]).to.equal(plan[i + 1]);
    expect(new Set(plan.map((p) => p.name)).size).to.equal(10);
    // The same seed, candidates in another order: the same plan.
    const again = singlePodFlipPlan([...pods(50)].reverse(), 20, 1);
    expect(again.map((p) => p.name)).to.deep.equal(plan.map((p) => p.name));
    expect(singlePodFlipPlan(pods(50), 20, 3).map((p) => p.name)).to.not.deep.equal(plan.map((p) => p.name));
  });

  it('plan: fewer candidates than pairs are used again; none, no flips', () => {
    const plan = singlePodFlipPlan(pods(3), 10, 1);
    expect(plan).to.have.length(10);
    expect(new Set(plan.map((p) => p.name)).size).to.equal(3);
    expect(singlePodFlipPlan([], 10, 1)).to.deep.equal([]);
  });

  it('shown: the slices and the Endpoints both with the new readiness', () => {
    const a = '10.128.0.1';
    const view = readinessView(endpoints([], [a]), [slice([[a, false]])]);
    expect(readinessShown(view, a, false)).to.equal(true);
    expect(readinessShown(view, a, true)).to.equal(false);
    // The slice already shows it, the Endpoints not yet.
    const half = readinessView(endpoints([a], []), [slice([[a, false]])]);
    expect(readinessShown(half, a, false)).to.equal(false);
    // Not in the Endpoints at all (not truncated): not shown.
    expect(readinessShown(readinessView(endpoints([], []), [slice([[a, true]])]), a, true)).to.equal(false);
  });

  it('shown, truncated Endpoints: enough that it no longer lists the pod with its old readiness', () => {
    const a = '10.128.0.1';
    const b = '10.128.0.2';
    // The pod turned not ready left the 1000 (another took its place).
    const left = readinessView(endpoints([b], [], true), [
      slice([
        [a, false],
        [b, true],
      ]),
    ]);
    expect(readinessShown(left, a, false)).to.equal(true);
    // Still listed as ready: the Endpoints has not caught up.
    const stale = readinessView(endpoints([a, b], [], true), [
      slice([
        [a, false],
        [b, true],
      ]),
    ]);
    expect(readinessShown(stale, a, false)).to.equal(false);
    // Turned ready again, not (yet) back in the 1000: shown once its slice shows it.
    expect(readinessShown(left, a, true)).to.equal(false);
    expect(readinessShown(readinessView(endpoints([b], [], true), [slice([[a, true]])]), a, true)).to.equal(
      true,
    );
  });
});
