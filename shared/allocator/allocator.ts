/**
 * A range allocator: a value range (ranges.ts) over an allocation bitmap (bitmap.ts), with the
 * results a caller needs to tell the user why a value was refused. In memory and pure; storage.ts
 * and committer.ts persist it.
 */
import { AllocationBitmap } from './bitmap.ts';
import type { ValueRange } from './ranges.ts';

export type AllocateResult = 'allocated' | 'taken' | 'out-of-range';

/** The stored form of an allocator: the range text and the bitmap bytes, base64. */
export interface RangeSnapshot {
  range: string;
  data: string;
}

export class RangeAllocator<V> {
  readonly range: ValueRange<V>;
  private readonly bitmap: AllocationBitmap;
  private readonly random: () => number;

  constructor(range: ValueRange<V>, random: () => number = Math.random) {
    this.range = range;
    this.random = random;
    this.bitmap = new AllocationBitmap(range.size, range.bandOffset, random);
  }

  allocate(value: V): AllocateResult {
    const offset = this.range.offsetOf(value);
    if (offset === undefined) return 'out-of-range';
    return this.bitmap.allocate(offset) ? 'allocated' : 'taken';
  }

  /** A free value, upper band first; undefined when the range is full. `skip` leaves values alone. */
  allocateNext(skip?: (value: V) => boolean): V | undefined {
    const offset = this.bitmap.allocateNext(skip && ((o) => skip(this.range.valueAt(o))));
    return offset === undefined ? undefined : this.range.valueAt(offset);
  }

  /** Frees `value`; false when it was not allocated (or is outside the range). */
  release(value: V): boolean {
    const offset = this.range.offsetOf(value);
    return offset !== undefined && this.bitmap.release(offset);
  }

  has(value: V): boolean {
    const offset = this.range.offsetOf(value);
    return offset !== undefined && this.bitmap.has(offset);
  }

  used(): number {
    return this.bitmap.used();
  }

  free(): number {
    return this.bitmap.free();
  }

  size(): number {
    return this.range.size;
  }

  /** Every allocated value, ascending. */
  *values(): IterableIterator<V> {
    for (const offset of this.bitmap.offsets()) yield this.range.valueAt(offset);
  }

  snapshot(): RangeSnapshot {
    return { range: this.range.text, data: Buffer.from(this.bitmap.snapshot()).toString('base64') };
  }

  /**
   * Replaces the allocation with a stored one. Throws a `RestoreError` for a different range (a
   * map kept for another range must be rebuilt, never reused) or unreadable data.
   */
  restore(snapshot: RangeSnapshot): void {
    if (snapshot.range !== this.range.text) {
      throw new RestoreError('range', `the map is for ${snapshot.range}, not ${this.range.text}`);
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(snapshot.data)) {
      throw new RestoreError('data', 'the bitmap is not base64');
    }
    try {
      this.bitmap.restoreBits(new Uint8Array(Buffer.from(snapshot.data, 'base64')));
    } catch (err) {
      throw new RestoreError('data', (err as Error).message);
    }
  }

  clone(): RangeAllocator<V> {
    const copy = new RangeAllocator(this.range, this.random);
    copy.restore(this.snapshot());
    return copy;
  }
}

export class RestoreError extends Error {
  /** `range`: the map is for another range; `data`: its bitmap cannot be read. */
  readonly problem: 'range' | 'data';

  constructor(problem: 'range' | 'data', message: string) {
    super(message);
    this.name = 'RestoreError';
    this.problem = problem;
  }
}
