import { expect } from 'chai';
import { RangeAllocator, RestoreError } from '../../../shared/allocator/allocator.ts';
import { IPRange, PortRange } from '../../../shared/allocator/ranges.ts';

function restoreError(fn: () => void): RestoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RestoreError) return err;
    throw err;
  }
  throw new Error('expected a RestoreError');
}

describe('RangeAllocator', () => {
  describe('allocate', () => {
    it('answers allocated for a free value in range, then taken for it', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      expect(allocator.allocate('10.0.0.5')).to.equal('allocated');
      expect(allocator.allocate('10.0.0.5')).to.equal('taken');
      expect(allocator.has('10.0.0.5')).to.equal(true);
      expect(allocator.used()).to.equal(1);
      expect(allocator.free()).to.equal(253);
      expect(allocator.size()).to.equal(254);
    });

    it('reads a value in any text form Kubernetes accepts: 010.0.0.5 is 10.0.0.5', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      expect(allocator.allocate('010.0.0.5')).to.equal('allocated');
      expect(allocator.allocate('10.0.0.5')).to.equal('taken');
      expect([...allocator.values()]).to.deep.equal(['10.0.0.5']);
    });

    it('answers out-of-range outside the CIDR, for network and broadcast, another family and no IP', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      for (const ip of ['10.0.1.5', '10.0.0.0', '10.0.0.255', 'fd00::5', 'bogus']) {
        expect(allocator.allocate(ip), ip).to.equal('out-of-range');
      }
      expect(allocator.used()).to.equal(0);
    });

    it('allocates ports of a PortRange the same way', () => {
      const allocator = new RangeAllocator(new PortRange('30000-32767'));
      expect(allocator.allocate(30007)).to.equal('allocated');
      expect(allocator.allocate(30007)).to.equal('taken');
      expect(allocator.allocate(29999)).to.equal('out-of-range');
      expect(allocator.allocate(32768)).to.equal('out-of-range');
    });
  });

  describe('allocateNext', () => {
    it('hands out .17 first on a /24 (the first address of the upper band)', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'), () => 0);
      expect(allocator.allocateNext()).to.equal('10.0.0.17');
      expect(allocator.allocateNext()).to.equal('10.0.0.18');
    });

    it('hands out 30086 first from 30000-32767', () => {
      const allocator = new RangeAllocator(new PortRange('30000-32767'), () => 0);
      expect(allocator.allocateNext()).to.equal(30086);
    });

    it('answers undefined when the range is full, after every value was handed out once', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/28'), () => 0);
      const got: string[] = [];
      for (let i = 0; i < 14; i++) {
        const ip = allocator.allocateNext();
        if (ip === undefined) throw new Error(`range full after ${i}`);
        got.push(ip);
      }
      expect(got).to.deep.equal(Array.from({ length: 14 }, (_, i) => `10.0.0.${i + 1}`));
      expect(allocator.allocateNext()).to.equal(undefined);
      expect(allocator.used()).to.equal(14);
      expect(allocator.free()).to.equal(0);
    });

    it('passes values, not offsets, to skip', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'), () => 0);
      expect(allocator.allocateNext((ip) => ip === '10.0.0.17' || ip === '10.0.0.18')).to.equal('10.0.0.19');
      expect(allocator.has('10.0.0.17')).to.equal(false);
    });
  });

  describe('release', () => {
    it('frees an allocated value once; false for a free value or one outside the range', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      allocator.allocate('10.0.0.5');
      expect(allocator.release('10.0.0.5')).to.equal(true);
      expect(allocator.release('10.0.0.5')).to.equal(false);
      expect(allocator.release('10.0.1.5')).to.equal(false);
      expect(allocator.release('bogus')).to.equal(false);
      expect(allocator.used()).to.equal(0);
      expect(allocator.allocate('10.0.0.5')).to.equal('allocated');
    });
  });

  describe('snapshot and restore', () => {
    it('a snapshot is the range text and the bitmap bytes in base64', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/28'));
      allocator.allocate('10.0.0.1');
      allocator.allocate('10.0.0.10');
      // offset 0 -> byte 0 mask 0x01; offset 9 -> byte 1 mask 0x02.
      expect(allocator.snapshot()).to.deep.equal({ range: '10.0.0.0/28', data: 'AQI=' });
    });

    it('restoring a snapshot into a new allocator keeps every value', () => {
      const range = new IPRange('10.0.0.0/24');
      const source = new RangeAllocator(range);
      for (const ip of ['10.0.0.1', '10.0.0.17', '10.0.0.128', '10.0.0.254']) source.allocate(ip);
      const copy = new RangeAllocator(range);
      copy.allocate('10.0.0.99');
      copy.restore(source.snapshot());
      expect([...copy.values()]).to.deep.equal(['10.0.0.1', '10.0.0.17', '10.0.0.128', '10.0.0.254']);
      expect(copy.used()).to.equal(4);
      expect(copy.has('10.0.0.99')).to.equal(false);
    });

    it('a snapshot of a port range round-trips', () => {
      const range = new PortRange('30000-32767');
      const source = new RangeAllocator(range);
      for (const port of [30000, 30053, 32767]) source.allocate(port);
      const copy = new RangeAllocator(range);
      copy.restore(source.snapshot());
      expect([...copy.values()]).to.deep.equal([30000, 30053, 32767]);
    });

    it('refuses a map kept for a different range with problem "range"', () => {
      const other = new RangeAllocator(new IPRange('10.0.1.0/24')).snapshot();
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      allocator.allocate('10.0.0.5');
      const err = restoreError(() => allocator.restore(other));
      expect(err.problem).to.equal('range');
      expect(err.message).to.equal('the map is for 10.0.1.0/24, not 10.0.0.0/24');
      expect([...allocator.values()]).to.deep.equal(['10.0.0.5']);
    });

    it('refuses data that is not base64 with problem "data"', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      const err = restoreError(() => allocator.restore({ range: '10.0.0.0/24', data: '!!not base64!!' }));
      expect(err.problem).to.equal('data');
      expect(err.message).to.equal('the bitmap is not base64');
    });

    it('refuses a bitmap of the wrong length with problem "data"', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      allocator.allocate('10.0.0.5');
      const short = Buffer.alloc(31).toString('base64');
      const err = restoreError(() => allocator.restore({ range: '10.0.0.0/24', data: short }));
      expect(err.problem).to.equal('data');
      expect(err.message).to.equal('the bitmap holds 31 bytes, a range of 254 needs 32');
      expect([...allocator.values()]).to.deep.equal(['10.0.0.5']);
    });

    it('refuses a bitmap that marks values past the range with problem "data"', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/28'));
      // 14 values: offset 14 (byte 1, mask 0x40) does not exist.
      const data = Buffer.from([0x00, 0x40]).toString('base64');
      const err = restoreError(() => allocator.restore({ range: '10.0.0.0/28', data }));
      expect(err.problem).to.equal('data');
    });

    it('a clone is independent of the original', () => {
      const allocator = new RangeAllocator(new IPRange('10.0.0.0/24'));
      allocator.allocate('10.0.0.5');
      const copy = allocator.clone();
      copy.allocate('10.0.0.6');
      allocator.release('10.0.0.5');
      expect([...copy.values()]).to.deep.equal(['10.0.0.5', '10.0.0.6']);
      expect([...allocator.values()]).to.deep.equal([]);
    });
  });
});
