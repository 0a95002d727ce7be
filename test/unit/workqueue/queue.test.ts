import { expect } from 'chai';
import { FakeClock } from '../../../shared/clock.ts';
import { WorkQueue } from '../../../shared/workqueue/index.ts';
import type { WorkSource } from '../../../shared/workqueue/index.ts';

/** Lets pending promise callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function newQueue(): WorkQueue<string> {
  return new WorkQueue<string>({ clock: new FakeClock(0) });
}

describe('WorkQueue', () => {
  it('hands out items in the order they were added', async () => {
    const q = newQueue();
    q.add('a');
    q.add('b');
    q.add('c');
    expect([await q.get(), await q.get(), await q.get()]).to.deep.equal(['a', 'b', 'c']);
  });

  it('adds of a queued item collapse into one', async () => {
    const q = newQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    expect(q.len()).to.equal(2);
    expect(await q.get()).to.equal('a');
    expect(await q.get()).to.equal('b');
    expect(q.len()).to.equal(0);
  });

  it('an item re-added while processing runs once more after done', async () => {
    const q = newQueue();
    q.add('a');
    const item = await q.get();
    expect(item).to.equal('a');
    q.add('a');
    // Not handed out again while processing.
    expect(q.len()).to.equal(0);
    q.done('a');
    expect(q.len()).to.equal(1);
    expect(await q.get()).to.equal('a');
    q.done('a');
    expect(q.len()).to.equal(0);
  });

  it('an item re-added 3 times while processing runs exactly once more', async () => {
    const q = newQueue();
    q.add('a');
    await q.get();
    q.add('a');
    q.add('a');
    q.add('a');
    q.done('a');
    expect(q.len()).to.equal(1);
    expect(await q.get()).to.equal('a');
    q.done('a');
    expect(q.len()).to.equal(0);
  });

  it('never hands an item to a second consumer while the first is processing it', async () => {
    const q = newQueue();
    q.add('a');
    expect(await q.get()).to.equal('a');
    let second: string | undefined;
    void q.get().then((item) => (second = item));
    q.add('a');
    await settle();
    expect(second).to.equal(undefined);
    q.done('a');
    await settle();
    expect(second).to.equal('a');
  });

  it('a waiting get() resolves when an item is added', async () => {
    const q = newQueue();
    const pending = q.get();
    q.add('x');
    expect(await pending).to.equal('x');
  });

  it('serves waiting consumers in the order they called get()', async () => {
    const q = newQueue();
    const got: string[] = [];
    void q.get().then((item) => got.push(`first:${item}`));
    void q.get().then((item) => got.push(`second:${item}`));
    q.add('a');
    q.add('b');
    await settle();
    expect(got).to.deep.equal(['first:a', 'second:b']);
  });

  it('shutDown wakes waiting consumers', async () => {
    const q = newQueue();
    const waiting = [q.get(), q.get()];
    q.shutDown();
    expect(await Promise.all(waiting)).to.deep.equal([undefined, undefined]);
    expect(q.shuttingDown()).to.equal(true);
  });

  it('shutDown stops handing out queued items and ignores adds', async () => {
    const q = newQueue();
    q.add('a');
    q.shutDown();
    q.add('b');
    expect(await q.get()).to.equal(undefined);
    expect(q.len()).to.equal(1);
  });

  it('shutDownWithDrain waits for in-flight items and then get() returns undefined', async () => {
    const q = newQueue();
    q.add('a');
    q.add('b');
    expect(await q.get()).to.equal('a');
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => (drained = true));
    q.add('c'); // rejected: the queue is shutting down
    // Items already queued still go out during a drain.
    expect(await q.get()).to.equal('b');
    q.done('a');
    await settle();
    expect(drained).to.equal(false);
    q.done('b');
    await drain;
    expect(drained).to.equal(true);
    expect(await q.get()).to.equal(undefined);
  });

  it('shutDownWithDrain hands out a re-add made before shutdown once its processing is done', async () => {
    const q = newQueue();
    q.add('a');
    await q.get();
    q.add('a');
    const drain = q.shutDownWithDrain();
    const next = q.get(); // nothing queued, but 'a' may come back
    q.done('a');
    expect(await next).to.equal('a');
    const last = q.get();
    q.done('a');
    expect(await last).to.equal(undefined);
    await drain;
  });

  it('shutDownWithDrain resolves at once when nothing is queued or processing', async () => {
    const q = newQueue();
    await q.shutDownWithDrain();
    expect(await q.get()).to.equal(undefined);
  });

  it('shutDown during a drain stops it once in-flight items are done', async () => {
    const q = newQueue();
    q.add('a');
    q.add('b');
    await q.get();
    const drain = q.shutDownWithDrain();
    q.shutDown();
    expect(await q.get()).to.equal(undefined);
    q.done('a');
    await drain;
  });

  it('done for an item that is not processing is a no-op', async () => {
    const q = newQueue();
    q.add('a');
    q.done('a');
    expect(q.len()).to.equal(1);
    expect(await q.get()).to.equal('a');
  });

  it('accepts any non-nullable item type and is a WorkSource of it (compile-checked)', async () => {
    const q = new WorkQueue<{ id: number }>({ clock: new FakeClock(0) });
    const item = { id: 1 };
    q.add(item);
    q.add({ id: 1 }); // a different object: compared by identity
    const source: WorkSource<{ id: number }> = q;
    const got: { id: number } | undefined = await source.get();
    expect(got).to.equal(item);
    expect(q.len()).to.equal(1);
    // @ts-expect-error undefined is what get() returns on shutdown, so it cannot be an item.
    new WorkQueue<string | undefined>();
    // @ts-expect-error items of a string queue are strings.
    new WorkQueue<string>().add(1);
  });
});
