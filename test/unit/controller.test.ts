import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { Registry } from 'prom-client';
import { Controller, type ControllerOptions } from '../../shared/controller/controller.ts';
import { type Result, TerminalError } from '../../shared/controller/reconciler.ts';
import { ItemExponentialFailureRateLimiter } from '../../shared/workqueue/ratelimiter.ts';
import { nopLogger } from '../../shared/log.ts';

/** Lets pending promise callbacks and I/O callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A controller whose reconcile of `key` takes `costMs` of the fake clock, of which it keeps the
 * event loop busy for `busyMs` (all of it unless told).
 */
function slowController(
  clock: FakeClock,
  costMs: number,
  busyMs = costMs,
): { controller: Controller; runs: number[] } {
  const runs: number[] = [];
  let busy = 0;
  const controller = new Controller({
    name: 'spacing-test',
    workers: 1,
    log: nopLogger,
    clock,
    busyTime: () => busy,
    reconciler: {
      reconcile: () => {
        runs.push(clock.now());
        clock.step(costMs);
        busy += busyMs;
        return Promise.resolve();
      },
    },
  });
  return { controller, runs };
}

describe('Controller spacing of slow keys', () => {
  let stop: AbortController;
  beforeEach(() => (stop = new AbortController()));
  afterEach(() => stop.abort());

  it('a key whose reconcile took 50 ms is not reconciled again until 50 ms after it ended', async () => {
    const clock = new FakeClock(1_000);
    const { controller, runs } = slowController(clock, 50);
    void controller.start(stop.signal);
    controller.enqueue('n/big');
    await settle();
    expect(runs).to.deep.equal([1_000]);
    controller.enqueue('n/big');
    await settle();
    expect(runs).to.have.length(1);
    clock.step(49);
    await settle();
    expect(runs).to.have.length(1);
    clock.step(1);
    await settle();
    expect(runs).to.deep.equal([1_000, 1_100]);
  });

  it('a key that was slow long ago is reconciled at once', async () => {
    const clock = new FakeClock(1_000);
    const { controller, runs } = slowController(clock, 120);
    void controller.start(stop.signal);
    controller.enqueue('n/svc');
    await settle();
    clock.step(60_000);
    controller.enqueue('n/svc');
    await settle();
    expect(runs).to.deep.equal([1_000, 61_120]);
  });

  it('a key whose reconcile took 200 ms but kept the loop busy for 5 ms is not spaced', async () => {
    const clock = new FakeClock(0);
    const { controller, runs } = slowController(clock, 200, 5);
    void controller.start(stop.signal);
    for (let i = 0; i < 3; i++) {
      controller.enqueue('n/waits-for-api');
      await settle();
    }
    expect(runs).to.deep.equal([0, 200, 400]);
  });

  it('a busy time above the reconcile duration counts as the duration', async () => {
    const clock = new FakeClock(0);
    const { controller, runs } = slowController(clock, 30, 500);
    void controller.start(stop.signal);
    controller.enqueue('n/svc');
    await settle();
    controller.enqueue('n/svc');
    clock.step(29);
    await settle();
    expect(runs).to.deep.equal([0]);
    clock.step(1);
    await settle();
    expect(runs).to.deep.equal([0, 60]);
  });

  it('a fast key is never spaced', async () => {
    const clock = new FakeClock(0);
    const { controller, runs } = slowController(clock, 5);
    void controller.start(stop.signal);
    for (let i = 0; i < 3; i++) {
      controller.enqueue('n/small');
      await settle();
    }
    expect(runs).to.deep.equal([0, 5, 10]);
  });
});

