/**
 * An in-memory RangeAllocationStore for unit tests: compare-and-swap on resourceVersion like the
 * API server, a 409 shaped as the API's (so `isConflict` sees it), and hooks to hold a replace
 * pending or make it fail, so a test can queue operations while a write is in flight.
 */
import { RangeAllocator } from '../../../shared/allocator/allocator.ts';
import type { ValueRange } from '../../../shared/allocator/ranges.ts';
import {
  type RangeAllocation,
  type RangeAllocationStore,
  rangeAllocationObject,
} from '../../../shared/allocator/storage.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';

export function conflictError(name: string): KubeApiError {
  return new KubeApiError(
    409,
    `Operation cannot be fulfilled on rangeallocations.scm.dev "${name}": the object has been modified`,
    { kind: 'Status', reason: 'Conflict', code: 409 },
  );
}

export class MemoryRangeAllocationStore implements RangeAllocationStore {
  private readonly objects = new Map<string, RangeAllocation>();
  private version = 0;
  private readonly holds: Promise<void>[] = [];
  private readonly failures: unknown[] = [];
  getCalls = 0;
  replaceCalls = 0;
  createCalls = 0;

  /** Stores `obj` as another writer would: a new resourceVersion, no check. */
  put(obj: RangeAllocation): RangeAllocation {
    const stored = structuredClone(obj);
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.version) };
    this.objects.set(stored.metadata.name ?? '', stored);
    return structuredClone(stored);
  }

  /** A copy of what is stored now. */
  stored(name: string): RangeAllocation | undefined {
    const obj = this.objects.get(name);
    return obj && structuredClone(obj);
  }

  /** The next replace call waits until the returned function is called. */
  holdNextReplace(): () => void {
    let release!: () => void;
    this.holds.push(new Promise<void>((resolve) => (release = resolve)));
    return release;
  }

  /** The next replace call throws `err` (after any hold). */
  failNextReplace(err: unknown): void {
    this.failures.push(err);
  }

  async get(name: string): Promise<RangeAllocation | undefined> {
    this.getCalls++;
    await Promise.resolve();
    return this.stored(name);
  }

  async create(obj: RangeAllocation): Promise<RangeAllocation> {
    this.createCalls++;
    await Promise.resolve();
    const name = obj.metadata.name ?? '';
    if (this.objects.has(name)) {
      throw new KubeApiError(409, `rangeallocations.scm.dev "${name}" already exists`, {
        kind: 'Status',
        reason: 'AlreadyExists',
        code: 409,
      });
    }
    return this.put(obj);
  }

  async replace(obj: RangeAllocation): Promise<RangeAllocation> {
    this.replaceCalls++;
    const hold = this.holds.shift();
    if (hold) await hold;
    else await Promise.resolve();
    if (this.failures.length > 0) throw this.failures.shift();
    const name = obj.metadata.name ?? '';
    const current = this.objects.get(name);
    if (!current) {
      throw new KubeApiError(404, `rangeallocations.scm.dev "${name}" not found`, {
        kind: 'Status',
        reason: 'NotFound',
        code: 404,
      });
    }
    if (current.metadata.resourceVersion !== obj.metadata.resourceVersion) throw conflictError(name);
    return this.put(obj);
  }
}

/** A RangeAllocation for `range` with `values` allocated. */
export function mapObject<V>(name: string, range: ValueRange<V>, values: readonly V[]): RangeAllocation {
  const allocator = new RangeAllocator(range);
  for (const v of values) {
    if (allocator.allocate(v) !== 'allocated') throw new Error(`fixture: cannot allocate ${String(v)}`);
  }
  return rangeAllocationObject(name, allocator.snapshot(), {
    size: allocator.size(),
    used: allocator.used(),
  });
}

/** The values the stored map `name` holds, ascending. */
export function storedValues<V>(store: MemoryRangeAllocationStore, name: string, range: ValueRange<V>): V[] {
  const obj = store.stored(name);
  if (!obj) throw new Error(`no RangeAllocation ${name}`);
  const allocator = new RangeAllocator(range);
  allocator.restore(obj);
  return [...allocator.values()];
}
