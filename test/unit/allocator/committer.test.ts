import { expect } from 'chai';
import {
  type CommitInfo,
  MapUnavailableError,
  StoredRangeAllocator,
  type Transaction,
} from '../../../shared/allocator/committer.ts';
import { IPRange } from '../../../shared/allocator/ranges.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';
import { nopLogger } from '../../../shared/log.ts';
import { MemoryRangeAllocationStore, mapObject, storedValues } from './memorystore.ts';

const NAME = 'serviceips-ipv4';
const RANGE = new IPRange('10.0.0.0/24');

interface World {
  store: MemoryRangeAllocationStore;
  clock: FakeClock;
  allocator: StoredRangeAllocator<string>;
  commits: CommitInfo[];
}

/**
 * A store holding the map with `values` (`'missing'`: no map), and an allocator over it that
 * always starts its scan at 0.
 */
function world(values: string[] | 'missing' = []): World {
  const store = new MemoryRangeAllocationStore();
  if (values !== 'missing') store.put(mapObject(NAME, RANGE, values));
  const clock = new FakeClock(0);
  const commits: CommitInfo[] = [];
  const allocator = new StoredRangeAllocator<string>({
    name: NAME,
    range: RANGE,
    store,
    clock,
    log: nopLogger,
    random: () => 0,
    onCommit: (info) => commits.push(info),
  });
  return { store, clock, allocator, commits };
}

