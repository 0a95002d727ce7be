import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { ABORT_GRACE_MS, Manager, type Informers, type Runnable } from '../../shared/controller/manager.ts';
import { nopLogger } from '../../shared/log.ts';
import { advance, flush, MemoryLeaseStore, testElector } from './helpers/leases.ts';

/** What a fake controller does when told to stop, and when aborted. */
type Reaction = 'returns' | 'waits-for-finish' | 'ignores';

/** A controller that records what happens to it; `finish()` ends its in-flight work. */
class FakeController implements Runnable {
  readonly name: string;
  stopSignal: AbortSignal | undefined;
  abortSignal: AbortSignal | undefined;
  finish: () => void = () => {};
  private readonly log: string[];
  private readonly onStop: Reaction;
  private readonly onAbort: Reaction;
  private readonly failWith: Error | undefined;

  constructor(
    name: string,
    log: string[],
    opts: { onStop?: Reaction; onAbort?: Reaction; failWith?: Error } = {},
  ) {
    this.name = name;
    this.log = log;
    this.onStop = opts.onStop ?? 'returns';
    this.onAbort = opts.onAbort ?? 'returns';
    this.failWith = opts.failWith;
  }

  start(stop: AbortSignal, abort: AbortSignal): Promise<void> {
    this.stopSignal = stop;
    this.abortSignal = abort;
    this.log.push(`start ${this.name}`);
    if (this.failWith) return Promise.reject(this.failWith);
    return new Promise<void>((resolve) => {
      let ended = false;
      const done = (why: string): void => {
        ended = true;
        this.log.push(`${why} ${this.name}`);
        resolve();
      };
      this.finish = () => done('finished');
      // What happens to it after it returned is not recorded.
      stop.addEventListener('abort', () => {
        if (ended) return;
        this.log.push(`stop ${this.name}`);
        if (this.onStop === 'returns') done('stopped');
      });
      abort.addEventListener('abort', () => {
        if (ended) return;
        this.log.push(`abort ${this.name}`);
        if (this.onAbort === 'returns') done('aborted');
      });
    });
  }
}

function fakeInformers(log: string[]): Informers {
  let running = false;
  return {
    start: () => {
      running = true;
      log.push('informers started');
    },
    stopped: () => {
      if (running) log.push('informers stopped');
      running = false;
      return Promise.resolve();
    },
    hasSynced: () => true,
  };
}

function setup(opts: { elector?: boolean; shutdownTimeoutMs?: number; beforeReleaseHangs?: boolean } = {}) {
  const clock = new FakeClock(0);
  const log: string[] = [];
  const store = new MemoryLeaseStore();
  const elector = opts.elector ? testElector(clock, store) : undefined;
  const manager = new Manager({
    log: nopLogger,
    clock,
    informers: fakeInformers(log),
    elector,
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 30_000,
    beforeRelease: () => {
      log.push(`before release (lease holder ${store.record?.holderIdentity ?? 'none'})`);
      return opts.beforeReleaseHangs ? new Promise<void>(() => {}) : Promise.resolve();
    },
  });
  const stop = new AbortController();
  return { clock, log, store, manager, stop };
}

