import { expect } from 'chai';
import { ipBandOffset, IPRange, portBandOffset, PortRange } from '../../../shared/allocator/ranges.ts';

describe('IPRange', () => {
  describe('IPv4', () => {
    it('a /24 holds 254 addresses, .1-.16 static', () => {
      const range = new IPRange('10.0.0.0/24');
      expect(range.text).to.equal('10.0.0.0/24');
      expect(range.family).to.equal('IPv4');
      expect(range.size).to.equal(254);
      expect(range.bandOffset).to.equal(16);
      expect(range.valueAt(15)).to.equal('10.0.0.16');
      expect(range.valueAt(16)).to.equal('10.0.0.17');
    });

    it('offset 0 is the network address + 1 and offset 253 the last before the broadcast', () => {
      const range = new IPRange('10.0.0.0/24');
      expect(range.valueAt(0)).to.equal('10.0.0.1');
      expect(range.valueAt(253)).to.equal('10.0.0.254');
      expect(range.offsetOf('10.0.0.1')).to.equal(0);
      expect(range.offsetOf('10.0.0.254')).to.equal(253);
    });

    it('the network and broadcast addresses have no offset', () => {
      const range = new IPRange('10.0.0.0/24');
      expect(range.offsetOf('10.0.0.0')).to.equal(undefined);
      expect(range.offsetOf('10.0.0.255')).to.equal(undefined);
    });

    it('addresses outside the CIDR have no offset', () => {
      const range = new IPRange('10.0.0.0/24');
      expect(range.offsetOf('10.0.1.1')).to.equal(undefined);
      expect(range.offsetOf('9.255.255.254')).to.equal(undefined);
    });

    it('an IP of the other family, or no IP at all, has no offset', () => {
      const range = new IPRange('10.0.0.0/24');
      expect(range.offsetOf('fd00::1')).to.equal(undefined);
      expect(range.offsetOf('not-an-ip')).to.equal(undefined);
      expect(range.offsetOf('')).to.equal(undefined);
    });

    it("an address with leading zeros is read as decimal (Kubernetes' sloppy parse)", () => {
      expect(new IPRange('10.0.0.0/24').offsetOf('010.000.000.005')).to.equal(4);
    });

    it('no IPv4 address is beyond capacity: IPv4 maps are never capped', () => {
      const range = new IPRange('10.0.0.0/24');
      expect(range.beyondCapacity('10.0.0.0')).to.equal(false);
      expect(range.beyondCapacity('10.0.0.255')).to.equal(false);
      expect(range.beyondCapacity('10.0.0.7')).to.equal(false);
      expect(range.beyondCapacity('fd00::1')).to.equal(false);
      expect(range.beyondCapacity('bogus')).to.equal(false);
    });

    it('a /28 (16 addresses) holds 14 and has no static band', () => {
      const range = new IPRange('10.0.0.0/28');
      expect(range.size).to.equal(14);
      expect(range.bandOffset).to.equal(0);
      expect(range.valueAt(13)).to.equal('10.0.0.14');
    });

    it('a /27 (32 addresses) has the minimum static band of 16', () => {
      const range = new IPRange('10.0.0.0/27');
      expect(range.size).to.equal(30);
      expect(range.bandOffset).to.equal(16);
    });

    it('a /23 has a static band of 512 / 16 = 32', () => {
      const range = new IPRange('10.0.0.0/23');
      expect(range.size).to.equal(510);
      expect(range.bandOffset).to.equal(32);
      expect(range.valueAt(255)).to.equal('10.0.1.0');
    });

    it('a /20 has a static band of 4096 / 16 = 256', () => {
      const range = new IPRange('10.0.0.0/20');
      expect(range.size).to.equal(4094);
      expect(range.bandOffset).to.equal(256);
    });

    it('a /12 has a static band capped at 256', () => {
      expect(new IPRange('10.0.0.0/12').bandOffset).to.equal(256);
    });

    it('a /12 holds 2^20 - 2 = 1,048,574 addresses (only IPv6 is capped at 65,536)', () => {
      const range = new IPRange('10.0.0.0/12');
      expect(range.size).to.equal(1_048_574);
      expect(range.offsetOf('10.15.255.254')).to.equal(1_048_573);
      expect(range.valueAt(1_048_573)).to.equal('10.15.255.254');
    });

    it('a /16 holds 65,534 addresses', () => {
      const range = new IPRange('10.96.0.0/16');
      expect(range.size).to.equal(65_534);
      expect(range.offsetOf('10.96.255.254')).to.equal(65_533);
    });

    it('a CIDR wider than /12 is refused', () => {
      expect(() => new IPRange('10.0.0.0/11')).to.throw(
        RangeError,
        '10.0.0.0/11 is too wide: an IPv4 service range may be at most a /12',
      );
      expect(() => new IPRange('10.0.0.0/8')).to.throw(RangeError);
    });

    it('a CIDR with host bits set is refused, naming the range it means', () => {
      expect(() => new IPRange('10.0.0.1/24')).to.throw(
        RangeError,
        '10.0.0.1/24 has host bits set; the range is 10.0.0.0/24',
      );
    });

    it('text that is no CIDR is refused', () => {
      expect(() => new IPRange('10.0.0.0')).to.throw(RangeError, '"10.0.0.0" is not a CIDR');
      expect(() => new IPRange('garbage')).to.throw(RangeError, '"garbage" is not a CIDR');
      expect(() => new IPRange('10.0.0.0/33')).to.throw(RangeError);
    });
  });

  describe('IPv6', () => {
    it('a /64 is capped at 65,536 values, offset 0 the network address + 1', () => {
      const range = new IPRange('fd00::/64');
      expect(range.family).to.equal('IPv6');
      expect(range.size).to.equal(65_536);
      expect(range.bandOffset).to.equal(256);
      expect(range.valueAt(0)).to.equal('fd00::1');
      expect(range.valueAt(65_535)).to.equal('fd00::1:0');
      expect(range.offsetOf('fd00::1:0')).to.equal(65_535);
    });

    it('an address of a capped /64 past the cap has no offset and is beyond capacity; the network address is not', () => {
      const range = new IPRange('fd00::/64');
      expect(range.offsetOf('fd00::1:1')).to.equal(undefined);
      expect(range.beyondCapacity('fd00::1:1')).to.equal(true);
      expect(range.beyondCapacity('fd00::')).to.equal(false);
      expect(range.beyondCapacity('fd00::5')).to.equal(false);
    });

    it('a /120 excludes only the network address: 255 values, .ff included', () => {
      const range = new IPRange('fd00::/120');
      expect(range.size).to.equal(255);
      expect(range.bandOffset).to.equal(16);
      expect(range.valueAt(254)).to.equal('fd00::ff');
      expect(range.offsetOf('fd00::ff')).to.equal(254);
      expect(range.offsetOf('fd00::')).to.equal(undefined);
      expect(range.offsetOf('fd00::100')).to.equal(undefined);
    });

    it('a /112 holds 65,535 values', () => {
      expect(new IPRange('fd00::/112').size).to.equal(65_535);
    });

    it('writes values in canonical text: lower case, compressed', () => {
      const range = new IPRange('FD00:0:0:0::/120');
      expect(range.text).to.equal('fd00::/120');
      expect(range.valueAt(9)).to.equal('fd00::a');
      expect(range.offsetOf('FD00:0000::000A')).to.equal(9);
      expect(new IPRange('fd00:0:0:1::/64').valueAt(0)).to.equal('fd00:0:0:1::1');
    });

    it('an IPv4 address has no offset in an IPv6 range', () => {
      expect(new IPRange('fd00::/120').offsetOf('10.0.0.1')).to.equal(undefined);
      expect(new IPRange('fd00::/120').beyondCapacity('10.0.0.1')).to.equal(false);
    });

    it('a CIDR wider than /64 is refused', () => {
      expect(() => new IPRange('fd00::/63')).to.throw(
        RangeError,
        'fd00::/63 is too wide: an IPv6 service range may be at most a /64',
      );
    });

    it('a CIDR with host bits set is refused', () => {
      expect(() => new IPRange('fd00::1/120')).to.throw(
        RangeError,
        'fd00::1/120 has host bits set; the range is fd00::/120',
      );
    });
  });

  describe('ipBandOffset', () => {
    it('is 0 up to 16 addresses, then min(max(16, addresses / 16), 256), within the slots', () => {
      expect(ipBandOffset(16n, 14)).to.equal(0);
      expect(ipBandOffset(32n, 30)).to.equal(16);
      expect(ipBandOffset(512n, 510)).to.equal(32);
      expect(ipBandOffset(4096n, 4094)).to.equal(256);
      expect(ipBandOffset(1n << 64n, 65_536)).to.equal(256);
      expect(ipBandOffset(32n, 10)).to.equal(10);
    });
  });
});

