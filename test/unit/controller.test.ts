import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { Controller } from '../../shared/controller/controller.ts';
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
