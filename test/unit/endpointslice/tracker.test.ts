import { expect } from 'chai';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import {
  EndpointSliceTracker,
  STALE_CACHE_MAX_WAIT_MS,
  STALE_CACHE_RECHECK_MS,
} from '../../../shared/endpoints/tracker.ts';

function slice(uid: string, generation: number, service = 's'): V1EndpointSlice {
  return {
    addressType: 'IPv4',
    metadata: {
      name: `${service}-${uid}`,
      namespace: 'n',
      uid,
      generation,
      labels: { 'kubernetes.io/service-name': service },
    },
  };
}

describe('EndpointSliceTracker', () => {
  it('a cache is stale while it holds an older generation than we wrote, fresh once it catches up', () => {
    const t = new EndpointSliceTracker();
    t.update(slice('a', 2));
    expect(t.staleSlices('n/s', [slice('a', 1)])).to.equal('it holds s-a at generation 1, we wrote 2');
    expect(t.staleSlices('n/s', [slice('a', 2)])).to.equal(undefined);
    expect(t.staleSlices('n/s', [slice('a', 3)])).to.equal(undefined);
  });

  it('a cache missing a slice we wrote, or still holding one we deleted, is stale', () => {
    const t = new EndpointSliceTracker();
    t.update(slice('a', 1));
    expect(t.staleSlices('n/s', [])).to.equal('it misses the slice with UID a, which we wrote');
    t.expectDeletion(slice('a', 1));
    expect(t.staleSlices('n/s', [slice('a', 1)])).to.equal('it still holds s-a, which we deleted');
    expect(t.staleSlices('n/s', [])).to.equal(undefined);
  });

  it('shouldSync only for slices someone else wrote or that are new to us', () => {
    const t = new EndpointSliceTracker();
    expect(t.shouldSync(slice('a', 1))).to.equal(true);
    t.update(slice('a', 1));
    expect(t.shouldSync(slice('a', 1))).to.equal(false);
    expect(t.shouldSync(slice('a', 2))).to.equal(true);
  });

  it('handleDeletion tells our deletions from others and forgets the slice', () => {
    const t = new EndpointSliceTracker();
    t.update(slice('a', 1));
    t.update(slice('b', 1));
    t.expectDeletion(slice('a', 1));
    expect(t.handleDeletion(slice('a', 1))).to.equal(true);
    expect(t.handleDeletion(slice('b', 1))).to.equal(false);
    expect(t.has(slice('a', 1))).to.equal(false);
    expect(t.has(slice('b', 1))).to.equal(false);
  });

  it('forget drops a relabelled slice from its old Service so that Service is not stale forever', () => {
    const t = new EndpointSliceTracker();
    t.update(slice('a', 1));
    t.forget(slice('a', 1));
    expect(t.staleSlices('n/s', [])).to.equal(undefined);
  });

  it('waits for a stale cache with a re-check, then gives up after the max wait and drops its records', () => {
    const t = new EndpointSliceTracker();
    t.update(slice('a', 1));
    expect(t.waitForCache('n/s', 1_000)).to.deep.equal({
      requeueAfterMs: STALE_CACHE_RECHECK_MS,
      gaveUp: false,
    });
    expect(t.isWaitingForCache('n/s')).to.equal(true);
    expect(t.waitForCache('n/s', 1_000 + STALE_CACHE_MAX_WAIT_MS - 1).gaveUp).to.equal(false);
    expect(t.waitForCache('n/s', 1_000 + STALE_CACHE_MAX_WAIT_MS)).to.deep.equal({
      requeueAfterMs: 0,
      gaveUp: true,
    });
    expect(t.isWaitingForCache('n/s')).to.equal(false);
    expect(t.staleSlices('n/s', [])).to.equal(undefined);
  });

  it('cacheCaughtUp ends the wait', () => {
    const t = new EndpointSliceTracker();
    t.waitForCache('n/s', 0);
    t.cacheCaughtUp('n/s');
    expect(t.isWaitingForCache('n/s')).to.equal(false);
  });
});
