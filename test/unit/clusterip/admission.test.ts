import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { V1Service } from '@kubernetes/client-node';
import { RangeAllocator } from '../../../shared/allocator/allocator.ts';
import { StoredRangeAllocator } from '../../../shared/allocator/committer.ts';
import { rangeMetrics } from '../../../shared/allocator/metrics.ts';
import { IPRange } from '../../../shared/allocator/ranges.ts';
import { rangeAllocationObject } from '../../../shared/allocator/storage.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { nopLogger } from '../../../shared/log.ts';
import { ClusterIPAdmission } from '../../../controllers/clusterip/admission.ts';
import { MemoryRangeAllocationStore } from '../allocator/memorystore.ts';

const RANGE = new IPRange('10.0.0.0/29'); // .1-.6, no static band

function setup(heldByApiServer: (ip: string) => boolean): {
  admission: ClusterIPAdmission;
  store: MemoryRangeAllocationStore;
} {
  const store = new MemoryRangeAllocationStore();
  const empty = new RangeAllocator(RANGE);
  store.put(rangeAllocationObject('serviceips-ipv4', empty.snapshot(), { size: RANGE.size, used: 0 }));
  const allocator = new StoredRangeAllocator<string>({
    name: 'serviceips-ipv4',
    range: RANGE,
    store,
    clock: new FakeClock(0),
    log: nopLogger,
    random: () => 0,
  });
  const admission = new ClusterIPAdmission({
    ranges: [RANGE],
    allocators: new Map([['IPv4', allocator]]),
    heldByApiServer,
    externalIPsAllowedCidrs: undefined,
    metrics: rangeMetrics(new Registry(), 'clusterip'),
  });
  return { admission, store };
}

const input = (service: V1Service) => ({
  operation: 'CREATE' as const,
  service,
  old: undefined,
  dryRun: false,
  signal: new AbortController().signal,
});

describe('ClusterIPAdmission and the API server own IPAddress objects', () => {
  it('allocateNext skips every address that exists as an IPAddress object', async () => {
    const held = new Set(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
    const { admission } = setup((ip) => held.has(ip));
    const result = await admission.admit(input({ spec: { ports: [{ port: 80 }] } }));
    expect(result.allowed).to.equal(true);
    expect(result.allowed && result.service.spec?.clusterIPs).to.deep.equal(['10.0.0.6']);
  });

  it('a requested address that exists as an IPAddress object is refused as taken, and not written to the map', async () => {
    const { admission, store } = setup((ip) => ip === '10.0.0.3');
    const result = await admission.admit(input({ spec: { clusterIP: '10.0.0.3', ports: [{ port: 80 }] } }));
    expect(result).to.deep.equal({
      allowed: false,
      code: 422,
      reason: 'Invalid',
      message: 'spec.clusterIPs[0]: Invalid value: "10.0.0.3": provided IP is already allocated',
    });
    expect(store.replaceCalls).to.equal(0);
  });

  it('when every free address is held by the API server the range is full: a 403 naming the range', async () => {
    const { admission } = setup(() => true);
    const result = await admission.admit(input({ spec: { ports: [{ port: 80 }] } }));
    expect(result.allowed).to.equal(false);
    expect(!result.allowed && result.code).to.equal(403);
    expect(!result.allowed && result.message).to.contain(
      'no free ClusterIP in 10.0.0.0/29: the range is full',
    );
  });
});
