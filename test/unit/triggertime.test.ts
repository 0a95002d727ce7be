import { expect } from 'chai';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { TriggerTimeTracker } from '../../shared/endpoints/triggertime.ts';

const CREATED = new Date('2026-01-01T00:00:00Z');

function service(created: Date = CREATED): V1Service {
  return {
    metadata: { name: 's', namespace: 'n', creationTimestamp: created },
    spec: { selector: { app: 'a' } },
  };
}

function pod(name: string, readyAt?: Date): V1Pod {
  return {
    metadata: { name, namespace: 'n' },
    status: readyAt ? { conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: readyAt }] } : {},
  };
}

const T1 = new Date('2026-01-02T00:00:01Z');
const T2 = new Date('2026-01-02T00:00:02Z');
const T3 = new Date('2026-01-02T00:00:03Z');
const T4 = new Date('2026-01-02T00:00:04Z');

describe('TriggerTimeTracker', () => {
  it('returns the service creation time on first sight when it is the earliest change', () => {
    const tracker = new TriggerTimeTracker();
    expect(tracker.compute('n/s', service(), [pod('p1', T1)])).to.deep.equal(CREATED);
  });

  it('returns the earliest Ready transition among the pods that changed since the previous sync', () => {
    const tracker = new TriggerTimeTracker();
    tracker.compute('n/s', service(), [pod('p1', T1), pod('p2', T2)]);

    // p1 unchanged (T1 is earlier but did not change), p2 moves to T4, p3 appears at T3.
    const got = tracker.compute('n/s', service(), [pod('p1', T1), pod('p2', T4), pod('p3', T3)]);

    expect(got).to.deep.equal(T3);
  });

  it('reads an unchanged pod object once; a pod that left and comes back counts as changed', () => {
    const tracker = new TriggerTimeTracker();
    const p1 = pod('p1', T1);
    const p2 = pod('p2', T2);
    tracker.compute('n/s', service(), [p1, p2]);
    // The same objects: nothing changed, whatever their condition now says (cache objects never
    // change in place; this shows they are not read again).
    p1.status!.conditions![0].lastTransitionTime = T4;
    expect(tracker.compute('n/s', service(), [p1, p2])).to.equal(undefined);
    // p2 leaves, then comes back with its old time: a change, as it was not there in between.
    expect(tracker.compute('n/s', service(), [p1])).to.equal(undefined);
    expect(tracker.compute('n/s', service(), [p1, pod('p2', T2)])).to.deep.equal(T2);
  });

  it('returns undefined when neither the service nor any pod changed', () => {
    const tracker = new TriggerTimeTracker();
    tracker.compute('n/s', service(), [pod('p1', T1), pod('p2')]);

    expect(tracker.compute('n/s', service(), [pod('p1', T1), pod('p2')])).to.equal(undefined);
    // A pod without a Ready transition has no trigger time, and a removed pod is not a change.
    expect(tracker.compute('n/s', service(), [pod('p2')])).to.equal(undefined);
  });

  it('treats the service as new again after forget', () => {
    const tracker = new TriggerTimeTracker();
    tracker.compute('n/s', service(), [pod('p1', T1)]);
    tracker.forget('n/s');

    expect(tracker.compute('n/s', service(), [pod('p1', T1)])).to.deep.equal(CREATED);
  });
});
