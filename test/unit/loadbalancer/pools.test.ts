import { expect } from 'chai';
import {
  isBuggyIP,
  owning,
  parsePool,
  PoolRange,
  resolvePools,
  usable,
} from '../../../controllers/loadbalancer/pools.ts';
import type { LoadBalancerIPPool } from '../../../controllers/loadbalancer/types.ts';
import { NEW, OLD, pool } from './fixtures.ts';

/** family -> [text, size, truncated] of each range of the parsed pool. */
function rangesOf(p: LoadBalancerIPPool): Record<string, [string, number, boolean]> {
  const parsed = parsePool(p);
  return Object.fromEntries([...parsed.ranges].map(([f, r]) => [f, [r.text, r.size, r.truncated]]));
}

describe('LoadBalancer pools: PoolRange', () => {
  const range = new PoolRange('IPv4', [
    { first: 0x0a00000an, last: 0x0a00000cn }, // 10.0.0.10-10.0.0.12, given out of order
    { first: 0x0a000000n, last: 0x0a000001n }, // 10.0.0.0/31
  ]);

  it('"10.0.0.0/31" + "10.0.0.10-10.0.0.12" has 5 addresses, counted across the segments in order', () => {
    expect(range.size).to.equal(5);
    expect(range.text).to.equal('10.0.0.0/31,10.0.0.10-10.0.0.12');
    expect(range.truncated).to.equal(false);
    expect(range.bandOffset).to.equal(0);
  });

  const offsets: [string, number | undefined][] = [
    ['10.0.0.0', 0],
    ['10.0.0.1', 1],
    ['10.0.0.10', 2],
    ['10.0.0.11', 3],
    ['10.0.0.12', 4],
    ['10.0.0.2', undefined],
    ['10.0.0.9', undefined],
    ['10.0.0.13', undefined],
    ['2001:db8::1', undefined],
    ['not-an-ip', undefined],
  ];
  for (const [ip, offset] of offsets) {
    it(`offsetOf(${ip}) is ${String(offset)}`, () => {
      expect(range.offsetOf(ip)).to.equal(offset);
      expect(range.contains(ip)).to.equal(offset !== undefined);
    });
  }

  it('valueAt is the inverse of offsetOf: offset 2 is 10.0.0.10', () => {
    expect([0, 1, 2, 3, 4].map((o) => range.valueAt(o))).to.deep.equal([
      '10.0.0.0',
      '10.0.0.1',
      '10.0.0.10',
      '10.0.0.11',
      '10.0.0.12',
    ]);
  });

  it('overlaps a range of the same family sharing an address, not a disjoint one nor another family', () => {
    const touching = new PoolRange('IPv4', [{ first: 0x0a00000cn, last: 0x0a000010n }]);
    const between = new PoolRange('IPv4', [{ first: 0x0a000002n, last: 0x0a000009n }]);
    const v6 = new PoolRange('IPv6', [{ first: 0n, last: 100n }]);
    expect(range.overlaps(touching)).to.equal(true);
    expect(range.overlaps(between)).to.equal(false);
    expect(range.overlaps(v6)).to.equal(false);
  });

  it('IPv6 addresses are written canonically', () => {
    const r = parsePool(pool('p', ['2001:DB8:0:0::10-2001:db8::12'])).ranges.get('IPv6');
    expect(r?.text).to.equal('2001:db8::10-2001:db8::12');
    expect(r?.valueAt(1)).to.equal('2001:db8::11');
    expect(r?.offsetOf('2001:0db8::0012')).to.equal(2);
  });
});