describe('Controller batched enqueues (pod events)', () => {
  let stop: AbortController;
  beforeEach(() => (stop = new AbortController()));
  afterEach(() => stop.abort());

  /** A controller recording (key, time) of each reconcile, adaptive window at most 100 ms. */
  function batching(clock: FakeClock): { controller: Controller; runs: [string, number][] } {
    const runs: [string, number][] = [];
    const controller = new Controller({
      name: 'batch-test',
      workers: 1,
      log: nopLogger,
      clock,
      busyTime: () => 0,
      adaptiveBatchMaxMs: 100,
      reconciler: {
        reconcile: ({ namespace, name }) => {
          runs.push([`${namespace}/${name}`, clock.now()]);
          return Promise.resolve();
        },
      },
    });
    return { controller, runs };
  }

  it('a lone pod event is synced at once', async () => {
    const clock = new FakeClock(0);
    const { controller, runs } = batching(clock);
    void controller.start(stop.signal);
    controller.enqueueBatched('n/a', 0);
    await settle();
    expect(runs).to.deep.equal([['n/a', 0]]);
  });

  it('after bursts of pod events per Service, the next burst is one sync, 50 ms after its first event', async () => {
    const clock = new FakeClock(0);
    const { controller, runs } = batching(clock);
    void controller.start(stop.signal);
    // Ten Services, five events each 10 ms apart: a window of 50 ms would have collapsed each.
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 5; i++) {
        controller.enqueueBatched(`n/s${s}`, 0);
        await settle();
        clock.step(10);
      }
    }
    clock.step(200);
    await settle();
    runs.length = 0;
    const start = clock.now();
    for (let i = 0; i < 5; i++) {
      controller.enqueueBatched('n/next', 0);
      await settle();
      clock.step(10);
    }
    await settle();
    expect(runs).to.deep.equal([['n/next', start + 50]]);
  });

  it('a fixed batch period above 0 wins over the adaptive window', async () => {
    const clock = new FakeClock(0);
    const { controller, runs } = batching(clock);
    void controller.start(stop.signal);
    controller.enqueueBatched('n/a', 300);
    clock.step(299);
    await settle();
    expect(runs).to.deep.equal([]);
    clock.step(1);
    await settle();
    expect(runs).to.deep.equal([['n/a', 300]]);
  });
});

