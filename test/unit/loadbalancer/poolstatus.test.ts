import { expect } from 'chai';
import { parsePool, resolvePools } from '../../../controllers/loadbalancer/pools.ts';
import {
  desiredPoolStatus,
  poolEvent,
  poolMapName,
  poolStatusEqual,
} from '../../../controllers/loadbalancer/poolstatus.ts';
import type { LoadBalancerIPPoolStatus, PoolCondition } from '../../../controllers/loadbalancer/types.ts';
import { pool } from './fixtures.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const EARLIER = new Date('2026-02-01T00:00:00Z');

function cond(type: string, status: string, reason: string, message: string, at: Date = NOW): PoolCondition {
  return {
    type,
    status,
    reason,
    message,
    observedGeneration: 3,
    lastTransitionTime: at.toISOString().replace('.000Z', 'Z'),
  };
}

const NO_OVERLAP = (at: Date = NOW): PoolCondition =>
  cond('Conflict', 'False', 'NoOverlap', 'no other pool holds any of its addresses', at);

describe('LoadBalancer pool status: desiredPoolStatus', () => {
  it('a good dual-stack pool: Ready True, Conflict False, counts per family and their sums', () => {
    const p = pool('web', ['192.0.2.0/30', '2001:db8::/126']);
    const counts = { IPv4: { total: 4, used: 1 }, IPv6: { total: 4, used: 3 } };
    expect(desiredPoolStatus(p, parsePool(p), (f) => counts[f], NOW)).to.deep.equal({
      conditions: [cond('Ready', 'True', 'Ready', 'hands out addresses'), NO_OVERLAP()],
      observedGeneration: 3,
      ipv4: { total: 4, used: 1, free: 3 },
      ipv6: { total: 4, used: 3, free: 1 },
      total: 8,
      used: 4,
      free: 4,
    });
  });

  it('a family the book has no counts for counts as its whole size free; absent families are left out', () => {
    const p = pool('web', ['192.0.2.0/29']);
    expect(desiredPoolStatus(p, parsePool(p), () => undefined, NOW)).to.deep.equal({
      conditions: [cond('Ready', 'True', 'Ready', 'hands out addresses'), NO_OVERLAP()],
      observedGeneration: 3,
      ipv4: { total: 8, used: 0, free: 8 },
      total: 8,
      used: 0,
      free: 8,
    });
  });

  it('a truncated pool is Ready with the note in its message', () => {
    const p = pool('wide', ['2001:db8::/64']);
    const status = desiredPoolStatus(p, parsePool(p), () => undefined, NOW);
    expect(status.conditions?.[0]).to.deep.equal(
      cond(
        'Ready',
        'True',
        'Ready',
        'hands out addresses; only the first 65536 IPv6 addresses are used (one bitmap holds at most that many)',
      ),
    );
    expect(status.ipv6).to.deep.equal({ total: 65_536, used: 0, free: 65_536 });
  });

  it('the younger of two overlapping pools: Ready False / Conflict True, naming the older pool', () => {
    const older = pool('old', ['192.0.2.0/30'], {}, '2026-01-01T00:00:00Z');
    const younger = pool('young', ['192.0.2.2-192.0.2.5'], {}, '2026-02-01T00:00:00Z');
    const parsed = resolvePools([older, younger]).find((p) => p.name === 'young')!;
    expect(desiredPoolStatus(younger, parsed, () => undefined, NOW)).to.deep.equal({
      conditions: [
        cond('Ready', 'False', 'Conflict', 'overlaps pool old; skipped'),
        cond(
          'Conflict',
          'True',
          'Overlap',
          'its addresses overlap pool old, which is older; this pool is skipped until the overlap is gone',
        ),
      ],
      observedGeneration: 3,
      ipv4: { total: 4, used: 0, free: 4 },
      total: 4,
      used: 0,
      free: 4,
    });
  });

  it('the older of two overlapping pools stays Ready with no conflict', () => {
    const older = pool('old', ['192.0.2.0/30'], {}, '2026-01-01T00:00:00Z');
    const younger = pool('young', ['192.0.2.2-192.0.2.5'], {}, '2026-02-01T00:00:00Z');
    const parsed = resolvePools([older, younger]).find((p) => p.name === 'old')!;
    expect(desiredPoolStatus(older, parsed, () => undefined, NOW).conditions).to.deep.equal([
      cond('Ready', 'True', 'Ready', 'hands out addresses'),
      NO_OVERLAP(),
    ]);
  });

  it('a disabled pool: Ready False, Disabled; counts still given', () => {
    const p = pool('off', ['192.0.2.0/30'], { disabled: true });
    expect(desiredPoolStatus(p, parsePool(p), () => ({ total: 4, used: 2 }), NOW)).to.deep.equal({
      conditions: [
        cond('Ready', 'False', 'Disabled', 'disabled: hands out no new addresses; Services keep theirs'),
        NO_OVERLAP(),
      ],
      observedGeneration: 3,
      ipv4: { total: 4, used: 2, free: 2 },
      total: 4,
      used: 2,
      free: 2,
    });
  });

  it('a pool with bad entries: Ready False, InvalidAddresses, naming every problem', () => {
    const p = pool('bad', ['192.0.2.1/24', '192.0.2.10-192.0.2.5']);
    expect(desiredPoolStatus(p, parsePool(p), () => undefined, NOW)).to.deep.equal({
      conditions: [
        cond(
          'Ready',
          'False',
          'InvalidAddresses',
          '"192.0.2.1/24" has host bits set; the CIDR is 192.0.2.0/24; "192.0.2.10-192.0.2.5" ends before it starts',
        ),
        NO_OVERLAP(),
      ],
      observedGeneration: 3,
      total: 0,
      used: 0,
      free: 0,
    });
  });

  it("lastTransitionTime is kept when a condition's status is unchanged, even if its message changes", () => {
    const prior: LoadBalancerIPPoolStatus = {
      conditions: [cond('Ready', 'True', 'Ready', 'old message', EARLIER), NO_OVERLAP(EARLIER)],
    };
    const p = pool('web', ['192.0.2.0/30'], {}, '2026-01-01T00:00:00Z', prior);
    expect(desiredPoolStatus(p, parsePool(p), () => undefined, NOW).conditions).to.deep.equal([
      cond('Ready', 'True', 'Ready', 'hands out addresses', EARLIER),
      NO_OVERLAP(EARLIER),
    ]);
  });

  it('lastTransitionTime moves to now for a condition whose status flips', () => {
    const prior: LoadBalancerIPPoolStatus = {
      conditions: [cond('Ready', 'True', 'Ready', 'hands out addresses', EARLIER), NO_OVERLAP(EARLIER)],
    };
    const p = pool('off', ['192.0.2.0/30'], { disabled: true }, '2026-01-01T00:00:00Z', prior);
    expect(desiredPoolStatus(p, parsePool(p), () => undefined, NOW).conditions).to.deep.equal([
      cond('Ready', 'False', 'Disabled', 'disabled: hands out no new addresses; Services keep theirs', NOW),
      NO_OVERLAP(EARLIER),
    ]);
  });
});