describe('LoadBalancer pools: parsePool', () => {
  it('a pool with defaults: autoAssign true, avoidBuggyIPs false, not disabled, no problems', () => {
    const parsed = parsePool(pool('web', ['192.0.2.0/30']));
    expect(parsed.name).to.equal('web');
    expect(parsed.autoAssign).to.equal(true);
    expect(parsed.avoidBuggyIPs).to.equal(false);
    expect(parsed.disabled).to.equal(false);
    expect(parsed.priority).to.equal(undefined);
    expect(parsed.problems).to.deep.equal([]);
    expect(parsed.notes).to.deep.equal([]);
    expect(parsed.conflictsWith).to.equal(undefined);
    expect(parsed.createdAt).to.equal(Date.parse(OLD));
    expect(rangesOf(pool('web', ['192.0.2.0/30']))).to.deep.equal({ IPv4: ['192.0.2.0/30', 4, false] });
  });

  it('spec fields are carried: autoAssign, avoidBuggyIPs, selectors, priority, disabled', () => {
    const parsed = parsePool(
      pool('web', ['192.0.2.0/30'], {
        autoAssign: false,
        avoidBuggyIPs: true,
        serviceSelector: { matchLabels: { tier: 'web' } },
        namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
        priority: 3,
        disabled: true,
      }),
    );
    expect(parsed.autoAssign).to.equal(false);
    expect(parsed.avoidBuggyIPs).to.equal(true);
    expect(parsed.serviceSelector).to.deep.equal({ matchLabels: { tier: 'web' } });
    expect(parsed.namespaceSelector).to.deep.equal({
      matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }],
    });
    expect(parsed.priority).to.equal(3);
    expect(parsed.disabled).to.equal(true);
  });

  const cases: { name: string; addresses: string[]; ranges: Record<string, [string, number, boolean]> }[] = [
    {
      name: 'every address of a CIDR is usable: a /30 holds 4',
      addresses: ['192.0.2.0/30'],
      ranges: { IPv4: ['192.0.2.0/30', 4, false] },
    },
    {
      name: 'overlapping entries within one pool are merged',
      addresses: ['192.0.2.0/30', '192.0.2.2-192.0.2.5'],
      ranges: { IPv4: ['192.0.2.0-192.0.2.5', 6, false] },
    },
    {
      name: 'adjacent entries are merged into one CIDR',
      addresses: ['192.0.2.2/31', '192.0.2.0/31'],
      ranges: { IPv4: ['192.0.2.0/30', 4, false] },
    },
    {
      name: 'a single address range a-a holds one address',
      addresses: ['192.0.2.7-192.0.2.7'],
      ranges: { IPv4: ['192.0.2.7/32', 1, false] },
    },
    {
      name: 'both families in one pool give one range each',
      addresses: ['192.0.2.0/30', '2001:db8::/126'],
      ranges: { IPv4: ['192.0.2.0/30', 4, false], IPv6: ['2001:db8::/126', 4, false] },
    },
    {
      name: 'whitespace around an entry is ignored',
      addresses: [' 192.0.2.0/30 '],
      ranges: { IPv4: ['192.0.2.0/30', 4, false] },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parsePool(pool('p', c.addresses)).problems).to.deep.equal([]);
      expect(rangesOf(pool('p', c.addresses))).to.deep.equal(c.ranges);
    });
  }

  it('an IPv6 /64 is truncated to its first 65,536 addresses, with a note', () => {
    const parsed = parsePool(pool('v6', ['2001:db8::/64']));
    expect(rangesOf(pool('v6', ['2001:db8::/64']))).to.deep.equal({ IPv6: ['2001:db8::/112', 65_536, true] });
    expect(parsed.problems).to.deep.equal([]);
    expect(parsed.notes).to.deep.equal([
      'only the first 65536 IPv6 addresses are used (one bitmap holds at most that many)',
    ]);
    const r = parsed.ranges.get('IPv6');
    expect(r?.valueAt(65_535)).to.equal('2001:db8::ffff');
    expect(r?.contains('2001:db8::1:0')).to.equal(false);
  });

  it('an IPv4 /8 is truncated to 2^20 addresses, with a note', () => {
    const parsed = parsePool(pool('v4', ['10.0.0.0/8']));
    expect(rangesOf(pool('v4', ['10.0.0.0/8']))).to.deep.equal({ IPv4: ['10.0.0.0/12', 1_048_576, true] });
    expect(parsed.notes).to.deep.equal([
      'only the first 1048576 IPv4 addresses are used (one bitmap holds at most that many)',
    ]);
  });

  it('truncation counts across segments: the segment crossing the limit is cut, later ones dropped', () => {
    const addresses = ['2001:db8::/113', '2001:db8::1:0/112', '2001:db8::2:0/120'];
    const parsed = parsePool(pool('v6', addresses));
    expect(rangesOf(pool('v6', addresses))).to.deep.equal({
      IPv6: ['2001:db8::/113,2001:db8::1:0/113', 65_536, true],
    });
    expect(parsed.ranges.get('IPv6')?.valueAt(32_768)).to.equal('2001:db8::1:0');
    expect(parsed.ranges.get('IPv6')?.contains('2001:db8::2:0')).to.equal(false);
    expect(parsed.notes).to.have.length(1);
  });

  const problems: { name: string; addresses: string[]; problems: string[] }[] = [
    {
      name: 'a CIDR with host bits set is a problem naming the entry and its CIDR',
      addresses: ['192.0.2.1/24'],
      problems: ['"192.0.2.1/24" has host bits set; the CIDR is 192.0.2.0/24'],
    },
    {
      name: 'a range a-b whose end is before its start is a problem',
      addresses: ['192.0.2.10-192.0.2.5'],
      problems: ['"192.0.2.10-192.0.2.5" ends before it starts'],
    },
    {
      name: 'a range mixing families is a problem',
      addresses: ['192.0.2.1-2001:db8::1'],
      problems: ['"192.0.2.1-2001:db8::1" mixes IPv4 and IPv6'],
    },
    {
      name: 'a range of something else than two addresses is a problem',
      addresses: ['192.0.2.1-x'],
      problems: ['"192.0.2.1-x" is not a range of two addresses (a-b)'],
    },
    {
      name: 'text that is neither a CIDR nor a range is a problem',
      addresses: ['bogus'],
      problems: ['"bogus" is not a CIDR or a range of two addresses'],
    },
    {
      name: 'an empty address list is a problem',
      addresses: [],
      problems: ['spec.addresses is empty'],
    },
  ];
  for (const c of problems) {
    it(c.name, () => {
      expect(parsePool(pool('p', c.addresses)).problems).to.deep.equal(c.problems);
    });
  }

  it('a bad entry is named while the good ones are still read', () => {
    const parsed = parsePool(pool('p', ['192.0.2.0/30', '192.0.2.9/29']));
    expect(parsed.problems).to.deep.equal(['"192.0.2.9/29" has host bits set; the CIDR is 192.0.2.8/29']);
    expect(parsed.ranges.get('IPv4')?.text).to.equal('192.0.2.0/30');
  });
});

