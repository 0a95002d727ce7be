import { expect } from 'chai';
import type { CoreV1Event, V1Service } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { rangeMetrics } from '../../../shared/allocator/metrics.ts';
import { IPRange } from '../../../shared/allocator/ranges.ts';
import { RepairLoop } from '../../../shared/allocator/repairloop.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { EventRecorder } from '../../../shared/kube/events.ts';
import { nopLogger } from '../../../shared/log.ts';
import { clusterIPRepairOptions } from '../../../controllers/clusterip/reconciler.ts';
import { MemoryRangeAllocationStore, mapObject, storedValues } from './memorystore.ts';

const NAME = 'serviceips-ipv4';
const RANGE = new IPRange('10.0.0.0/24');

function service(name: string, ip: string): V1Service {
  return { metadata: { namespace: 'n', name }, spec: { clusterIP: ip, clusterIPs: [ip] } };
}

function world(services: V1Service[]): {
  store: MemoryRangeAllocationStore;
  loop: RepairLoop<string>;
  events: CoreV1Event[];
  recorder: EventRecorder;
  clock: FakeClock;
} {
  const store = new MemoryRangeAllocationStore();
  const events: CoreV1Event[] = [];
  const clock = new FakeClock(0, Date.parse('2026-12-02T00:00:00Z'));
  const recorder = new EventRecorder({
    sink: {
      create: (_ns, e) => {
        events.push(e);
        return Promise.resolve(e);
      },
      update: (_ns, e) => Promise.resolve(e),
    },
    component: 'service-controller-manager',
    clock,
    log: nopLogger,
  });
  const loop = new RepairLoop({
    ...clusterIPRepairOptions(RANGE, [RANGE]),
    store,
    listServices: () => Promise.resolve(services),
    intervalMs: 180_000,
    events: recorder,
    metrics: rangeMetrics(new Registry(), 'clusterip'),
    clock,
    log: nopLogger,
  });
  return { store, loop, events, recorder, clock };
}

describe('RepairLoop (one pass)', () => {
  it('a missing map is created from the Services', async () => {
    const { store, loop } = world([service('a', '10.0.0.20'), service('b', '10.0.0.30')]);
    const result = await loop.runOnce(new AbortController().signal);
    expect(result.wrote).to.equal('created');
    expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.20', '10.0.0.30']);
  });

  it('a map already right is not written', async () => {
    const { store, loop } = world([service('a', '10.0.0.20')]);
    store.put(mapObject(NAME, RANGE, ['10.0.0.20']));
    const result = await loop.runOnce(new AbortController().signal);
    expect(result.wrote).to.equal('none');
    expect(store.replaceCalls).to.equal(0);
  });

  it('a map kept for another range is rebuilt for this one, with an Event; values outside it are reported', async () => {
    const other = new IPRange('10.1.0.0/24');
    const { store, loop, events, recorder } = world([service('a', '10.0.0.20'), service('old', '10.1.0.9')]);
    store.put(mapObject(NAME, other, ['10.1.0.9']));
    const result = await loop.runOnce(new AbortController().signal);
    await recorder.flush();
    expect(result.wrote).to.equal('replaced');
    expect(result.rebuiltBecause).to.equal('the map is for 10.1.0.0/24, not 10.0.0.0/24');
    expect(store.stored(NAME)!.range).to.equal('10.0.0.0/24');
    expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.20']);
    expect(events.map((e) => [e.reason, e.involvedObject.name])).to.deep.equal([
      ['ClusterIPOutOfRange', 'old'],
      ['AllocationMapRebuilt', NAME],
    ]);
  });

  it('an unexpired reservation is kept and its values stay marked; an expired one is dropped and its values leak', async () => {
    const { store, loop, clock } = world([]);
    const map = mapObject(NAME, RANGE, ['10.0.0.40', '10.0.0.41']);
    map.reservations = [
      { holder: 'live', values: ['10.0.0.40'], renewedAt: '2026-12-02T00:00:00.000Z', ttlSeconds: 1800 },
      { holder: 'gone', values: ['10.0.0.41'], renewedAt: '2026-12-01T20:00:00.000Z', ttlSeconds: 1800 },
    ];
    store.put(map);
    clock.step(60_000);
    const result = await loop.runOnce(new AbortController().signal);
    expect(store.stored(NAME)!.reservations).to.deep.equal([map.reservations[0]]);
    expect(result.keptLeaks).to.deep.equal(['10.0.0.41']);
    expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.40', '10.0.0.41']);
  });
});
