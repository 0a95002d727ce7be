import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { KubeApiError } from '../../shared/kube/errors.ts';
import {
  LeaderElector,
  type LeaderElectionOptions,
  type LeaseRecord,
  type LeaseStore,
} from '../../shared/leaderelection.ts';
import { nopLogger } from '../../shared/log.ts';

/** Lets pending promise chains run; no real time passes. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Moves the fake clock in small steps, letting async code run between steps. */
async function advance(clock: FakeClock, ms: number, stepMs = 100): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.step(Math.min(stepMs, ms - done));
    await flush();
  }
}

/** An API server's view of one Lease: compare-and-swap on resourceVersion. */
class MemoryLeaseStore implements LeaseStore {
  record: LeaseRecord | undefined;
  updates = 0;
  /** Every call fails as if the API server were unreachable. */
  failing = false;
  /** Runs just before an update is applied, e.g. to let another candidate win the race. */
  beforeUpdate: (() => void) | undefined;
  private rv = 0;

  get(): Promise<LeaseRecord | undefined> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    return Promise.resolve(this.record && { ...this.record });
  }

  create(record: LeaseRecord): Promise<LeaseRecord> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    if (this.record)
      return Promise.reject(new KubeApiError(409, 'already exists', { reason: 'AlreadyExists' }));
    return Promise.resolve(this.store(record));
  }

  update(record: LeaseRecord): Promise<LeaseRecord> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    const hook = this.beforeUpdate;
    this.beforeUpdate = undefined;
    hook?.();
    if (!this.record) return Promise.reject(new KubeApiError(404, 'not found'));
    if (record.resourceVersion !== this.record.resourceVersion) {
      return Promise.reject(new KubeApiError(409, 'the object has been modified', { reason: 'Conflict' }));
    }
    this.updates++;
    return Promise.resolve(this.store(record));
  }

  /** Another candidate writes the lease. */
  setHolder(holder: string, at: number, leaseTransitions = 0): void {
    this.store({
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      acquireTime: new Date(at),
      renewTime: new Date(at),
      leaseTransitions,
    });
  }

  private store(record: LeaseRecord): LeaseRecord {
    this.record = { ...record, resourceVersion: String(++this.rv) };
    return { ...this.record };
  }
}

interface Harness {
  clock: FakeClock;
  store: MemoryLeaseStore;
  elector: LeaderElector;
  stop: AbortController;
  calls: string[];
  leaderSignal(): AbortSignal | undefined;
  done: Promise<void>;
  finished(): boolean;
}

function start(
  setup?: (store: MemoryLeaseStore, clock: FakeClock) => void,
  opts: Partial<LeaderElectionOptions> = {},
) {
  const clock = new FakeClock(1_700_000_000_000);
  const store = new MemoryLeaseStore();
  setup?.(store, clock);
  const elector = new LeaderElector({
    lockName: 'scm',
    lockNamespace: 'kube-system',
    identity: 'me',
    clock,
    store,
    log: nopLogger,
    random: () => 0,
    ...opts,
  });
  const stop = new AbortController();
  const calls: string[] = [];
  let leaderSignal: AbortSignal | undefined;
  let finished = false;
  const done = elector
    .run(stop.signal, {
      onStartedLeading: (s) => {
        leaderSignal = s;
        calls.push('started');
      },
      onStoppedLeading: () => {
        calls.push('stopped');
      },
      onNewLeader: (id) => calls.push(`leader:${id}`),
    })
    .then(() => {
      finished = true;
    });
  const h: Harness = {
    clock,
    store,
    elector,
    stop,
    calls,
    leaderSignal: () => leaderSignal,
    done,
    finished: () => finished,
  };
  return h;
}