describe('LoadBalancer pools: resolvePools', () => {
  it('two overlapping pools: the older keeps its addresses, the younger conflicts with it', () => {
    const resolved = resolvePools([
      pool('a-young', ['192.0.2.2-192.0.2.9'], {}, NEW),
      pool('z-old', ['192.0.2.0/29'], {}, OLD),
    ]);
    expect(resolved.map((p) => [p.name, p.conflictsWith])).to.deep.equal([
      ['a-young', 'z-old'],
      ['z-old', undefined],
    ]);
    expect(resolved.map((p) => [usable(p), owning(p)])).to.deep.equal([
      [false, false],
      [true, true],
    ]);
  });

  it('of two overlapping pools of the same age, the first by name keeps', () => {
    const resolved = resolvePools([pool('b', ['192.0.2.0/30']), pool('a', ['192.0.2.3-192.0.2.4'])]);
    expect(resolved.map((p) => [p.name, p.conflictsWith])).to.deep.equal([
      ['a', undefined],
      ['b', 'a'],
    ]);
  });

  it('pools overlapping in one family only still conflict; disjoint pools do not', () => {
    const resolved = resolvePools([
      pool('a', ['192.0.2.0/30', '2001:db8::/126'], {}, OLD),
      pool('b', ['198.51.100.0/30', '2001:db8::3-2001:db8::8'], {}, NEW),
      pool('c', ['203.0.113.0/30'], {}, NEW),
    ]);
    expect(resolved.map((p) => [p.name, p.conflictsWith])).to.deep.equal([
      ['a', undefined],
      ['b', 'a'],
      ['c', undefined],
    ]);
  });

  it('a pool with problems neither keeps addresses nor makes others conflict', () => {
    const resolved = resolvePools([
      pool('broken', ['192.0.2.0/30', 'bogus'], {}, OLD),
      pool('good', ['192.0.2.0/30'], {}, NEW),
    ]);
    expect(resolved.map((p) => [p.name, p.conflictsWith, usable(p), owning(p)])).to.deep.equal([
      ['broken', undefined, false, false],
      ['good', undefined, true, true],
    ]);
  });

  it('a disabled pool still owns its addresses (younger overlapping pools conflict) but is not usable', () => {
    const resolved = resolvePools([
      pool('off', ['192.0.2.0/30'], { disabled: true }, OLD),
      pool('later', ['192.0.2.0/31'], {}, NEW),
    ]);
    expect(resolved.map((p) => [p.name, p.conflictsWith, usable(p), owning(p)])).to.deep.equal([
      ['later', 'off', false, false],
      ['off', undefined, false, true],
    ]);
  });

  it('choice order: priority ascending, pools without a priority after, then by name', () => {
    const resolved = resolvePools([
      pool('d', ['192.0.2.0/32']),
      pool('c', ['192.0.2.1/32'], { priority: 5 }),
      pool('b', ['192.0.2.2/32']),
      pool('a', ['192.0.2.3/32'], { priority: 10 }),
      pool('e', ['192.0.2.4/32'], { priority: 5 }),
      pool('f', ['192.0.2.5/32'], { priority: 0 }),
    ]);
    expect(resolved.map((p) => p.name)).to.deep.equal(['f', 'c', 'e', 'a', 'b', 'd']);
  });
});

describe('LoadBalancer pools: isBuggyIP', () => {
  const cases: [string, boolean][] = [
    ['192.0.2.0', true],
    ['192.0.2.255', true],
    ['192.0.2.1', false],
    ['192.0.2.100', false],
    ['192.0.2.250', false],
    ['10.0.1.10', false],
    ['2001:db8::', false],
    ['2001:db8::255', false],
  ];
  for (const [ip, buggy] of cases) {
    it(`${ip} is ${buggy ? '' : 'not '}buggy`, () => {
      expect(isBuggyIP(ip)).to.equal(buggy);
    });
  }
});
