import { expect } from 'chai';
import { AllocationBitmap, byteLength } from '../../../shared/allocator/bitmap.ts';

/** A `random` that answers `values` in turn, then the last one forever. */
function randoms(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}

/** Calls allocateNext until it answers undefined; the offsets in the order handed out. */
function drain(bitmap: AllocationBitmap): number[] {
  const out: number[] = [];
  for (let offset = bitmap.allocateNext(); offset !== undefined; offset = bitmap.allocateNext())
    out.push(offset);
  return out;
}

describe('AllocationBitmap', () => {
  describe('allocate, release, has, used, free', () => {
    it('marks an offset once: a second allocate of it answers false', () => {
      const bitmap = new AllocationBitmap(10, 0);
      expect(bitmap.allocate(3)).to.equal(true);
      expect(bitmap.allocate(3)).to.equal(false);
      expect(bitmap.has(3)).to.equal(true);
      expect(bitmap.has(4)).to.equal(false);
      expect(bitmap.used()).to.equal(1);
      expect(bitmap.free()).to.equal(9);
    });

    it('refuses offsets outside 0..size-1 and non-integers, counting nothing', () => {
      const bitmap = new AllocationBitmap(10, 0);
      expect(bitmap.allocate(-1)).to.equal(false);
      expect(bitmap.allocate(10)).to.equal(false);
      expect(bitmap.allocate(1.5)).to.equal(false);
      expect(bitmap.allocate(Number.NaN)).to.equal(false);
      expect(bitmap.has(10)).to.equal(false);
      expect(bitmap.used()).to.equal(0);
      expect(bitmap.free()).to.equal(10);
    });

    it('release clears a marked offset once and answers false for a clear one', () => {
      const bitmap = new AllocationBitmap(10, 0);
      bitmap.allocate(7);
      expect(bitmap.release(7)).to.equal(true);
      expect(bitmap.release(7)).to.equal(false);
      expect(bitmap.release(2)).to.equal(false);
      expect(bitmap.release(99)).to.equal(false);
      expect(bitmap.has(7)).to.equal(false);
      expect(bitmap.used()).to.equal(0);
      expect(bitmap.free()).to.equal(10);
    });

    it('offsets() lists every marked offset ascending, across byte boundaries', () => {
      const bitmap = new AllocationBitmap(20, 0);
      for (const o of [19, 0, 8, 7, 9]) bitmap.allocate(o);
      expect([...bitmap.offsets()]).to.deep.equal([0, 7, 8, 9, 19]);
    });
  });

  describe('allocateNext', () => {
    it('starts in the upper band at the random point: band 8..31, random 0.5 -> 8 + floor(0.5 * 24) = 20', () => {
      const bitmap = new AllocationBitmap(32, 8, () => 0.5);
      expect(bitmap.allocateNext()).to.equal(20);
      expect(bitmap.has(20)).to.equal(true);
      expect(bitmap.used()).to.equal(1);
      // The same start again: 20 is taken, so the scan moves on to 21.
      expect(bitmap.allocateNext()).to.equal(21);
    });

    it('wraps inside the upper band, not into the lower band, when the end of the band is taken', () => {
      // Band 4..15 (12 wide); random 0.99 -> start 11 -> offset 15.
      const bitmap = new AllocationBitmap(16, 4, () => 0.99);
      expect(bitmap.allocateNext()).to.equal(15);
      expect(bitmap.allocateNext()).to.equal(4);
      expect(bitmap.allocateNext()).to.equal(5);
      expect(bitmap.has(0)).to.equal(false);
      expect(bitmap.has(3)).to.equal(false);
    });

    it('hands out the whole upper band before any lower-band offset, then the lower band, then undefined', () => {
      const bitmap = new AllocationBitmap(8, 4, () => 0);
      expect(drain(bitmap)).to.deep.equal([4, 5, 6, 7, 0, 1, 2, 3]);
      expect(bitmap.used()).to.equal(8);
      expect(bitmap.free()).to.equal(0);
    });

    it('scans the lower band from its own random point once the upper band is full', () => {
      // Upper band 4..7 from 0 (random 0), then lower band 0..3 from floor(0.75 * 4) = 3.
      const bitmap = new AllocationBitmap(8, 4, randoms(0, 0, 0, 0, 0.75, 0.75));
      expect([0, 1, 2, 3].map(() => bitmap.allocateNext())).to.deep.equal([4, 5, 6, 7]);
      expect(bitmap.allocateNext()).to.equal(3);
      expect(bitmap.allocateNext()).to.equal(0);
    });

    it('a band offset of 0 makes the whole bitmap one band', () => {
      const bitmap = new AllocationBitmap(4, 0, () => 0.5);
      expect(bitmap.allocateNext()).to.equal(2);
      expect(bitmap.allocateNext()).to.equal(3);
      expect(bitmap.allocateNext()).to.equal(0);
      expect(bitmap.allocateNext()).to.equal(1);
      expect(bitmap.allocateNext()).to.equal(undefined);
    });

    it('a full bitmap answers undefined and changes nothing', () => {
      const bitmap = new AllocationBitmap(3, 1, () => 0);
      for (let o = 0; o < 3; o++) bitmap.allocate(o);
      expect(bitmap.allocateNext()).to.equal(undefined);
      expect(bitmap.used()).to.equal(3);
    });

    it('an empty bitmap (size 0) answers undefined', () => {
      expect(new AllocationBitmap(0, 0).allocateNext()).to.equal(undefined);
    });

    it('skips offsets the predicate names, leaving their bits clear', () => {
      const bitmap = new AllocationBitmap(8, 4, () => 0);
      const skipped: number[] = [];
      const skip = (o: number): boolean => {
        skipped.push(o);
        return o === 4 || o === 5;
      };
      expect(bitmap.allocateNext(skip)).to.equal(6);
      expect(skipped).to.deep.equal([4, 5, 6]);
      expect(bitmap.has(4)).to.equal(false);
      expect(bitmap.has(5)).to.equal(false);
      expect(bitmap.used()).to.equal(1);
    });

    it('falls through to the lower band when the predicate skips every free upper offset', () => {
      const bitmap = new AllocationBitmap(8, 4, () => 0);
      expect(bitmap.allocateNext((o) => o >= 4)).to.equal(0);
    });

    it('answers undefined when the predicate skips every free offset', () => {
      const bitmap = new AllocationBitmap(8, 4, () => 0);
      bitmap.allocate(0);
      expect(bitmap.allocateNext((o) => o !== 0)).to.equal(undefined);
      expect(bitmap.used()).to.equal(1);
    });
  });

  describe('snapshot and restoreBits', () => {
    it('stores bit i at byte i >> 3, mask 1 << (i & 7)', () => {
      const bitmap = new AllocationBitmap(20, 0);
      for (const o of [0, 9, 19]) bitmap.allocate(o);
      expect([...bitmap.snapshot()]).to.deep.equal([0x01, 0x02, 0x08]);
    });

    it('a snapshot restored into a new bitmap of the same size gives the same offsets and counts', () => {
      const source = new AllocationBitmap(20, 4);
      for (const o of [0, 5, 9, 19]) source.allocate(o);
      const copy = new AllocationBitmap(20, 4);
      copy.allocate(3);
      copy.restoreBits(source.snapshot());
      expect([...copy.offsets()]).to.deep.equal([0, 5, 9, 19]);
      expect(copy.has(3)).to.equal(false);
      expect(copy.used()).to.equal(4);
      expect(copy.free()).to.equal(16);
    });

    it('a snapshot is a copy: changing it changes nothing in the bitmap', () => {
      const bitmap = new AllocationBitmap(16, 0);
      bitmap.allocate(1);
      const bytes = bitmap.snapshot();
      bytes[0] = 0xff;
      expect([...bitmap.offsets()]).to.deep.equal([1]);
      expect(bitmap.used()).to.equal(1);
    });

    it('restoreBits refuses a byte array of another length and keeps the bits it had', () => {
      const bitmap = new AllocationBitmap(20, 0);
      bitmap.allocate(2);
      expect(() => bitmap.restoreBits(new Uint8Array(2))).to.throw(
        RangeError,
        'the bitmap holds 2 bytes, a range of 20 needs 3',
      );
      expect(() => bitmap.restoreBits(new Uint8Array(4))).to.throw(RangeError);
      expect([...bitmap.offsets()]).to.deep.equal([2]);
      expect(bitmap.used()).to.equal(1);
    });

    it('restoreBits refuses bits set past the size in the last byte', () => {
      const bitmap = new AllocationBitmap(20, 0);
      bitmap.allocate(2);
      // Offset 20 would be byte 2, mask 0x10.
      expect(() => bitmap.restoreBits(new Uint8Array([0, 0, 0x10]))).to.throw(
        RangeError,
        "the bitmap marks offsets past the range's 20 values",
      );
      expect(() => bitmap.restoreBits(new Uint8Array([0, 0, 0x80]))).to.throw(RangeError);
      expect([...bitmap.offsets()]).to.deep.equal([2]);
    });

    it('restoreBits accepts the last offset of the size (19 of 20)', () => {
      const bitmap = new AllocationBitmap(20, 0);
      bitmap.restoreBits(new Uint8Array([0, 0, 0x08]));
      expect([...bitmap.offsets()]).to.deep.equal([19]);
      expect(bitmap.used()).to.equal(1);
    });
  });

  describe('construction', () => {
    it('refuses a band offset past the size, a negative size and a fractional one', () => {
      expect(() => new AllocationBitmap(8, 9)).to.throw(RangeError, 'band offset 9 is outside 0..8');
      expect(() => new AllocationBitmap(8, -1)).to.throw(RangeError);
      expect(() => new AllocationBitmap(-1, 0)).to.throw(RangeError, 'bitmap size -1 is not a count');
      expect(() => new AllocationBitmap(2.5, 0)).to.throw(RangeError);
    });

    it('a bitmap of n offsets is stored in ceil(n / 8) bytes', () => {
      expect([0, 1, 8, 9, 254, 2768, 65_536].map(byteLength)).to.deep.equal([0, 1, 1, 2, 32, 346, 8192]);
      expect(new AllocationBitmap(254, 16).snapshot().length).to.equal(32);
    });
  });
});