describe('LoadBalancer pool status: poolStatusEqual', () => {
  const p = pool('web', ['192.0.2.0/30']);
  const at = (when: Date, used = 1): LoadBalancerIPPoolStatus =>
    desiredPoolStatus({ ...p, status: undefined }, parsePool(p), () => ({ total: 4, used }), when);

  it('statuses differing only in transition times are equal', () => {
    expect(poolStatusEqual(at(EARLIER), at(NOW))).to.equal(true);
  });

  it('no status yet is never equal', () => {
    expect(poolStatusEqual(undefined, at(NOW))).to.equal(false);
  });

  it('other counts are not equal', () => {
    expect(poolStatusEqual(at(NOW, 1), at(NOW, 2))).to.equal(false);
  });

  it('another condition message is not equal', () => {
    const a = at(NOW);
    const b: LoadBalancerIPPoolStatus = {
      ...a,
      conditions: [{ ...a.conditions![0], message: 'something else' }, a.conditions![1]],
    };
    expect(poolStatusEqual(a, b)).to.equal(false);
  });

  it('another observedGeneration is not equal', () => {
    const a = at(NOW);
    expect(poolStatusEqual(a, { ...a, observedGeneration: 4 })).to.equal(false);
  });
});

describe('LoadBalancer pool status: poolMapName', () => {
  it('names a map per pool and family', () => {
    expect(poolMapName('web', 'IPv4')).to.equal('lbpool-web-ipv4');
    expect(poolMapName('web', 'IPv6')).to.equal('lbpool-web-ipv6');
  });
});

describe('LoadBalancer pool status: poolEvent', () => {
  const ready = (status: 'True' | 'False', reason: string, message = 'm'): LoadBalancerIPPoolStatus => ({
    conditions: [cond('Ready', status, reason, message)],
  });

  it('a new pool that is Ready gets no Event', () => {
    expect(poolEvent(undefined, ready('True', 'Ready'))).to.equal(undefined);
  });

  it('a new pool in conflict gets a Warning named after the reason, with the message', () => {
    expect(poolEvent(undefined, ready('False', 'Conflict', 'overlaps pool a; skipped'))).to.deep.equal({
      type: 'Warning',
      reason: 'Conflict',
      message: 'overlaps pool a; skipped',
    });
  });

  it('a Ready pool whose addresses become invalid gets a Warning InvalidAddresses', () => {
    expect(poolEvent(ready('True', 'Ready'), ready('False', 'InvalidAddresses', 'bad'))).to.deep.equal({
      type: 'Warning',
      reason: 'InvalidAddresses',
      message: 'bad',
    });
  });

  it('disabling a pool is a Normal Event; becoming Ready again is a Normal Ready', () => {
    expect(poolEvent(ready('True', 'Ready'), ready('False', 'Disabled', 'off'))?.type).to.equal('Normal');
    expect(
      poolEvent(ready('False', 'Conflict'), ready('True', 'Ready', 'hands out addresses')),
    ).to.deep.equal({
      type: 'Normal',
      reason: 'Ready',
      message: 'hands out addresses',
    });
  });

  it('the same Ready status and reason (counts changed) gets no Event', () => {
    expect(poolEvent(ready('False', 'Conflict', 'a'), ready('False', 'Conflict', 'b'))).to.equal(undefined);
    expect(poolEvent(ready('True', 'Ready'), ready('True', 'Ready'))).to.equal(undefined);
  });
});
