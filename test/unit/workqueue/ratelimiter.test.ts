import { expect } from 'chai';
import { FakeClock } from '../../../shared/clock.ts';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../../shared/workqueue/index.ts';
import type { RateLimiter } from '../../../shared/workqueue/index.ts';

/** A limiter that returns fixed delays and records calls. */
class FixedLimiter implements RateLimiter<string> {
  readonly delay: number;
  readonly requeues: number;
  forgotten: string[] = [];
  calls = 0;

  constructor(delay: number, requeues: number) {
    this.delay = delay;
    this.requeues = requeues;
  }

  when(): number {
    this.calls++;
    return this.delay;
  }

  forget(item: string): void {
    this.forgotten.push(item);
  }

  numRequeues(): number {
    return this.requeues;
  }
}

describe('ItemExponentialFailureRateLimiter', () => {
  it('per-item backoff doubles from the base and is capped', () => {
    const limiter = new ItemExponentialFailureRateLimiter<string>(5, 100);
    const delays = Array.from({ length: 7 }, () => limiter.when('a'));
    expect(delays).to.deep.equal([5, 10, 20, 40, 80, 100, 100]);
    // Items back off independently.
    expect(limiter.when('b')).to.equal(5);
  });

  it('forget resets backoff to the base', () => {
    const limiter = new ItemExponentialFailureRateLimiter<string>(5, 1000);
    limiter.when('a');
    limiter.when('a');
    limiter.forget('a');
    expect(limiter.numRequeues('a')).to.equal(0);
    expect(limiter.when('a')).to.equal(5);
  });

  it('numRequeues counts failures', () => {
    const limiter = new ItemExponentialFailureRateLimiter<string>(1, 10);
    expect(limiter.numRequeues('a')).to.equal(0);
    limiter.when('a');
    limiter.when('a');
    limiter.when('a');
    expect(limiter.numRequeues('a')).to.equal(3);
    expect(limiter.numRequeues('b')).to.equal(0);
  });

  it('stays at the cap after thousands of failures instead of overflowing', () => {
    const limiter = new ItemExponentialFailureRateLimiter<string>(5, 1000_000);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = limiter.when('a');
    expect(last).to.equal(1000_000);
    const zeroBase = new ItemExponentialFailureRateLimiter<string>(0, 1000);
    for (let i = 0; i < 2000; i++) last = zeroBase.when('a');
    expect(last).to.equal(0);
  });
});

describe('BucketRateLimiter', () => {
  it('token bucket allows burst then spaces items at 1/qps', () => {
    const clock = new FakeClock(0);
    const limiter = new BucketRateLimiter<string>(10, 3, clock);
    // The burst goes at once, whatever the items.
    expect([limiter.when('a'), limiter.when('b'), limiter.when('c')]).to.deep.equal([0, 0, 0]);
    // Then each reservation waits one more 100 ms slot.
    expect(limiter.when('d')).to.be.closeTo(100, 1e-9);
    expect(limiter.when('e')).to.be.closeTo(200, 1e-9);
    // Time pays the debt back: 250 ms later the next slot is 50 ms away.
    clock.step(250);
    expect(limiter.when('f')).to.be.closeTo(50, 1e-9);
  });

  it('refills up to burst and no further', () => {
    const clock = new FakeClock(0);
    const limiter = new BucketRateLimiter<string>(10, 2, clock);
    limiter.when('a');
    limiter.when('a');
    clock.step(60_000);
    expect([limiter.when('a'), limiter.when('a')]).to.deep.equal([0, 0]);
    expect(limiter.when('a')).to.be.closeTo(100, 1e-9);
  });

  it('does not track items', () => {
    const limiter = new BucketRateLimiter<string>(1, 1, new FakeClock(0));
    limiter.when('a');
    limiter.when('a');
    expect(limiter.numRequeues('a')).to.equal(0);
  });

  it('rejects a non-positive rate or burst', () => {
    expect(() => new BucketRateLimiter<string>(0, 1, new FakeClock(0))).to.throw(RangeError);
    expect(() => new BucketRateLimiter<string>(1, 0, new FakeClock(0))).to.throw(RangeError);
  });
});

describe('MaxOfRateLimiter', () => {
  it('max-of returns the larger delay of its limiters', () => {
    const small = new FixedLimiter(10, 1);
    const large = new FixedLimiter(300, 4);
    const limiter = new MaxOfRateLimiter<string>(small, large);
    expect(limiter.when('a')).to.equal(300);
    expect(new MaxOfRateLimiter<string>(large, small).when('a')).to.equal(300);
    // Every limiter records the retry.
    expect(small.calls).to.equal(2);
    expect(large.calls).to.equal(2);
  });

  it('forgets in every limiter and reports the most requeues', () => {
    const a = new FixedLimiter(0, 2);
    const b = new FixedLimiter(0, 5);
    const limiter = new MaxOfRateLimiter<string>(a, b);
    expect(limiter.numRequeues('x')).to.equal(5);
    limiter.forget('x');
    expect(a.forgotten).to.deep.equal(['x']);
    expect(b.forgotten).to.deep.equal(['x']);
  });
});

describe('defaultControllerRateLimiter', () => {
  it('backs off per item from 5 ms and spaces a storm beyond 100 at 10 per second', () => {
    const limiter = defaultControllerRateLimiter<string>(new FakeClock(0));
    expect(limiter.when('a')).to.equal(5);
    expect(limiter.when('a')).to.equal(10);
    for (let i = 0; i < 98; i++) limiter.when(`k${i}`);
    // Burst of 100 spent: the bucket now dominates a fresh item's 5 ms.
    expect(limiter.when('fresh')).to.be.closeTo(100, 1e-9);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).to.equal(0);
  });

  it('caps per-item backoff at 1000 s', () => {
    const clock = new FakeClock(0);
    const limiter = defaultControllerRateLimiter<string>(clock);
    let last = 0;
    for (let i = 0; i < 40; i++) {
      last = limiter.when('a');
      clock.step(1000_000); // keep the bucket full
    }
    expect(last).to.equal(1000_000);
  });
});