describe('Manager', () => {
  it('a graceful stop stops the controllers in reverse order, then the informers, then releases the Lease, renewing it while in-flight work finishes', async () => {
    const { clock, log, store, manager, stop } = setup({ elector: true });
    const a = new FakeController('a', log);
    const b = new FakeController('b', log, { onStop: 'waits-for-finish' });
    manager.add(a);
    manager.add(b);
    const exit = manager.run(stop.signal);
    await flush();
    expect(log).to.deep.equal(['informers started', 'start a', 'start b']);
    stop.abort();
    await flush();
    expect(log.slice(3)).to.deep.equal(['stop b', 'stop a', 'stopped a']);

    // b drains for 20 s, longer than the 15 s lease: the Lease is renewed meanwhile.
    const renewals = store.updates;
    await advance(clock, 20_000);
    expect(store.updates - renewals).to.equal(10);
    expect(store.record?.holderIdentity).to.equal('me');
    expect(b.abortSignal?.aborted).to.equal(false);
    b.finish();
    expect(await exit).to.equal('stopped');
    expect(log.slice(6)).to.deep.equal([
      'finished b',
      'informers stopped',
      'before release (lease holder me)',
    ]);
    expect(store.record?.holderIdentity).to.equal('');
  });

  it('at the shutdown timeout every controller not stopped yet is aborted', async () => {
    const { clock, log, manager, stop } = setup({ shutdownTimeoutMs: 5_000 });
    const a = new FakeController('a', log, { onStop: 'waits-for-finish' });
    const b = new FakeController('b', log);
    const c = new FakeController('c', log, { onStop: 'waits-for-finish' });
    for (const x of [a, b, c]) manager.add(x);
    const exit = manager.run(stop.signal);
    await flush();
    stop.abort();
    await flush();
    await advance(clock, 4_900);
    expect(a.abortSignal?.aborted).to.equal(false);
    await advance(clock, 100);
    expect(await exit).to.equal('stopped');
    expect(log.filter((l) => l.startsWith('abort'))).to.deep.equal([
      'abort a',
      'aborted a',
      'abort c',
      'aborted c',
    ]);
    expect(log, 'b had stopped by itself').to.include('stopped b');
    expect(log.at(-2)).to.equal('informers stopped');
  });

  it('a lost lease aborts every controller at once, releases nothing and resolves lost-lease', async () => {
    const { clock, log, store, manager, stop } = setup({ elector: true });
    const a = new FakeController('a', log, { onStop: 'waits-for-finish' });
    manager.add(a);
    const exit = manager.run(stop.signal);
    await flush();
    store.failing = true;
    await advance(clock, 12_100);
    expect(await exit).to.equal('lost-lease');
    expect(a.abortSignal?.aborted).to.equal(true);
    expect(log).to.deep.equal(['informers started', 'start a', 'abort a', 'aborted a', 'informers stopped']);
    expect(log.some((l) => l.startsWith('before release'))).to.equal(false);
    expect(store.record?.holderIdentity, 'not released').to.equal('me');
  });

  it('a lease lost during a graceful drain aborts the drain at once', async () => {
    const { clock, log, store, manager, stop } = setup({ elector: true });
    const a = new FakeController('a', log, { onStop: 'waits-for-finish' });
    manager.add(a);
    const exit = manager.run(stop.signal);
    await flush();
    stop.abort();
    await flush();
    store.failing = true;
    await advance(clock, 12_100);
    expect(await exit).to.equal('lost-lease');
    expect(log).to.deep.equal([
      'informers started',
      'start a',
      'stop a',
      'abort a',
      'aborted a',
      'informers stopped',
    ]);
  });

  it('a controller that throws is reported by /healthz and the others keep running', async () => {
    const { log, manager, stop } = setup();
    const broken = new FakeController('broken', log, { failWith: new Error('bug') });
    const fine = new FakeController('fine', log);
    manager.add(broken);
    manager.add(fine);
    const exit = manager.run(stop.signal);
    await flush();
    expect(manager.healthChecks()).to.deep.equal([
      { name: 'controller-broken', error: 'bug' },
      { name: 'controller-fine' },
    ]);
    expect(fine.stopSignal?.aborted).to.equal(false);
    stop.abort();
    expect(await exit).to.equal('stopped');
    expect(log).to.include('stopped fine');
  });

  it('controllers that do not return after being aborted are left behind after the grace period', async () => {
    const { clock, log, manager, stop } = setup({ shutdownTimeoutMs: 1_000 });
    manager.add(new FakeController('stuck', log, { onStop: 'ignores', onAbort: 'ignores' }));
    let resolved = false;
    const exit = manager.run(stop.signal).then((e) => {
      resolved = true;
      return e;
    });
    await flush();
    stop.abort();
    await flush();
    await advance(clock, 1_000 + ABORT_GRACE_MS - 100);
    expect(resolved).to.equal(false);
    await advance(clock, 100);
    expect(await exit).to.equal('stopped');
    expect(log.slice(-2)).to.deep.equal(['informers stopped', 'before release (lease holder none)']);
  });

  it('a standby that is stopped before it leads starts nothing', async () => {
    const { log, store, manager, stop, clock } = setup({ elector: true });
    store.setHolder('other', clock.now());
    manager.add(new FakeController('a', log));
    const exit = manager.run(stop.signal);
    await flush();
    expect(manager.readyChecks()).to.deep.equal([{ name: 'leader-election' }]);
    stop.abort();
    expect(await exit).to.equal('stopped');
    expect(log).to.deep.equal([]);
  });

  it('a last step before the release that hangs is given up after the grace period, and the Lease is released', async () => {
    const { clock, log, store, manager, stop } = setup({ elector: true, beforeReleaseHangs: true });
    manager.add(new FakeController('a', log));
    const exit = manager.run(stop.signal);
    await flush();
    stop.abort();
    await flush();
    await advance(clock, ABORT_GRACE_MS - 100);
    expect(store.record?.holderIdentity).to.equal('me');
    await advance(clock, 100);
    expect(await exit).to.equal('stopped');
    expect(store.record?.holderIdentity).to.equal('');
  });
});
