import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { FencedError } from '../../shared/kube/errors.ts';
import {
  FENCE_MARGIN_MS,
  LeaderElector,
  LeaseLostError,
  type LeaderElectionOptions,
  type Leadership,
} from '../../shared/leaderelection.ts';
import { advance, flush, MemoryLeaseStore, testElector } from './helpers/leases.ts';

interface Harness {
  clock: FakeClock;
  store: MemoryLeaseStore;
  elector: LeaderElector;
  stop: AbortController;
  calls: string[];
  /** Resolves with the Leadership, or undefined when acquire was cancelled. */
  acquired: Promise<Leadership | undefined>;
  /** The Leadership once acquire resolved with one. */
  leadership(): Leadership | undefined;
}

function start(
  setup?: (store: MemoryLeaseStore, clock: FakeClock) => void,
  opts: Partial<LeaderElectionOptions> = {},
): Harness {
  const clock = new FakeClock(1_700_000_000_000);
  const store = new MemoryLeaseStore();
  setup?.(store, clock);
  const calls: string[] = [];
  const elector = testElector(clock, store, { onNewLeader: (id) => calls.push(`leader:${id}`), ...opts });
  const stop = new AbortController();
  let leadership: Leadership | undefined;
  const acquired = elector.acquire(stop.signal).then((l) => {
    leadership = l;
    if (l) {
      calls.push('started');
      l.lost.addEventListener('abort', () => calls.push('lost'));
    }
    return l;
  });
  return { clock, store, elector, stop, calls, acquired, leadership: () => leadership };
}

/** Starts a harness and waits until it leads. */
async function leading(
  setup?: (store: MemoryLeaseStore, clock: FakeClock) => void,
  opts: Partial<LeaderElectionOptions> = {},
): Promise<Harness & { lease: Leadership }> {
  const h = start(setup, opts);
  await flush();
  const lease = h.leadership();
  if (!lease) throw new Error('did not lead');
  return { ...h, lease };
}

