import { expect } from 'chai';
import type { V1Service } from '@kubernetes/client-node';
import { AddressBook, compareAddresses } from '../../../controllers/loadbalancer/book.ts';
import { isBuggyIP, type ParsedPool, resolvePools } from '../../../controllers/loadbalancer/pools.ts';
import { type SharingProfile, sharingProfile } from '../../../controllers/loadbalancer/sharing.ts';
import { pool } from './fixtures.ts';

function profile(name: string, sharingKey?: string, port = 80): SharingProfile {
  const svc: V1Service = {
    metadata: {
      name,
      namespace: 'n',
      ...(sharingKey ? { annotations: { 'scm.dev/allow-shared-ip': sharingKey } } : {}),
    },
    spec: { type: 'LoadBalancer', ports: [{ port, protocol: 'TCP' }] },
  };
  return sharingProfile(`n/${name}`, svc);
}

function bookWith(pools: ParsedPool[]): { book: AddressBook; changed: string[] } {
  const changed: string[] = [];
  const book = new AddressBook((p) => changed.push(p));
  book.setPools(pools);
  return { book, changed };
}

describe('LoadBalancer address book', () => {
  const slash30 = resolvePools([pool('a', ['192.0.2.0/30', '2001:db8::/127'])]);

  it('an empty pool: lowest free is its first address, counts are 0 used of its size', () => {
    const { book } = bookWith(slash30);
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.0');
    expect(book.lowestFree('a', 'IPv6')).to.equal('2001:db8::');
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
    expect(book.counts('a', 'IPv6')).to.deep.equal({ total: 2, used: 0 });
    expect(book.poolOf('192.0.2.3')).to.equal('a');
    expect(book.poolOf('2001:db8::1')).to.equal('a');
    expect(book.poolOf('192.0.2.4')).to.equal(undefined);
  });

  it('lowestFree only looks; it claims nothing', () => {
    const { book } = bookWith(slash30);
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.0');
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.0');
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
  });

  it('lowestFree with avoidBuggyIPs skips .0 (and the scan still finds .0 afterwards without the skip)', () => {
    const { book } = bookWith(slash30);
    expect(book.lowestFree('a', 'IPv4', isBuggyIP)).to.equal('192.0.2.1');
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.0');
  });

  it('an unknown pool or a family the pool lacks has no free address and no counts', () => {
    const { book } = bookWith(resolvePools([pool('v4', ['192.0.2.0/30'])]));
    expect(book.lowestFree('nope', 'IPv4')).to.equal(undefined);
    expect(book.lowestFree('v4', 'IPv6')).to.equal(undefined);
    expect(book.counts('v4', 'IPv6')).to.equal(undefined);
    expect(book.snapshot('v4', 'IPv6')).to.equal(undefined);
  });

  it('assign claims the addresses: they are held, counted, and lowest free moves past them', () => {
    const { book, changed } = bookWith(slash30);
    const a = profile('a');
    expect(book.assign(['192.0.2.0', '2001:db8::'], a)).to.deep.equal([]);
    expect(book.addressesOf('n/a')).to.deep.equal(['192.0.2.0', '2001:db8::']);
    expect([...book.holdersOf('192.0.2.0')]).to.deep.equal([['n/a', a]]);
    expect(book.holdersOf('192.0.2.1').size).to.equal(0);
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 1 });
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.1');
    expect(book.lowestFree('a', 'IPv6')).to.equal('2001:db8::1');
    expect(changed).to.deep.equal(['a', 'a']);
    expect([...book.keys()]).to.deep.equal(['n/a']);
  });

  it('a pool of 4 with every address held has no free address', () => {
    const { book } = bookWith(slash30);
    ['192.0.2.0', '192.0.2.1', '192.0.2.2', '192.0.2.3'].forEach((ip, i) =>
      book.assign([ip], profile(`s${i}`)),
    );
    expect(book.lowestFree('a', 'IPv4')).to.equal(undefined);
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 4 });
  });

  it('release frees the addresses: the lowest free is the released one again', () => {
    const { book, changed } = bookWith(slash30);
    book.assign(['192.0.2.0'], profile('s0'));
    book.assign(['192.0.2.1'], profile('s1'));
    book.assign(['192.0.2.2'], profile('s2'));
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.3');
    changed.length = 0;
    expect(book.release('n/s1')).to.deep.equal(['192.0.2.1']);
    expect(book.addressesOf('n/s1')).to.equal(undefined);
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.1');
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 2 });
    expect(changed).to.deep.equal(['a']);
  });

  it('releasing a key that holds nothing frees nothing', () => {
    const { book, changed } = bookWith(slash30);
    expect(book.release('n/ghost')).to.deep.equal([]);
    expect(changed).to.deep.equal([]);
  });

  it('assign with other addresses moves the key: the old ones are returned as freed', () => {
    const { book } = bookWith(slash30);
    book.assign(['192.0.2.0'], profile('s'));
    expect(book.assign(['192.0.2.2'], profile('s'))).to.deep.equal(['192.0.2.0']);
    expect(book.addressesOf('n/s')).to.deep.equal(['192.0.2.2']);
    expect(book.holdersOf('192.0.2.0').size).to.equal(0);
    expect(book.lowestFree('a', 'IPv4')).to.equal('192.0.2.0');
  });

  it('assigning the same addresses again frees nothing and changes no pool', () => {
    const { book, changed } = bookWith(slash30);
    book.assign(['192.0.2.0'], profile('s'));
    changed.length = 0;
    expect(book.assign(['192.0.2.0'], profile('s'))).to.deep.equal([]);
    expect(changed).to.deep.equal([]);
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 1 });
  });

  it('a shared address is freed only when its last holder lets go', () => {
    const { book } = bookWith(slash30);
    const x = profile('x', 'k', 80);
    const y = profile('y', 'k', 443);
    book.assign(['192.0.2.0'], x);
    book.assign(['192.0.2.0'], y);
    expect([...book.holdersOf('192.0.2.0').keys()]).to.deep.equal(['n/x', 'n/y']);
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 1 });
    expect(book.release('n/x')).to.deep.equal([]);
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 1 });
    expect(book.release('n/y')).to.deep.equal(['192.0.2.0']);
    expect(book.counts('a', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
  });

  it('sharedAddresses lists the addresses held under a key, IPv4 first, numerically', () => {
    const { book } = bookWith(resolvePools([pool('a', ['192.0.2.0/24', '2001:db8::/120'])]));
    book.assign(['192.0.2.10', '2001:db8::1'], profile('p', 'k'));
    book.assign(['192.0.2.9'], profile('q', 'k'));
    book.assign(['192.0.2.1'], profile('r', 'other'));
    book.assign(['192.0.2.2'], profile('s'));
    expect(book.sharedAddresses('k')).to.deep.equal(['192.0.2.9', '192.0.2.10', '2001:db8::1']);
    expect(book.sharedAddresses('none')).to.deep.equal([]);
  });

  it('an address held outside every pool stays in the book and in no pool', () => {
    const { book, changed } = bookWith(slash30);
    expect(book.assign(['198.51.100.7'], profile('s'))).to.deep.equal([]);
    expect(book.addressesOf('n/s')).to.deep.equal(['198.51.100.7']);
    expect(book.poolOf('198.51.100.7')).to.equal(undefined);
    expect(changed).to.deep.equal([]);
    expect(book.release('n/s')).to.deep.equal(['198.51.100.7']);
  });

  it('setPools without the pool keeps the held address; a new pool holding it counts it as used', () => {
    const { book } = bookWith(slash30);
    book.assign(['192.0.2.1'], profile('s'));
    book.setPools([]);
    expect(book.addressesOf('n/s')).to.deep.equal(['192.0.2.1']);
    expect(book.poolOf('192.0.2.1')).to.equal(undefined);
    expect(book.counts('a', 'IPv4')).to.equal(undefined);
    book.setPools(resolvePools([pool('b', ['192.0.2.0/31'])]));
    expect(book.poolOf('192.0.2.1')).to.equal('b');
    expect(book.counts('b', 'IPv4')).to.deep.equal({ total: 2, used: 1 });
    expect(book.lowestFree('b', 'IPv4')).to.equal('192.0.2.0');
  });

  it('a pool in conflict gets no bitmap; a disabled pool does', () => {
    const pools = resolvePools([
      pool('old', ['192.0.2.0/30'], { disabled: true }, '2026-01-01T00:00:00Z'),
      pool('young', ['192.0.2.2/31'], {}, '2026-02-01T00:00:00Z'),
    ]);
    const { book } = bookWith(pools);
    expect(book.counts('young', 'IPv4')).to.equal(undefined);
    expect(book.counts('old', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
    expect(book.poolOf('192.0.2.2')).to.equal('old');
  });

  it('snapshot is the bitmap of the pool family with its size and use', () => {
    const { book } = bookWith(slash30);
    book.assign(['192.0.2.0', '192.0.2.2'], profile('s'));
    const snap = book.snapshot('a', 'IPv4');
    expect(snap?.size).to.equal(4);
    expect(snap?.used).to.equal(2);
    expect(snap?.snapshot.range).to.equal('192.0.2.0/30');
  });
});

describe('LoadBalancer compareAddresses', () => {
  const cases: [string, string, number][] = [
    ['192.0.2.9', '192.0.2.10', -1],
    ['192.0.2.10', '192.0.2.9', 1],
    ['10.0.0.1', '9.255.255.255', 1],
    ['192.0.2.1', '192.0.2.1', 0],
    ['255.255.255.255', '::', -1],
    ['2001:db8::2', '2001:db8::10', -1],
    ['2001:db8::', '192.0.2.1', 1],
  ];
  for (const [a, b, sign] of cases) {
    it(`${a} vs ${b} is ${sign < 0 ? 'before' : sign > 0 ? 'after' : 'equal'}`, () => {
      expect(Math.sign(compareAddresses(a, b))).to.equal(sign);
    });
  }

  it('sorts a mixed list IPv4 first, then numerically', () => {
    expect(['2001:db8::a', '192.0.2.20', '2001:db8::9', '192.0.2.3'].sort(compareAddresses)).to.deep.equal([
      '192.0.2.3',
      '192.0.2.20',
      '2001:db8::9',
      '2001:db8::a',
    ]);
  });
});
