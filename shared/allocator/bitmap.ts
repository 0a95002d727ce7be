/**
 * The allocation bitmap: one bit per offset of a range, in two bands.
 *
 * Offsets below `bandOffset` are the lower ("static") band, the rest the upper ("dynamic") band.
 * `allocateNext` scans the upper band first, from a random point and wrapping inside it, and only
 * then the lower band, so users who pick their own values (usually low ones) rarely collide with
 * values handed out on demand (kube-apiserver's bitmap allocator, KEP-3070 / KEP-3668).
 *
 * The stored form is a fixed-length byte array, bit `i` at byte `i >> 3`, mask `1 << (i & 7)`;
 * `restoreBits` refuses any other length. Pure: no I/O, randomness injected.
 */

export class AllocationBitmap {
  readonly size: number;
  readonly bandOffset: number;
  private readonly bits: Uint8Array;
  private count = 0;
  private readonly random: () => number;

  constructor(size: number, bandOffset: number, random: () => number = Math.random) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`bitmap size ${size} is not a count`);
    if (!Number.isInteger(bandOffset) || bandOffset < 0 || bandOffset > size) {
      throw new RangeError(`band offset ${bandOffset} is outside 0..${size}`);
    }
    this.size = size;
    this.bandOffset = bandOffset;
    this.bits = new Uint8Array(byteLength(size));
    this.random = random;
  }

  has(offset: number): boolean {
    return this.inBounds(offset) && (this.bits[offset >> 3] & (1 << (offset & 7))) !== 0;
  }

  /** Marks `offset`; false when it is outside the bitmap or already marked. */
  allocate(offset: number): boolean {
    if (!this.inBounds(offset) || this.has(offset)) return false;
    this.bits[offset >> 3] |= 1 << (offset & 7);
    this.count++;
    return true;
  }

  /**
   * Marks and returns a free offset, the upper band first; undefined when none is free.
   * `skip(offset)` true leaves an offset alone although its bit is clear (a value someone else
   * holds, for example an IPAddress object the API server keeps).
   */
  allocateNext(skip?: (offset: number) => boolean): number | undefined {
    const upper = this.scan(this.bandOffset, this.size, skip) ?? this.scan(0, this.bandOffset, skip);
    if (upper !== undefined) this.allocate(upper);
    return upper;
  }

  /** Clears `offset`; false when it was not marked. */
  release(offset: number): boolean {
    if (!this.has(offset)) return false;
    this.bits[offset >> 3] &= ~(1 << (offset & 7));
    this.count--;
    return true;
  }

  used(): number {
    return this.count;
  }

  free(): number {
    return this.size - this.count;
  }

  /** Every marked offset, ascending. */
  *offsets(): IterableIterator<number> {
    for (let byte = 0; byte < this.bits.length; byte++) {
      const b = this.bits[byte];
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) yield byte * 8 + bit;
    }
  }

  /** A copy of the bits in their stored form. */
  snapshot(): Uint8Array {
    return this.bits.slice();
  }

  /** Replaces every bit with `bytes` (from `snapshot`); throws when the length does not fit. */
  restoreBits(bytes: Uint8Array): void {
    if (bytes.length !== this.bits.length) {
      throw new RangeError(
        `the bitmap holds ${bytes.length} bytes, a range of ${this.size} needs ${this.bits.length}`,
      );
    }
    // Bits past `size` in the last byte would count as used values that do not exist.
    const spare = this.bits.length * 8 - this.size;
    if (spare > 0 && (bytes[bytes.length - 1] & (0xff << (8 - spare))) !== 0) {
      throw new RangeError(`the bitmap marks offsets past the range's ${this.size} values`);
    }
    this.bits.set(bytes);
    this.count = 0;
    for (const b of bytes) this.count += popcount(b);
  }

  private inBounds(offset: number): boolean {
    return Number.isInteger(offset) && offset >= 0 && offset < this.size;
  }

  /** A free offset in [from, to), scanning from a random start and wrapping; undefined if none. */
  private scan(from: number, to: number, skip?: (offset: number) => boolean): number | undefined {
    const width = to - from;
    if (width <= 0) return undefined;
    const start = Math.floor(this.random() * width);
    for (let i = 0; i < width; i++) {
      const offset = from + ((start + i) % width);
      if (!this.has(offset) && !(skip?.(offset) ?? false)) return offset;
    }
    return undefined;
  }
}

export function byteLength(size: number): number {
  return Math.ceil(size / 8);
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x !== 0; x &= x - 1) n++;
  return n;
}
