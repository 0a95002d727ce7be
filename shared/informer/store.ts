/**
 * A thread-of-control-free cache of objects keyed by "namespace/name" (or "name" for
 * cluster-scoped kinds), with secondary indexes.
 *
 * Invariant: for every index `i`, `indices[i][v]` holds key `k` exactly when `items[k]` exists and
 * `indexers[i](items[k])` includes `v`. Every mutation keeps this true before it returns.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { keyOf } from '../kube/labels.ts';

export type IndexFunc<T> = (obj: T) => readonly string[];

export const NAMESPACE_INDEX = 'namespace';

export const namespaceIndex: IndexFunc<KubernetesObject> = (obj) =>
  obj.metadata?.namespace ? [obj.metadata.namespace] : [];

export interface ReadonlyStore<T> {
  get(key: string): T | undefined;
  list(): T[];
  keys(): string[];
  byIndex(indexName: string, value: string): T[];
  /** How many objects `byIndex` would return, without building the list. */
  indexSize(indexName: string, value: string): number;
  size(): number;
}

export class Store<T extends KubernetesObject> implements ReadonlyStore<T> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    this.addIndexers({ [NAMESPACE_INDEX]: namespaceIndex, ...indexers });
  }

  /**
   * Adds indexes; existing items are indexed at once. Adding the same function under the same
   * name again is a no-op (two controllers sharing an informer may both ask for an index); a
   * different function under an existing name is an error.
   */
  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      const existing = this.indexers.get(name);
      if (existing === fn) continue;
      if (existing) throw new Error(`index ${name} already exists`);
      this.indexers.set(name, fn);
      const index = new Map<string, Set<string>>();
      this.indices.set(name, index);
      for (const [key, obj] of this.items) this.indexOne(index, fn, key, obj);
    }
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  size(): number {
    return this.items.size;
  }

  byIndex(indexName: string, value: string): T[] {
    const keys = this.index(indexName).get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const obj = this.items.get(k);
      if (obj) out.push(obj);
    }
    return out;
  }

  indexSize(indexName: string, value: string): number {
    return this.index(indexName).get(value)?.size ?? 0;
  }

  private index(indexName: string): Map<string, Set<string>> {
    const index = this.indices.get(indexName);
    if (!index) throw new Error(`no index named ${indexName}`);
    return index;
  }

  /** Inserts or replaces; returns the previous object, if any. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) this.indexOne(this.indices.get(name)!, fn, key, obj);
    return old;
  }

  /** Removes by key; returns the removed object, if any. */
  delete(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  private indexOne(index: Map<string, Set<string>>, fn: IndexFunc<T>, key: string, obj: T): void {
    for (const v of fn(obj)) {
      let set = index.get(v);
      if (!set) index.set(v, (set = new Set()));
      set.add(key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const set = index.get(v);
        if (!set) continue;
        set.delete(key);
        if (set.size === 0) index.delete(v);
      }
    }
  }
}
