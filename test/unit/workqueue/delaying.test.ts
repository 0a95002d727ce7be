import { expect } from 'chai';
import { FakeClock } from '../../../shared/clock.ts';
import { DelayingQueue } from '../../../shared/workqueue/index.ts';

function newQueue(): { q: DelayingQueue<string>; clock: FakeClock } {
  const clock = new FakeClock(0);
  return { q: new DelayingQueue<string>({ clock }), clock };
}

describe('DelayingQueue', () => {
  it('a delayed item becomes available only after the clock passes its deadline', async () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 100);
    expect(q.len()).to.equal(0);
    clock.step(99);
    expect(q.len()).to.equal(0);
    clock.step(1);
    expect(q.len()).to.equal(1);
    expect(await q.get()).to.equal('a');
  });

  it('a waiting get() receives a delayed item when its deadline passes', async () => {
    const { q, clock } = newQueue();
    const pending = q.get();
    q.addAfter('a', 10);
    clock.step(10);
    expect(await pending).to.equal('a');
  });

  it('addAfter with zero delay adds at once', () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 0);
    q.addAfter('b', -5);
    expect(q.len()).to.equal(2);
    expect(clock.pendingTimers()).to.equal(0);
  });

  it('addAfter with zero delay cancels a pending wait for the item', async () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 100);
    q.addAfter('a', 0);
    expect(await q.get()).to.equal('a');
    q.done('a');
    clock.step(100);
    expect(q.len()).to.equal(0);
    expect(q.waitingLen()).to.equal(0);
  });

  it('addAfter keeps the earlier deadline when the later one comes second', () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 50);
    q.addAfter('a', 200);
    expect(q.waitingLen()).to.equal(1);
    clock.step(50);
    expect(q.len()).to.equal(1);
    expect(q.waitingLen()).to.equal(0);
  });

  it('addAfter keeps the earlier deadline when the earlier one comes second', async () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 200);
    q.addAfter('a', 50);
    clock.step(50);
    expect(q.len()).to.equal(1);
    expect(await q.get()).to.equal('a');
    q.done('a');
    // The superseded later deadline does not add the item again.
    clock.step(500);
    expect(q.len()).to.equal(0);
  });

  it('adds delayed items in deadline order, ties in the order they were set', async () => {
    const { q, clock } = newQueue();
    q.addAfter('c', 30);
    q.addAfter('a', 10);
    q.addAfter('b', 30);
    q.addAfter('d', 20);
    clock.step(30);
    const got = [await q.get(), await q.get(), await q.get(), await q.get()];
    expect(got).to.deep.equal(['a', 'd', 'c', 'b']);
  });

  it('keeps a single timer for the earliest deadline', () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 100);
    q.addAfter('b', 50);
    q.addAfter('c', 200);
    expect(clock.pendingTimers()).to.equal(1);
    clock.step(50);
    expect(q.len()).to.equal(1);
    expect(clock.pendingTimers()).to.equal(1);
    clock.step(150);
    expect(q.len()).to.equal(3);
    expect(clock.pendingTimers()).to.equal(0);
  });

  it('a delayed add collapses with the same item already queued', () => {
    const { q, clock } = newQueue();
    q.add('a');
    q.addAfter('a', 10);
    clock.step(10);
    expect(q.len()).to.equal(1);
  });

  it('shutdown cancels timers and drops waiting items', async () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 10);
    q.shutDown();
    expect(clock.pendingTimers()).to.equal(0);
    q.addAfter('b', 10);
    clock.step(100);
    expect(q.len()).to.equal(0);
    expect(await q.get()).to.equal(undefined);
  });

  it('shutDownWithDrain cancels timers too', async () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 10);
    await q.shutDownWithDrain();
    expect(clock.pendingTimers()).to.equal(0);
  });
});