describe('PortRange', () => {
  it('30000-32767 holds 2768 ports, 30000-30085 static', () => {
    const range = new PortRange('30000-32767');
    expect(range.text).to.equal('30000-32767');
    expect(range.first).to.equal(30000);
    expect(range.last).to.equal(32767);
    expect(range.size).to.equal(2768);
    expect(range.bandOffset).to.equal(86);
    expect(range.staticBand()).to.equal('30000-30085');
    expect(range.valueAt(85)).to.equal(30085);
    expect(range.valueAt(86)).to.equal(30086);
  });

  it('offset 0 is the first port; ports outside the range, or no port numbers, have no offset', () => {
    const range = new PortRange('30000-32767');
    expect(range.offsetOf(30000)).to.equal(0);
    expect(range.offsetOf(32767)).to.equal(2767);
    expect(range.offsetOf(29999)).to.equal(undefined);
    expect(range.offsetOf(32768)).to.equal(undefined);
    expect(range.offsetOf(30000.5)).to.equal(undefined);
  });

  it('a range of 16 ports or fewer has no static band', () => {
    const range = new PortRange('30000-30015');
    expect(range.size).to.equal(16);
    expect(range.bandOffset).to.equal(0);
    expect(range.staticBand()).to.equal(undefined);
  });

  it('a range of 17 ports has the minimum static band of 16', () => {
    const range = new PortRange('30000-30016');
    expect(range.bandOffset).to.equal(16);
    expect(range.staticBand()).to.equal('30000-30015');
  });

  it('the static band is capped at 128 ports', () => {
    expect(new PortRange('1-65535').bandOffset).to.equal(128);
    expect(portBandOffset(65_535)).to.equal(128);
    expect(portBandOffset(2768)).to.equal(86);
  });

  it('a single port is a range of one', () => {
    const range = new PortRange('30007');
    expect(range.text).to.equal('30007-30007');
    expect(range.size).to.equal(1);
    expect(range.offsetOf(30007)).to.equal(0);
  });

  for (const text of ['0-10', '32767-30000', '30000-65536', 'abc', '30000-', '-5', '30000-32767x', '']) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => new PortRange(text)).to.throw(
        RangeError,
        `${JSON.stringify(text)} is not a port range like 30000-32767 (ports 1-65535)`,
      );
    });
  }
});
