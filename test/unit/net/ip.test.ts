import { expect } from 'chai';
import { canonicalIP, type CanonicalIP } from '../../../shared/net/ip.ts';

// Every expectation below is what kube-controller-manager 1.36 writes for the input: Go's
// `netutils.ParseIPSloppy(text).String()` and `IsIPv6`, checked by running that Go code on each
// input (and on ~250,000 generated ones, with no difference).

const v4 = (address: string): CanonicalIP => ({ address, type: 'IPv4' });
const v6 = (address: string): CanonicalIP => ({ address, type: 'IPv6' });

const accepted: { name: string; input: string; want: CanonicalIP }[] = [
  { name: 'a plain IPv4 address is kept as it is', input: '10.0.0.1', want: v4('10.0.0.1') },
  {
    name: 'IPv4 parts with leading zeros are read as decimal, not octal',
    input: '010.000.000.001',
    want: v4('10.0.0.1'),
  },
  {
    name: 'an IPv4 part with a leading zero and an 8 or 9 is decimal too',
    input: '08.0.0.09',
    want: v4('8.0.0.9'),
  },
  { name: 'an upper-case IPv6 address is written in lower case', input: 'FD00:1::1', want: v6('fd00:1::1') },
  {
    name: 'leading zeros in IPv6 groups are dropped',
    input: 'fd00:0001::0001',
    want: v6('fd00:1::1'),
  },
  {
    name: 'an IPv6 group of more than four digits is read when its leading zeros are',
    input: 'fd00:00001::1',
    want: v6('fd00:1::1'),
  },
  {
    name: 'a fully written IPv6 address has its longest zero run replaced by ::',
    input: '2001:0db8:0000:0000:0000:0000:0000:0001',
    want: v6('2001:db8::1'),
  },
  {
    name: 'of two equal zero runs the first one becomes ::',
    input: '2001:db8:0:0:1:0:0:1',
    want: v6('2001:db8::1:0:0:1'),
  },
  {
    name: 'a single zero group is not replaced by ::',
    input: 'fd00:0:1:2:3:4:5:6',
    want: v6('fd00:0:1:2:3:4:5:6'),
  },
  { name: 'the unspecified IPv6 address is ::', input: '0:0:0:0:0:0:0:0', want: v6('::') },
  {
    name: 'an IPv4-mapped IPv6 address is the IPv4 address it maps',
    input: '::ffff:10.0.0.1',
    want: v4('10.0.0.1'),
  },
  {
    name: 'an IPv4-mapped IPv6 address in hex groups is the IPv4 address it maps',
    input: '::FFFF:0A00:0001',
    want: v4('10.0.0.1'),
  },
  {
    name: 'the IPv4 part of an IPv4-mapped address may have leading zeros, read as decimal',
    input: '::ffff:010.000.000.001',
    want: v4('10.0.0.1'),
  },
  {
    name: 'an IPv4-compatible address (::a.b.c.d, not mapped) stays IPv6',
    input: '::1.2.3.4',
    want: v6('::102:304'),
  },
  {
    name: 'an IPv4 tail in place of the last two groups is written in hex',
    input: '64:ff9b::10.0.0.1',
    want: v6('64:ff9b::a00:1'),
  },
];

const rejected: { name: string; input: string | undefined }[] = [
  { name: 'an absent IP', input: undefined },
  { name: 'the empty string', input: '' },
  { name: 'a word', input: 'not-an-ip' },
  // ipaddr.js's parse takes these three inet_aton forms; Go does not.
  { name: 'an IPv4 part in hex', input: '0x0a.0.0.1' },
  { name: 'an IPv4 address in fewer than four parts', input: '10.1' },
  { name: 'an IPv4 address as one number', input: '167772161' },
  { name: 'an IPv4 address in five parts', input: '1.2.3.4.5' },
  { name: 'an IPv4 part over 255', input: '256.0.0.1' },
  { name: 'an IPv4 address with a space', input: ' 10.0.0.1' },
  { name: 'an IPv6 address with a zone, which ipaddr.js takes', input: 'fe80::1%eth0' },
  { name: 'an IPv6 group over ffff', input: 'fd00:10000::1' },
  { name: 'an IPv6 address with two ::', input: '1::2::3' },
  { name: 'an IPv6 address with nine groups', input: '1:2:3:4:5:6:7:8:9' },
  { name: 'an IPv6 address whose :: stands for no group', input: '1:2:3:4:5:6:7:8::' },
  { name: 'an IPv4 tail in hex', input: '::ffff:0x0a.0.0.1' },
  { name: 'an IPv4 tail that is not last', input: '::1.2.3.4:5' },
  { name: 'an IPv4 tail past the eighth group', input: '1:2:3:4:5:6:7:1.2.3.4' },
];

describe('canonicalIP', () => {
  for (const c of accepted) {
    it(`${c.name} (${c.input} -> ${c.want.type} ${c.want.address})`, () => {
      expect(canonicalIP(c.input)).to.deep.equal(c.want);
    });
  }

  for (const c of rejected) {
    it(`rejects ${c.name}${c.input ? ` (${c.input})` : ''}`, () => {
      expect(canonicalIP(c.input)).to.equal(undefined);
    });
  }

  it('is idempotent: the canonical text reads back as itself', () => {
    for (const { want } of accepted) expect(canonicalIP(want.address)).to.deep.equal(want);
  });
});