/** Lets every queued promise callback and immediate run. No I/O. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Flushes until `cond` holds; fails the test when it never does. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (cond()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

interface Tracked<T> {
  promise: Promise<T>;
  settled(): boolean;
}

function track<T>(promise: Promise<T>): Tracked<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise, settled: () => done };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const allocateNext = (txn: Transaction<string>): string | undefined => txn.allocateNext();

describe('StoredRangeAllocator', () => {
  describe('group commit', () => {
    it('50 concurrent allocateNext runs cost 2 writes: the first alone, the other 49 in the next batch', async () => {
      const { store, allocator, commits } = world();
      const results = await Promise.all(Array.from({ length: 50 }, () => allocator.run(allocateNext)));
      expect(store.replaceCalls).to.equal(2);
      expect(allocator.writes).to.equal(2);
      expect(allocator.conflicts).to.equal(0);
      expect(commits.map((c) => c.operations)).to.deep.equal([1, 49]);
      expect(new Set(results).size).to.equal(50);
      expect(results).to.deep.equal(Array.from({ length: 50 }, (_, i) => `10.0.0.${17 + i}`));
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(results);
    });

    it('writes the used and free counts with the bitmap', async () => {
      const { store, allocator } = world();
      await Promise.all(Array.from({ length: 50 }, () => allocator.run(allocateNext)));
      const stored = store.stored(NAME);
      expect(stored?.range).to.equal('10.0.0.0/24');
      expect(stored?.size).to.equal(254);
      expect(stored?.used).to.equal(50);
      expect(stored?.free).to.equal(204);
      expect(stored?.percent).to.equal(19);
    });

    it('operations queued while a write is in flight go out together in the next write', async () => {
      const { store, allocator, commits } = world();
      const release = store.holdNextReplace();
      const first = track(allocator.run((txn) => txn.allocate('10.0.0.5')));
      await until(() => store.replaceCalls === 1, 'the first write is sent');
      const queued = [6, 7, 8].map((n) => track(allocator.run((txn) => txn.allocate(`10.0.0.${n}`))));
      await flush();
      expect(store.replaceCalls).to.equal(1);
      expect(first.settled()).to.equal(false);
      expect(queued.map((q) => q.settled())).to.deep.equal([false, false, false]);
      release();
      expect(await first.promise).to.equal('allocated');
      expect(await Promise.all(queued.map((q) => q.promise))).to.deep.equal([
        'allocated',
        'allocated',
        'allocated',
      ]);
      expect(store.replaceCalls).to.equal(2);
      expect(commits.map((c) => c.operations)).to.deep.equal([1, 3]);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal([
        '10.0.0.5',
        '10.0.0.6',
        '10.0.0.7',
        '10.0.0.8',
      ]);
    });

    it('operations in one batch apply in arrival order, each seeing the ones before', async () => {
      const { store, allocator } = world();
      const release = store.holdNextReplace();
      const first = allocator.run((txn) => txn.allocate('10.0.0.40'));
      await until(() => store.replaceCalls === 1, 'the first write is sent');
      const a = allocator.run((txn) => txn.allocate('10.0.0.5'));
      const b = allocator.run((txn) => txn.allocate('10.0.0.5'));
      const c = allocator.run((txn) => [txn.release('10.0.0.5'), txn.has('10.0.0.5'), txn.used()] as const);
      release();
      expect(await first).to.equal('allocated');
      expect(await a).to.equal('allocated');
      expect(await b).to.equal('taken');
      expect(await c).to.deep.equal([true, false, 1]);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.40']);
    });

    it('resolves only once the write holding the result has succeeded', async () => {
      const { store, allocator } = world();
      const release = store.holdNextReplace();
      const run = track(allocator.run(allocateNext));
      await until(() => store.replaceCalls === 1, 'the write is sent');
      await flush();
      expect(run.settled()).to.equal(false);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal([]);
      release();
      expect(await run.promise).to.equal('10.0.0.17');
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.17']);
    });

    it('an operation that changes nothing writes nothing', async () => {
      const { store, allocator } = world(['10.0.0.5']);
      expect(await allocator.run((txn) => txn.allocate('10.0.0.5'))).to.equal('taken');
      expect(await allocator.run((txn) => txn.has('10.0.0.5'))).to.equal(true);
      expect(store.replaceCalls).to.equal(0);
      expect(allocator.writes).to.equal(0);
    });

    it('a later batch reuses the object last written and reads nothing', async () => {
      const { store, allocator } = world();
      await allocator.run(allocateNext);
      await allocator.run(allocateNext);
      expect(store.getCalls).to.equal(1);
      expect(store.replaceCalls).to.equal(2);
    });
  });

  describe('conflicts', () => {
    it('a 409 redoes the batch on a fresh read: a value the other writer took resolves taken', async () => {
      const { store, allocator } = world();
      const release = store.holdNextReplace();
      const run = allocator.run((txn) => txn.allocate('10.0.0.5'));
      await until(() => store.replaceCalls === 1, 'the write is sent');
      // Another replica allocates the same IP while our write is in flight.
      store.put(mapObject(NAME, RANGE, ['10.0.0.5']));
      release();
      expect(await run).to.equal('taken');
      expect(allocator.conflicts).to.equal(1);
      expect(allocator.writes).to.equal(0);
      expect(store.replaceCalls).to.equal(1);
      expect(store.getCalls).to.equal(2);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.5']);
    });

    it('after a 409 allocateNext picks another value than the one the other writer took', async () => {
      const { store, allocator } = world();
      const release = store.holdNextReplace();
      const run = allocator.run(allocateNext);
      await until(() => store.replaceCalls === 1, 'the write is sent');
      store.put(mapObject(NAME, RANGE, ['10.0.0.17']));
      release();
      expect(await run).to.equal('10.0.0.18');
      expect(allocator.conflicts).to.equal(1);
      expect(allocator.writes).to.equal(1);
      expect(store.replaceCalls).to.equal(2);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.17', '10.0.0.18']);
    });

    it('a 409 on a batch redoes every operation of it, keeping what the other writer wrote', async () => {
      const { store, allocator } = world();
      const releaseFirst = store.holdNextReplace();
      const first = allocator.run((txn) => txn.allocate('10.0.0.100'));
      await until(() => store.replaceCalls === 1, 'the first write is sent');
      const batch = [
        allocator.run((txn) => txn.allocate('10.0.0.5')),
        allocator.run((txn) => txn.allocate('10.0.0.6')),
        allocator.run(allocateNext),
      ];
      // The second write waits too: while it is in flight the other writer takes .6 and .17.
      const releaseSecond = store.holdNextReplace();
      releaseFirst();
      expect(await first).to.equal('allocated');
      await until(() => store.replaceCalls === 2, 'the batch is sent');
      store.put(mapObject(NAME, RANGE, ['10.0.0.100', '10.0.0.6', '10.0.0.17']));
      releaseSecond();
      expect(await Promise.all(batch)).to.deep.equal(['allocated', 'taken', '10.0.0.18']);
      expect(allocator.conflicts).to.equal(1);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal([
        '10.0.0.5',
        '10.0.0.6',
        '10.0.0.17',
        '10.0.0.18',
        '10.0.0.100',
      ]);
    });

    it('gives up after maxConflictRetries redos and rejects the batch with the 409', async () => {
      const store = new MemoryRangeAllocationStore();
      store.put(mapObject(NAME, RANGE, []));
      const allocator = new StoredRangeAllocator<string>({
        name: NAME,
        range: RANGE,
        store,
        clock: new FakeClock(0),
        log: nopLogger,
        maxConflictRetries: 2,
      });
      const conflict = new KubeApiError(409, 'the object has been modified', {
        reason: 'Conflict',
        code: 409,
      });
      for (let i = 0; i < 3; i++) store.failNextReplace(conflict);
      const err = await rejection(allocator.run((txn) => txn.allocate('10.0.0.5')));
      expect(err).to.equal(conflict);
      expect(store.replaceCalls).to.equal(3);
      expect(allocator.conflicts).to.equal(2);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal([]);
    });
  });

  describe('failing operations', () => {
    it('an operation that throws has its own changes undone and fails alone; the others in its batch succeed', async () => {
      const { store, allocator } = world();
      const release = store.holdNextReplace();
      const first = allocator.run((txn) => txn.allocate('10.0.0.30'));
      await until(() => store.replaceCalls === 1, 'the first write is sent');
      const a = allocator.run((txn) => txn.allocate('10.0.0.20'));
      const boom = new Error('boom');
      const b = allocator.run((txn) => {
        txn.release('10.0.0.30');
        txn.allocate('10.0.0.21');
        throw boom;
      });
      const c = allocator.run((txn) => [
        txn.allocate('10.0.0.22'),
        txn.has('10.0.0.30'),
        txn.has('10.0.0.21'),
      ]);
      release();
      expect(await first).to.equal('allocated');
      expect(await a).to.equal('allocated');
      expect(await rejection(b)).to.equal(boom);
      expect(await c).to.deep.equal(['allocated', true, false]);
      expect(store.replaceCalls).to.equal(2);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.20', '10.0.0.22', '10.0.0.30']);
    });

    it('an operation that throws alone writes nothing', async () => {
      const { store, allocator } = world(['10.0.0.5']);
      const boom = new Error('boom');
      const err = await rejection(
        allocator.run((txn) => {
          txn.release('10.0.0.5');
          txn.allocateNext();
          throw boom;
        }),
      );
      expect(err).to.equal(boom);
      expect(store.replaceCalls).to.equal(0);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.5']);
    });
  });

  describe('dry run', () => {
    it('applies the operation to a copy and writes nothing', async () => {
      const { store, allocator } = world(['10.0.0.5']);
      expect(await allocator.run((txn) => txn.allocate('10.0.0.6'), { dryRun: true })).to.equal('allocated');
      expect(await allocator.run((txn) => txn.allocate('10.0.0.5'), { dryRun: true })).to.equal('taken');
      expect(await allocator.run(allocateNext, { dryRun: true })).to.equal('10.0.0.17');
      expect(store.replaceCalls).to.equal(0);
      expect(allocator.writes).to.equal(0);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.5']);
      // Nothing the dry runs did is visible to a real operation.
      expect(await allocator.run((txn) => [txn.has('10.0.0.6'), txn.has('10.0.0.17')])).to.deep.equal([
        false,
        false,
      ]);
    });
  });

  describe('an unusable map', () => {
    it('a missing map rejects with MapUnavailableError naming it, and creates nothing', async () => {
      const { store, allocator } = world('missing');
      const err = await rejection(allocator.run(allocateNext));
      expect(err).to.be.instanceOf(MapUnavailableError);
      expect((err as MapUnavailableError).mapName).to.equal(NAME);
      expect(store.replaceCalls).to.equal(0);
      expect(store.createCalls).to.equal(0);
      expect(store.stored(NAME)).to.equal(undefined);
    });

    it('a missing map rejects a dry run with MapUnavailableError too', async () => {
      const { allocator } = world('missing');
      const err = await rejection(allocator.run(allocateNext, { dryRun: true }));
      expect(err).to.be.instanceOf(MapUnavailableError);
    });

    it('a map kept for another range rejects with MapUnavailableError and is left alone', async () => {
      const store = new MemoryRangeAllocationStore();
      store.put(mapObject(NAME, new IPRange('10.0.1.0/24'), ['10.0.1.5']));
      const allocator = new StoredRangeAllocator<string>({
        name: NAME,
        range: RANGE,
        store,
        clock: new FakeClock(0),
        log: nopLogger,
      });
      const err = await rejection(allocator.run(allocateNext));
      expect(err).to.be.instanceOf(MapUnavailableError);
      expect(store.replaceCalls).to.equal(0);
      expect(store.stored(NAME)?.range).to.equal('10.0.1.0/24');
    });

    it('a map with unreadable data rejects with MapUnavailableError', async () => {
      const store = new MemoryRangeAllocationStore();
      store.put({ ...mapObject(NAME, RANGE, []), data: '***' });
      const allocator = new StoredRangeAllocator<string>({
        name: NAME,
        range: RANGE,
        store,
        clock: new FakeClock(0),
        log: nopLogger,
      });
      const err = await rejection(allocator.run(allocateNext));
      expect(err).to.be.instanceOf(MapUnavailableError);
      expect(store.replaceCalls).to.equal(0);
    });
  });

  describe('abort', () => {
    it('an operation whose signal is aborted before its commit is rejected with the reason and not applied', async () => {
      const { store, allocator } = world();
      const release = store.holdNextReplace();
      const first = allocator.run((txn) => txn.allocate('10.0.0.5'));
      await until(() => store.replaceCalls === 1, 'the first write is sent');
      const controller = new AbortController();
      let ran = false;
      const aborted = allocator.run(
        (txn) => {
          ran = true;
          return txn.allocate('10.0.0.6');
        },
        { signal: controller.signal },
      );
      const other = allocator.run((txn) => txn.allocate('10.0.0.7'));
      const reason = new Error('request cancelled');
      controller.abort(reason);
      release();
      expect(await first).to.equal('allocated');
      expect(await rejection(aborted)).to.equal(reason);
      expect(await other).to.equal('allocated');
      expect(ran).to.equal(false);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.5', '10.0.0.7']);
    });

    it('an operation given an already aborted signal is rejected and nothing is written', async () => {
      const { store, allocator } = world();
      const controller = new AbortController();
      const reason = new Error('gone');
      controller.abort(reason);
      let ran = false;
      const err = await rejection(
        allocator.run(
          (txn) => {
            ran = true;
            return txn.allocateNext();
          },
          { signal: controller.signal },
        ),
      );
      expect(err).to.equal(reason);
      expect(ran).to.equal(false);
      expect(store.replaceCalls).to.equal(0);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal([]);
    });
  });

  describe('transient write errors', () => {
    it('a 500 on the write is retried after 200 ms on the clock, on a fresh read', async () => {
      const { store, clock, allocator } = world();
      store.failNextReplace(new KubeApiError(500, 'etcdserver: request timed out', { code: 500 }));
      const run = track(allocator.run((txn) => txn.allocate('10.0.0.5')));
      await until(() => clock.pendingTimers() === 1, 'the backoff timer is set');
      clock.step(199);
      await flush();
      expect(run.settled()).to.equal(false);
      expect(store.replaceCalls).to.equal(1);
      clock.step(1);
      expect(await run.promise).to.equal('allocated');
      expect(store.replaceCalls).to.equal(2);
      expect(store.getCalls).to.equal(2);
      expect(allocator.writes).to.equal(1);
      expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.5']);
    });
  });
});