describe('LeaderElector', () => {
  it('acquires a free lease', async () => {
    const h = await leading();
    expect(h.elector.isLeader()).to.be.true;
    expect(h.calls).to.deep.equal(['leader:me', 'started']);
    expect(h.store.record?.holderIdentity).to.equal('me');
    expect(h.store.record?.leaseDurationSeconds).to.equal(15);
    expect(h.store.record?.leaseTransitions).to.equal(0);
    expect(h.store.record?.renewTime?.getTime()).to.equal(h.clock.wallTime());
    await h.lease.release();
  });

  it('writes the wall clock into renewTime and times everything else on the monotonic clock', async () => {
    const h = await leading(undefined, {
      clock: new FakeClock(5_000, Date.UTC(2026, 11, 1)),
    });
    expect(h.store.record?.renewTime?.toISOString()).to.equal('2026-12-01T00:00:00.000Z');
    await h.lease.release();
  });

  it('acquires a released lease at once', async () => {
    const h = await leading((store, clock) => store.setHolder('', clock.now(), 2));
    expect(h.store.record?.holderIdentity).to.equal('me');
    await h.lease.release();
  });

  it("waits while another holder's lease is fresh and takes it after it expires", async () => {
    const h = start((store, clock) => store.setHolder('other', clock.now()));
    await flush();
    expect(h.leadership()).to.equal(undefined);
    expect(h.calls).to.deep.equal(['leader:other']);

    await advance(h.clock, 14_000);
    expect(h.leadership()).to.equal(undefined);
    expect(h.store.record?.holderIdentity).to.equal('other');

    // The record has not changed for a lease duration (15 s): the next retry (t=16 s) takes it.
    await advance(h.clock, 2_000);
    expect(h.elector.isLeader()).to.be.true;
    expect(h.store.record?.holderIdentity).to.equal('me');
    expect(h.calls).to.deep.equal(['leader:other', 'leader:me', 'started']);
    await h.leadership()!.release();
  });

  it('keeps waiting while the other holder renews, and resolves undefined when cancelled', async () => {
    const h = start((store, clock) => store.setHolder('other', clock.now()));
    await flush();
    for (let i = 0; i < 10; i++) {
      await advance(h.clock, 5_000);
      h.store.setHolder('other', h.clock.now());
    }
    expect(h.elector.isLeader()).to.be.false;
    h.stop.abort();
    expect(await h.acquired).to.equal(undefined);
    expect(h.calls).to.deep.equal(['leader:other']);
  });

  it('renews every retry period, keeping acquireTime and leaseTransitions', async () => {
    const h = await leading();
    const acquiredAt = h.clock.wallTime();
    const acquireTime = h.store.record?.acquireTime?.getTime();
    for (let i = 1; i <= 5; i++) {
      await advance(h.clock, 2_000);
      expect(h.store.record?.renewTime?.getTime()).to.equal(acquiredAt + i * 2_000);
    }
    expect(h.store.updates).to.equal(5);
    expect(h.store.record?.acquireTime?.getTime()).to.equal(acquireTime);
    expect(h.store.record?.leaseTransitions).to.equal(0);
    expect(h.elector.isLeader()).to.be.true;
    await h.lease.release();
  });

  it('loses the lease when renewals fail past the renew deadline', async () => {
    const h = await leading();
    h.store.failing = true;

    // First renewal at 2 s fails; retries every 2 s until the 10 s deadline (t=12 s).
    await advance(h.clock, 11_000);
    expect(h.elector.isLeader()).to.be.true;
    expect(h.lease.lost.aborted).to.be.false;

    await advance(h.clock, 1_100);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.lease.lost.aborted).to.be.true;
    expect(h.lease.lost.reason).to.be.instanceOf(LeaseLostError);
    expect((h.lease.lost.reason as Error).message).to.include('renew deadline');
    expect(h.calls).to.deep.equal(['leader:me', 'started', 'lost']);
  });

  it('loses the lease when a renewal hangs past the renew deadline, and aborts that request', async () => {
    const h = await leading();
    const signals: AbortSignal[] = [];
    h.store.get = (signal) => {
      if (signal) signals.push(signal);
      return new Promise(() => {});
    };
    h.store.update = (_record, signal) => {
      if (signal) signals.push(signal);
      return new Promise(() => {});
    };
    await advance(h.clock, 12_100);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.lease.lost.aborted).to.be.true;
    expect(signals.length).to.be.above(0);
    expect(signals.every((s) => s.aborted)).to.be.true;
  });

  it('loses the race on 409 without leading', async () => {
    const h = start((store, clock) => {
      store.setHolder('', clock.now());
      // Another candidate updates the released lease between our read and our write.
      store.beforeUpdate = () => store.setHolder('other', clock.now(), 1);
    });
    await flush();
    expect(h.elector.isLeader()).to.be.false;
    expect(h.calls).to.not.include('started');
    expect(h.store.record?.holderIdentity).to.equal('other');

    // On the next retry it sees the winner's fresh lease and keeps waiting.
    await advance(h.clock, 2_000);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.calls).to.deep.equal(['leader:other']);
    h.stop.abort();
    expect(await h.acquired).to.equal(undefined);
  });

  it('release closes the fence first, then clears the holder with a 1 s duration and stops renewing', async () => {
    const h = await leading();
    await advance(h.clock, 2_000);
    let fenceOpenAtReleaseWrite: boolean | undefined;
    h.store.beforeUpdate = () => (fenceOpenAtReleaseWrite = h.elector.isLeader());
    await h.lease.release();
    expect(fenceOpenAtReleaseWrite).to.equal(false);
    expect(h.elector.isLeader()).to.be.false;
    expect(() => h.elector.check()).to.throw(FencedError);
    expect(h.store.record?.holderIdentity).to.equal('');
    expect(h.store.record?.leaseDurationSeconds).to.equal(1);
    const updates = h.store.updates;
    await advance(h.clock, 10_000);
    expect(h.store.updates, 'no renewal after the release').to.equal(updates);
    expect(h.lease.lost.aborted, 'a release is not a loss').to.be.false;
  });

  it('increments leaseTransitions on takeover', async () => {
    const h = start((store, clock) => store.setHolder('other', clock.now(), 3));
    await flush();
    await advance(h.clock, 16_000);
    expect(h.elector.isLeader()).to.be.true;
    expect(h.store.record?.leaseTransitions).to.equal(4);
    expect(h.store.record?.acquireTime?.getTime()).to.equal(h.clock.wallTime());
    // Renewals keep the count.
    await advance(h.clock, 4_000);
    expect(h.store.record?.leaseTransitions).to.equal(4);
    await h.leadership()!.release();
  });

  it('loses the lease at once when another holder took it, and releases nothing', async () => {
    const h = await leading();
    h.store.setHolder('other', h.clock.now(), 1);
    await advance(h.clock, 2_000);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.calls).to.deep.equal(['leader:me', 'started', 'leader:other', 'lost']);
    await h.lease.release();
    expect(h.store.record?.holderIdentity).to.equal('other');
  });

  it('the fence refuses writes before the lease is acquired', () => {
    const h = start((store, clock) => store.setHolder('other', clock.now()));
    expect(() => h.elector.check()).to.throw(FencedError);
    h.stop.abort();
  });

  it('a leader frozen past the lease validity wakes fenced, loses the lease and sends no write', async () => {
    const h = await leading();
    expect(() => h.elector.check()).to.not.throw();
    const updates = h.store.updates;
    let reads = 0;
    const get = h.store.get.bind(h.store);
    h.store.get = (signal) => {
      reads++;
      return get(signal);
    };
    // One jump of 1.5 lease durations with no chance to run in between: a SIGSTOP, then SIGCONT.
    h.clock.step(22_500);
    expect(() => h.elector.check()).to.throw(FencedError);
    await flush();
    expect(h.lease.lost.aborted).to.be.true;
    expect((h.lease.lost.reason as Error).message).to.include('frozen');
    expect(h.store.updates, 'no renewal after waking').to.equal(updates);
    expect(reads, 'not even a read of the lease').to.equal(0);
    await h.lease.release();
    expect(h.store.updates, 'no release after a loss').to.equal(updates);
  });

  it('the fence counts from the start of the last renew, not from its response', async () => {
    const h = await leading();
    // The next renewal (at 2 s) takes 5 s to come back.
    let respond: (() => void) | undefined;
    const update = h.store.update.bind(h.store);
    h.store.update = (record, signal) =>
      new Promise((resolve, reject) => {
        respond = () => void update(record, signal).then(resolve, reject);
      });
    await advance(h.clock, 2_000);
    const renewStartedAt = h.clock.now();
    await advance(h.clock, 5_000);
    respond!();
    await flush();
    expect(h.elector.isLeader()).to.be.true;
    h.store.update = update;
    h.store.failing = true; // no later renewal succeeds
    const validUntil = renewStartedAt + 15_000 - FENCE_MARGIN_MS;
    await advance(h.clock, validUntil - h.clock.now() - 100);
    expect(h.elector.isLeader()).to.be.true;
    await advance(h.clock, 100);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.lease.lost.aborted).to.be.true;
  });

  it('rejects a renew deadline that is not below the lease duration', () => {
    expect(
      () =>
        new LeaderElector({
          lockName: 'scm',
          lockNamespace: 'kube-system',
          identity: 'me',
          store: new MemoryLeaseStore(),
          leaseDurationMs: 10_000,
          renewDeadlineMs: 10_000,
        }),
    ).to.throw(/lease duration must be greater than the renew deadline/);
  });
});
