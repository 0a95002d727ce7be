import { expect } from 'chai';
import type { CoreV1Event } from '@kubernetes/client-node';
import { FakeClock } from '../../shared/clock.ts';
import { EventRecorder, type EventObjectRef, type EventSink } from '../../shared/kube/events.ts';
import { KubeApiError } from '../../shared/kube/errors.ts';
import { nopLogger } from '../../shared/log.ts';

/** Events as the API server would store them, keyed `namespace/name`. */
class MemoryEventSink implements EventSink {
  readonly stored = new Map<string, CoreV1Event>();
  creates = 0;
  updates = 0;
  failWith: Error | undefined;
  private rv = 0;

  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    const key = `${namespace}/${event.metadata.name}`;
    if (this.stored.has(key))
      return Promise.reject(new KubeApiError(409, 'exists', { reason: 'AlreadyExists' }));
    this.creates++;
    return Promise.resolve(this.put(key, event));
  }

  update(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    const key = `${namespace}/${event.metadata.name}`;
    const current = this.stored.get(key);
    if (!current) return Promise.reject(new KubeApiError(404, 'not found', { reason: 'NotFound' }));
    if (current.metadata.resourceVersion !== event.metadata.resourceVersion) {
      return Promise.reject(new KubeApiError(409, 'conflict', { reason: 'Conflict' }));
    }
    this.updates++;
    return Promise.resolve(this.put(key, event));
  }

  list(): CoreV1Event[] {
    return [...this.stored.values()];
  }

  private put(key: string, event: CoreV1Event): CoreV1Event {
    const stored = structuredClone({
      ...event,
      metadata: { ...event.metadata, resourceVersion: String(++this.rv) },
    });
    this.stored.set(key, stored);
    return structuredClone(stored);
  }
}

const svc: EventObjectRef = {
  kind: 'Service',
  apiVersion: 'v1',
  namespace: 'default',
  name: 'web',
  uid: 'u-1',
};

function setup() {
  const clock = new FakeClock(1_700_000_000_000);
  const sink = new MemoryEventSink();
  const recorder = new EventRecorder({
    sink,
    component: 'service-controller-manager',
    clock,
    log: nopLogger,
    host: 'node-1',
  });
  return { clock, sink, recorder };
}

describe('EventRecorder', () => {
  it('writes a core/v1 Event naming the object, the component and the instance', async () => {
    const { clock, sink, recorder } = setup();
    recorder.event(svc, 'Warning', 'FailedToUpdateEndpoint', 'boom');
    await recorder.flush();
    const [ev] = sink.list();
    expect(ev?.metadata.name).to.match(/^web\.[0-9a-f]{16}$/);
    expect(ev?.metadata.namespace).to.equal('default');
    expect(ev?.involvedObject).to.include({
      kind: 'Service',
      apiVersion: 'v1',
      namespace: 'default',
      name: 'web',
      uid: 'u-1',
    });
    expect(ev).to.include({ type: 'Warning', reason: 'FailedToUpdateEndpoint', message: 'boom', count: 1 });
    expect(ev?.source?.component).to.equal('service-controller-manager');
    expect(ev?.reportingComponent).to.equal('service-controller-manager');
    expect(ev?.reportingInstance).to.equal('node-1');
    expect(ev?.firstTimestamp?.getTime()).to.equal(clock.now());
    expect(ev?.lastTimestamp?.getTime()).to.equal(clock.now());
  });

  it('records an event about a cluster-scoped object in the default namespace', async () => {
    const { sink, recorder } = setup();
    recorder.event(
      { kind: 'RangeAllocation', apiVersion: 'scm.dev/v1alpha1', name: 'servicenodeports' },
      'Normal',
      'Repaired',
      'ok',
    );
    await recorder.flush();
    const [ev] = sink.list();
    expect(ev?.metadata.namespace).to.equal('default');
    expect(ev?.involvedObject.namespace).to.equal(undefined);
  });

  it('a repeated event updates count instead of creating a new one', async () => {
    const { clock, sink, recorder } = setup();
    const first = clock.now();
    recorder.event(svc, 'Warning', 'Failed', 'boom');
    clock.step(60_000);
    recorder.event(svc, 'Warning', 'Failed', 'boom');
    clock.step(60_000);
    recorder.event(svc, 'Warning', 'Failed', 'boom');
    await recorder.flush();
    expect(sink.creates).to.equal(1);
    expect(sink.updates).to.equal(2);
    const [ev] = sink.list();
    expect(ev?.count).to.equal(3);
    expect(ev?.firstTimestamp?.getTime()).to.equal(first);
    expect(ev?.lastTimestamp?.getTime()).to.equal(first + 120_000);
  });

  it('a different message creates a new event', async () => {
    const { sink, recorder } = setup();
    recorder.event(svc, 'Warning', 'Failed', 'boom');
    recorder.event(svc, 'Warning', 'Failed', 'bang');
    await recorder.flush();
    expect(sink.creates).to.equal(2);
    expect(sink.updates).to.equal(0);
    expect(sink.list().map((e) => e.message)).to.have.members(['boom', 'bang']);
    expect(new Set(sink.list().map((e) => e.metadata.name)).size).to.equal(2);
  });

  it('a repeat after the aggregation window creates a new event', async () => {
    const { clock, sink, recorder } = setup();
    recorder.event(svc, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    clock.step(10 * 60_000 + 1);
    recorder.event(svc, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    expect(sink.creates).to.equal(2);
    expect(sink.updates).to.equal(0);
    expect(sink.list().map((e) => e.count)).to.deep.equal([1, 1]);
  });

  it('a repeat of an Event that was deleted creates a new event', async () => {
    const { sink, recorder } = setup();
    recorder.event(svc, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    sink.stored.clear();
    recorder.event(svc, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    expect(sink.creates).to.equal(2);
    expect(sink.list()).to.have.length(1);
  });

  it('the spam filter drops events beyond the burst', async () => {
    const { clock, sink, recorder } = setup();
    for (let i = 0; i < 30; i++) recorder.event(svc, 'Normal', 'Synced', `message ${i}`);
    await recorder.flush();
    expect(sink.creates).to.equal(25);

    // Another object has its own bucket.
    recorder.event({ ...svc, name: 'api', uid: 'u-2' }, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    expect(sink.creates).to.equal(26);

    // One token comes back every 5 minutes.
    clock.step(5 * 60_000);
    recorder.event(svc, 'Normal', 'Synced', 'after refill 1');
    recorder.event(svc, 'Normal', 'Synced', 'after refill 2');
    await recorder.flush();
    expect(sink.creates).to.equal(27);
  });

  it('a failing sink does not throw to the caller', async () => {
    const { sink, recorder } = setup();
    sink.failWith = new Error('connection refused');
    expect(() => recorder.event(svc, 'Warning', 'Failed', 'boom')).to.not.throw();
    await recorder.flush();
    expect(sink.list()).to.have.length(0);

    // A sink that throws synchronously is no different.
    const throwing = new EventRecorder({
      sink: {
        create: () => {
          throw new Error('sync failure');
        },
        update: () => {
          throw new Error('sync failure');
        },
      },
      component: 'service-controller-manager',
      clock: new FakeClock(),
      log: nopLogger,
    });
    expect(() => throwing.event(svc, 'Warning', 'Failed', 'boom')).to.not.throw();
    await throwing.flush();

    // Once the sink recovers, events are written again.
    sink.failWith = undefined;
    recorder.event(svc, 'Warning', 'Failed', 'boom');
    await recorder.flush();
    expect(sink.list()).to.have.length(1);
  });
});
