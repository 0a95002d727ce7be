import { expect } from 'chai';
import { RangeAllocator } from '../../../shared/allocator/allocator.ts';
import { StoredRangeAllocator } from '../../../shared/allocator/committer.ts';
import { ReservedPool } from '../../../shared/allocator/pool.ts';
import { IPRange } from '../../../shared/allocator/ranges.ts';
import { LeakTracker, rebuild } from '../../../shared/allocator/repair.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { nopLogger } from '../../../shared/log.ts';
import { MemoryRangeAllocationStore, mapObject, storedValues } from './memorystore.ts';

const NAME = 'serviceips-ipv4';
const RANGE = new IPRange('10.0.0.0/24'); // 254 values: a pool of floor(254 / 64) = 3

function world(
  range = RANGE,
  used: string[] = [],
): {
  store: MemoryRangeAllocationStore;
  clock: FakeClock;
  allocator: StoredRangeAllocator<string>;
  pool: ReservedPool<string>;
} {
  const store = new MemoryRangeAllocationStore();
  store.put(mapObject(NAME, range, used));
  const clock = new FakeClock(0, Date.parse('2026-12-02T00:00:00Z'));
  const allocator = new StoredRangeAllocator<string>({
    name: NAME,
    range,
    store,
    clock,
    log: nopLogger,
    random: () => 0,
  });
  const pool = new ReservedPool({
    allocator,
    holder: 'replica-a',
    clock,
    log: nopLogger,
    ttlMs: 30 * 60_000,
    marginMs: 5 * 60_000,
  });
  return { store, clock, allocator, pool };
}

describe('ReservedPool (values reserved ahead of demand)', () => {
  it('a first take finds the pool empty and starts a refill: one write reserves a block, marked and listed', async () => {
    const { store, pool } = world();
    expect(pool.capacity).to.equal(3);
    expect(pool.take()).to.equal(undefined);
    await pool.settled();
    expect(store.replaceCalls).to.equal(1);
    const stored = store.stored(NAME)!;
    expect(storedValues(store, NAME, RANGE)).to.deep.equal(['10.0.0.17', '10.0.0.18', '10.0.0.19']);
    expect(stored.reservations).to.deep.equal([
      {
        holder: 'replica-a',
        values: ['10.0.0.17', '10.0.0.18', '10.0.0.19'],
        renewedAt: '2026-12-02T00:00:00.000Z',
        ttlSeconds: 1800,
      },
    ]);
    expect(stored.reserved).to.equal(3);
  });

  it('takes hand out reserved values with no write, and a pool half gone refills in the background', async () => {
    const { store, pool } = world();
    pool.take();
    await pool.settled();
    const writes = store.replaceCalls;
    expect(pool.take()).to.equal('10.0.0.17');
    expect(store.replaceCalls).to.equal(writes);
    expect(pool.take()).to.equal('10.0.0.18'); // one of three left: a refill starts
    await pool.settled();
    // The refill topped the pool up to three; the handed-out values left the listing but stay marked.
    expect(store.replaceCalls).to.equal(writes + 1);
    expect(store.stored(NAME)!.reservations![0].values).to.deep.equal([
      '10.0.0.19',
      '10.0.0.20',
      '10.0.0.21',
    ]);
    expect(storedValues(store, NAME, RANGE)).to.include.members(['10.0.0.17', '10.0.0.18']);
  });

  it('stops handing out reserved values once the ttl minus the margin has passed', async () => {
    const { clock, pool } = world();
    pool.take();
    await pool.settled();
    clock.step(25 * 60_000);
    expect(pool.peek()).to.equal(undefined);
    expect(pool.take()).to.equal(undefined);
  });

  it('a value given back (the request was denied) is handed out next', async () => {
    const { pool } = world();
    pool.take();
    await pool.settled();
    const v = pool.take()!;
    pool.giveBack(v);
    expect(pool.take()).to.equal(v);
  });

  it('a range under 64 values has no pool; a refill never takes a range past 90 % used', async () => {
    expect(world(new IPRange('10.0.0.0/27')).pool.capacity).to.equal(0);
    const used = Array.from({ length: 226 }, (_, i) => `10.0.0.${i + 1}`); // 228 is 90 % of 254
    const { store, pool } = world(RANGE, used);
    pool.take();
    await pool.settled();
    expect(store.stored(NAME)!.reservations![0].values).to.deep.equal(['10.0.0.227', '10.0.0.228']);
  });

  it('releasing a value takes it out of every reservation', async () => {
    const { store, allocator, pool } = world();
    pool.take();
    await pool.settled();
    await allocator.run((txn) => txn.release('10.0.0.18'));
    expect(store.stored(NAME)!.reservations![0].values).to.deep.equal(['10.0.0.17', '10.0.0.19']);
  });

  it('the repair rebuild keeps reserved values: neither leaks nor reported', () => {
    const stored = new RangeAllocator(RANGE);
    stored.restore(mapObject(NAME, RANGE, ['10.0.0.17', '10.0.0.18', '10.0.0.99']));
    const { rebuilt, findings, keptLeaks } = rebuild(RANGE, stored, [], new LeakTracker(), [
      '10.0.0.17',
      '10.0.0.18',
    ]);
    expect([...rebuilt.values()]).to.deep.equal(['10.0.0.17', '10.0.0.18', '10.0.0.99']);
    expect(findings).to.deep.equal([]);
    expect(keptLeaks).to.deep.equal(['10.0.0.99']);
  });
});
