import { expect } from 'chai';
import { FakeClock } from '../../../shared/clock.ts';
import { WorkQueue, runWorkers } from '../../../shared/workqueue/index.ts';

/** Lets pending promise callbacks and I/O callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Yields to the microtask queue `n` times. */
async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** A deterministic pseudo-random sequence (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function newQueue(): WorkQueue<string> {
  return new WorkQueue<string>({ clock: new FakeClock(0) });
}

describe('runWorkers', () => {
  it('no key is processed by two workers at once under 10,000 adds over 100 keys with 8 workers', async () => {
    const q = newQueue();
    const rand = random(42);
    const inFlight = new Map<string, number>();
    let maxPerKey = 0;
    let running = 0;
    let maxRunning = 0;
    let seq = 0;
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();

    const workers = runWorkers(q, 8, async (key) => {
      lastStart.set(key, ++seq);
      const n = (inFlight.get(key) ?? 0) + 1;
      inFlight.set(key, n);
      maxPerKey = Math.max(maxPerKey, n);
      maxRunning = Math.max(maxRunning, ++running);
      await ticks(1 + Math.floor(rand() * 5));
      inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
      running--;
    });

    for (let i = 0; i < 10_000; i++) {
      const key = `ns/k${Math.floor(rand() * 100)}`;
      q.add(key);
      lastAdd.set(key, ++seq);
      if (rand() < 0.3) await ticks(1 + Math.floor(rand() * 3));
    }
    await q.shutDownWithDrain();
    await workers;

    expect(maxPerKey).to.equal(1);
    expect(maxRunning).to.be.at.most(8);
    expect(maxRunning).to.be.greaterThan(1);
    expect(lastAdd.size).to.equal(100);
    for (const [key, added] of lastAdd) {
      expect(lastStart.get(key) ?? 0, key).to.be.greaterThan(added);
    }
    expect(q.len()).to.equal(0);
  });

  it('runs at most the given number of handlers at once', async () => {
    const q = newQueue();
    const release: Array<() => void> = [];
    let running = 0;
    const workers = runWorkers(q, 2, async () => {
      running++;
      await new Promise<void>((resolve) => release.push(resolve));
      running--;
    });
    for (const key of ['a', 'b', 'c', 'd']) q.add(key);
    await settle();
    expect(running).to.equal(2);
    // Only items with a free slot were taken: the rest are still queued.
    expect(q.len()).to.equal(2);
    release.shift()?.();
    await settle();
    expect(running).to.equal(2);
    expect(q.len()).to.equal(1);
    q.shutDown();
    while (release.length > 0) {
      release.shift()?.();
      await settle();
    }
    await workers;
    expect(running).to.equal(0);
  });

  it('a handler that throws does not stop the loop, and its item is done', async () => {
    const q = newQueue();
    const errors: Array<[unknown, string]> = [];
    const handled: string[] = [];
    const workers = runWorkers(
      q,
      1,
      async (key) => {
        await ticks(1);
        if (key === 'bad') throw new Error('boom');
        handled.push(key);
      },
      { onError: (err, key) => errors.push([err, key]) },
    );
    q.add('bad');
    q.add('good');
    await settle();
    expect(handled).to.deep.equal(['good']);
    expect(errors.map(([, key]) => key)).to.deep.equal(['bad']);
    // 'bad' was marked done: adding it again hands it out again.
    q.add('bad');
    await settle();
    expect(errors).to.have.length(2);
    q.shutDown();
    await workers;
  });

  it('resolves after shutdown once in-flight handlers finish', async () => {
    const q = newQueue();
    let finish = (): void => {};
    let finished = false;
    const workers = runWorkers(q, 4, async () => {
      await new Promise<void>((resolve) => (finish = resolve));
      finished = true;
    });
    let stopped = false;
    void workers.then(() => (stopped = true));
    q.add('a');
    await settle();
    q.shutDown();
    await settle();
    expect(stopped).to.equal(false);
    finish();
    await workers;
    expect(finished).to.equal(true);
  });

  it('rejects a concurrency below 1', async () => {
    let error: unknown;
    await runWorkers(newQueue(), 0, () => Promise.resolve()).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(RangeError);
  });

  it('handlers that finish without I/O let the event loop go round once a turn has run 10 ms', async () => {
    const q = newQueue();
    const order: string[] = [];
    /** Keeps the loop busy for `ms` of real time, as a sync of a large object does. */
    const spin = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    for (let i = 0; i < 10; i++) q.add(`ns/k${i}`);
    const workers = runWorkers(
      q,
      1,
      (key) => {
        order.push(key);
        spin(4);
        return Promise.resolve();
      },
      { yieldAfterMs: 10 },
    );
    setImmediate(() => order.push('event loop'));
    await q.shutDownWithDrain();
    await workers;
    const turn = order.indexOf('event loop');
    // Three or four 4 ms handlers fill a 10 ms turn; then the loop goes round before the rest.
    expect(turn).to.be.within(3, 4);
    expect(order.filter((k) => k !== 'event loop')).to.deep.equal(
      Array.from({ length: 10 }, (_, i) => `ns/k${i}`),
    );
  });
});
