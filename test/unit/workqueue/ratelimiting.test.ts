import { expect } from 'chai';
import { Registry } from 'prom-client';
import { FakeClock } from '../../../shared/clock.ts';
import { ItemExponentialFailureRateLimiter, RateLimitingQueue } from '../../../shared/workqueue/index.ts';

async function retries(registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric('workqueue_retries_total');
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => v.labels.name === 'q')?.value ?? 0;
}

describe('RateLimitingQueue', () => {
  it('addRateLimited delays by the limiter and counts a retry', async () => {
    const clock = new FakeClock(0);
    const registry = new Registry();
    const q = new RateLimitingQueue<string>({
      clock,
      rateLimiter: new ItemExponentialFailureRateLimiter<string>(100, 10_000),
      metrics: { registry, name: 'q', controller: 'c' },
    });
    q.addRateLimited('a');
    expect(await retries(registry)).to.equal(1);
    expect(q.numRequeues('a')).to.equal(1);
    clock.step(99);
    expect(q.len()).to.equal(0);
    clock.step(1);
    expect(q.len()).to.equal(1);
    expect(await q.get()).to.equal('a');
    q.done('a');

    // The second failure waits twice as long.
    q.addRateLimited('a');
    clock.step(199);
    expect(q.len()).to.equal(0);
    clock.step(1);
    expect(q.len()).to.equal(1);
    expect(await retries(registry)).to.equal(2);
    expect(await registry.getSingleMetricAsString('workqueue_retries_total')).to.contain(
      'workqueue_retries_total{name="q",controller="c"} 2',
    );
  });

  it('forget resets the backoff of an item', () => {
    const clock = new FakeClock(0);
    const q = new RateLimitingQueue<string>({
      clock,
      rateLimiter: new ItemExponentialFailureRateLimiter<string>(100, 10_000),
    });
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.numRequeues('a')).to.equal(2);
    q.forget('a');
    expect(q.numRequeues('a')).to.equal(0);
  });

  it('uses the default controller rate limiter when none is given', () => {
    const clock = new FakeClock(0);
    const q = new RateLimitingQueue<string>({ clock });
    q.addRateLimited('a');
    clock.step(4);
    expect(q.len()).to.equal(0);
    clock.step(1);
    expect(q.len()).to.equal(1);
  });

  it('ignores addRateLimited after shutdown', () => {
    const clock = new FakeClock(0);
    const q = new RateLimitingQueue<string>({ clock });
    q.shutDown();
    q.addRateLimited('a');
    expect(q.numRequeues('a')).to.equal(0);
    expect(clock.pendingTimers()).to.equal(0);
  });
});