describe('LeaderElector', () => {
  it('acquires a free lease', async () => {
    const h = start();
    await flush();
    expect(h.elector.isLeader()).to.be.true;
    expect(h.calls).to.deep.equal(['leader:me', 'started']);
    expect(h.store.record?.holderIdentity).to.equal('me');
    expect(h.store.record?.leaseDurationSeconds).to.equal(15);
    expect(h.store.record?.leaseTransitions).to.equal(0);
    expect(h.store.record?.renewTime?.getTime()).to.equal(h.clock.now());
    h.stop.abort();
    await h.done;
  });

  it('acquires a released lease at once', async () => {
    const h = start((store, clock) => store.setHolder('', clock.now(), 2));
    await flush();
    expect(h.elector.isLeader()).to.be.true;
    expect(h.store.record?.holderIdentity).to.equal('me');
    h.stop.abort();
    await h.done;
  });

  it("waits while another holder's lease is fresh and takes it after it expires", async () => {
    const h = start((store, clock) => store.setHolder('other', clock.now()));
    await flush();
    expect(h.elector.isLeader()).to.be.false;
    expect(h.calls).to.deep.equal(['leader:other']);

    await advance(h.clock, 14_000);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.store.record?.holderIdentity).to.equal('other');

    // The record has not changed for a lease duration (15 s): the next retry (t=16 s) takes it.
    await advance(h.clock, 2_000);
    expect(h.elector.isLeader()).to.be.true;
    expect(h.store.record?.holderIdentity).to.equal('me');
    expect(h.calls).to.deep.equal(['leader:other', 'leader:me', 'started']);
    h.stop.abort();
    await h.done;
  });

  it('keeps waiting while the other holder renews', async () => {
    const h = start((store, clock) => store.setHolder('other', clock.now()));
    await flush();
    for (let i = 0; i < 10; i++) {
      await advance(h.clock, 5_000);
      h.store.setHolder('other', h.clock.now());
    }
    expect(h.elector.isLeader()).to.be.false;
    expect(h.calls).to.deep.equal(['leader:other']);
    h.stop.abort();
    await h.done;
    expect(h.calls).to.deep.equal(['leader:other']); // never led: no onStoppedLeading
  });

  it('renews every retry period', async () => {
    const h = start();
    await flush();
    const acquiredAt = h.clock.now();
    const acquireTime = h.store.record?.acquireTime?.getTime();
    for (let i = 1; i <= 5; i++) {
      await advance(h.clock, 2_000);
      expect(h.store.record?.renewTime?.getTime()).to.equal(acquiredAt + i * 2_000);
    }
    expect(h.store.updates).to.equal(5);
    expect(h.store.record?.acquireTime?.getTime()).to.equal(acquireTime);
    expect(h.store.record?.leaseTransitions).to.equal(0);
    expect(h.elector.isLeader()).to.be.true;
    h.stop.abort();
    await h.done;
  });

  it('stops leading when renewals fail past the renew deadline', async () => {
    const h = start();
    await flush();
    expect(h.elector.isLeader()).to.be.true;
    h.store.failing = true;

    // First renewal at 2 s fails; retries every 2 s until the 10 s deadline (t=12 s).
    await advance(h.clock, 11_000);
    expect(h.elector.isLeader()).to.be.true;
    expect(h.leaderSignal()?.aborted).to.be.false;
    expect(h.finished()).to.be.false;

    await advance(h.clock, 1_100);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.leaderSignal()?.aborted).to.be.true;
    expect(h.calls).to.deep.equal(['leader:me', 'started', 'stopped']);
    expect(h.finished()).to.be.true;
    expect(h.stop.signal.aborted).to.be.false;
  });

  it('stops leading when a renewal hangs past the renew deadline', async () => {
    const h = start();
    await flush();
    h.store.get = () => new Promise(() => {});
    h.store.update = () => new Promise(() => {});
    await advance(h.clock, 12_100);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.finished()).to.be.true;
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
    await h.done;
  });

  it('releases the lease on cancel', async () => {
    const h = start();
    await flush();
    await advance(h.clock, 2_000);
    h.stop.abort();
    await h.done;
    expect(h.leaderSignal()?.aborted).to.be.true;
    expect(h.calls).to.deep.equal(['leader:me', 'started', 'stopped']);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.store.record?.holderIdentity).to.equal('');
    expect(h.store.record?.leaseDurationSeconds).to.equal(1);
  });

  it('keeps the lease on cancel when releaseOnCancel is false', async () => {
    const h = start(undefined, { releaseOnCancel: false });
    await flush();
    h.stop.abort();
    await h.done;
    expect(h.calls).to.deep.equal(['leader:me', 'started', 'stopped']);
    expect(h.store.record?.holderIdentity).to.equal('me');
  });

  it('increments leaseTransitions on takeover', async () => {
    const h = start((store, clock) => store.setHolder('other', clock.now(), 3));
    await flush();
    await advance(h.clock, 16_000);
    expect(h.elector.isLeader()).to.be.true;
    expect(h.store.record?.leaseTransitions).to.equal(4);
    expect(h.store.record?.acquireTime?.getTime()).to.equal(h.clock.now());
    // Renewals keep the count.
    await advance(h.clock, 4_000);
    expect(h.store.record?.leaseTransitions).to.equal(4);
    h.stop.abort();
    await h.done;
  });

  it('stops leading at once when another holder took the lease', async () => {
    const h = start();
    await flush();
    h.store.setHolder('other', h.clock.now(), 1);
    await advance(h.clock, 2_000);
    expect(h.elector.isLeader()).to.be.false;
    expect(h.calls).to.deep.equal(['leader:me', 'started', 'leader:other', 'stopped']);
    expect(h.finished()).to.be.true;
    expect(h.store.record?.holderIdentity).to.equal('other');
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