/** A controller whose reconcile is the given function; results by key are recorded by the caller. */
function controllerWith(
  clock: FakeClock,
  reconcile: (key: string, signal: AbortSignal) => Promise<Result | void>,
  opts: Partial<ControllerOptions> = {},
): { controller: Controller; registry: Registry; dropped: string[] } {
  const registry = new Registry();
  const dropped: string[] = [];
  const controller = new Controller({
    name: 'paths',
    workers: 2,
    log: nopLogger,
    clock,
    registry,
    busyTime: () => 0,
    // Retries after 10, 20, 40 ms: no token bucket in the way.
    rateLimiter: new ItemExponentialFailureRateLimiter<string>(10, 1_000),
    maxRetries: 3,
    onDropped: (key) => dropped.push(key),
    reconciler: { reconcile: ({ namespace, name }, signal) => reconcile(`${namespace}/${name}`, signal) },
    ...opts,
  });
  return { controller, registry, dropped };
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const values = (m?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('Controller outcomes of a reconcile', () => {
  let stop: AbortController;
  beforeEach(() => (stop = new AbortController()));
  afterEach(() => stop.abort());

  it('an error is retried with the rate limiter backoff: after 10, 20, 40 ms', async () => {
    const clock = new FakeClock(0);
    const runs: number[] = [];
    const { controller } = controllerWith(clock, () => {
      runs.push(clock.now());
      return Promise.reject(new Error('api down'));
    });
    void controller.start(stop.signal);
    controller.enqueue('n/a');
    await settle();
    for (const ms of [9, 1, 19, 1, 39, 1]) {
      clock.step(ms);
      await settle();
    }
    expect(runs).to.deep.equal([0, 10, 30, 70]);
  });

  it('a key that failed maxRetries + 1 times is dropped, counted, and tried again after the long delay with a fresh backoff', async () => {
    const clock = new FakeClock(0);
    const runs: number[] = [];
    let failing = true;
    const { controller, registry, dropped } = controllerWith(
      clock,
      () => {
        runs.push(clock.now());
        return failing ? Promise.reject(new Error('api down')) : Promise.resolve();
      },
      { droppedRetryMs: 300_000 },
    );
    void controller.start(stop.signal);
    controller.enqueue('n/a');
    await settle();
    for (const ms of [10, 20, 40]) {
      clock.step(ms);
      await settle();
    }
    expect(runs).to.deep.equal([0, 10, 30, 70]);
    expect(dropped).to.deep.equal(['n/a']);
    expect(
      await metric(registry, 'service_controller_manager_reconcile_dropped_total', { reason: 'max_retries' }),
    ).to.equal(1);
    expect(controller.unfinished(), 'the dropped key waits for its long retry').to.equal(1);
    clock.step(299_999);
    await settle();
    expect(runs).to.have.length(4);
    failing = false;
    clock.step(1);
    await settle();
    expect(runs).to.deep.equal([0, 10, 30, 70, 300_070]);
    expect(controller.unfinished()).to.equal(0);
  });

  it('a TerminalError is dropped at once and for good, and counted', async () => {
    const clock = new FakeClock(0);
    let runs = 0;
    const { controller, registry, dropped } = controllerWith(clock, () => {
      runs++;
      return Promise.reject(new TerminalError('bad spec'));
    });
    void controller.start(stop.signal);
    controller.enqueue('n/a');
    await settle();
    clock.step(3_600_000);
    await settle();
    expect(runs).to.equal(1);
    expect(dropped).to.deep.equal(['n/a']);
    expect(
      await metric(registry, 'controller_runtime_reconcile_total', { result: 'terminal_error' }),
    ).to.equal(1);
    expect(
      await metric(registry, 'service_controller_manager_reconcile_dropped_total', {
        reason: 'terminal_error',
      }),
    ).to.equal(1);
    expect(controller.unfinished()).to.equal(0);
  });

  it('requeueAfter runs the key again after that delay, and forgets its backoff', async () => {
    const clock = new FakeClock(0);
    const runs: number[] = [];
    const results: (Result | Error)[] = [new Error('once'), { requeueAfterMs: 500 }, new Error('again')];
    const { controller } = controllerWith(clock, () => {
      runs.push(clock.now());
      const next = results.shift();
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    });
    void controller.start(stop.signal);
    controller.enqueue('n/a');
    await settle();
    clock.step(10);
    await settle();
    clock.step(500);
    await settle();
    // The error after the requeue backs off from the start (10 ms), not from where it was (20 ms).
    clock.step(10);
    await settle();
    expect(runs).to.deep.equal([0, 10, 510, 520]);
  });

  it('stop takes no new key and waits for the in-flight reconcile, whose signal is not aborted', async () => {
    const clock = new FakeClock(0);
    let finish: (() => void) | undefined;
    const started: string[] = [];
    let seen: AbortSignal | undefined;
    const { controller } = controllerWith(
      clock,
      (key, signal) => {
        started.push(key);
        seen = signal;
        return new Promise<void>((resolve) => (finish = resolve));
      },
      { workers: 1 },
    );
    const done = controller.start(stop.signal);
    controller.enqueue('n/a');
    controller.enqueue('n/b');
    await settle();
    stop.abort();
    let stopped = false;
    void done.then(() => (stopped = true));
    await settle();
    expect(stopped, 'waits for the in-flight reconcile').to.equal(false);
    expect(seen?.aborted).to.equal(false);
    finish!();
    await settle();
    expect(stopped).to.equal(true);
    expect(started, 'the queued key is left for the next leader').to.deep.equal(['n/a']);
  });

  it('abort aborts the signal of every in-flight reconcile and returns when they end', async () => {
    const clock = new FakeClock(0);
    const signals: AbortSignal[] = [];
    const { controller } = controllerWith(clock, (_key, signal) => {
      signals.push(signal);
      return new Promise<void>((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error)),
      );
    });
    const abort = new AbortController();
    const done = controller.start(stop.signal, abort.signal);
    controller.enqueue('n/a');
    controller.enqueue('n/b');
    await settle();
    expect(signals).to.have.length(2);
    abort.abort(new Error('lease lost'));
    await done;
    expect(signals.every((s) => s.aborted)).to.equal(true);
    expect(controller.unfinished()).to.equal(0);
  });

  it('unfinished counts queued, delayed and in-flight keys at one instant', async () => {
    const clock = new FakeClock(0);
    let finish: (() => void) | undefined;
    const { controller } = controllerWith(clock, () => new Promise<void>((resolve) => (finish = resolve)), {
      workers: 1,
    });
    void controller.start(stop.signal);
    controller.enqueue('n/in-flight');
    await settle();
    controller.enqueue('n/queued');
    controller.enqueueAfter('n/delayed', 1_000);
    expect(controller.unfinished()).to.equal(3);
    finish!();
    await settle();
    finish!();
    await settle();
    expect(controller.unfinished()).to.equal(1);
    clock.step(1_000);
    await settle();
    finish!();
    await settle();
    expect(controller.unfinished()).to.equal(0);
  });
});
