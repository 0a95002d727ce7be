/**
 * SharedInformer: one Reflector and one Store per kind, shared by every controller that reads the
 * kind, fanning each change out to the registered handlers.
 *
 * Contract:
 * - Handlers run synchronously, in registration order, in the order changes happened. They must
 *   be cheap (map to keys and enqueue); a handler that throws is logged and does not stop others.
 * - A handler added after the informer has objects first receives an `add` for each of them.
 * - `update(old, new)` is called when the resourceVersion changed (a re-list of an unchanged
 *   object is not an update), and at every resync: every `resyncPeriodMs` (if set) each cached
 *   object is re-delivered as `update(obj, obj)` (client-go's resync), so a controller corrects
 *   drift that no event announces (a handler that compares resourceVersions skips it).
 * - `hasSynced()` turns true after the first complete list and stays true.
 * - Nothing starts in the constructor: `run(signal)` starts, and resolves when `signal` aborts.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clock, Timer } from '../clock.ts';
import type { ListWatchClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { Reflector, type ReflectorOptions } from './reflector.ts';
import type { ResourceType } from './resources.ts';
import { type IndexFunc, type ReadonlyStore, Store } from './store.ts';

export interface EventHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export class SharedInformer<T extends KubernetesObject> {
  readonly resource: ResourceType<T>;
  private readonly store = new Store<T>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly log: Logger;
  private readonly reflector: Reflector<T>;
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  private readonly clock: Clock;
  private readonly resyncPeriodMs: number;

  constructor(deps: {
    resource: ResourceType<T>;
    client: ListWatchClient;
    clock: Clock;
    log: Logger;
    opts?: ReflectorOptions;
    /** Re-delivers every cached object this often; 0 or absent: never. */
    resyncPeriodMs?: number;
  }) {
    this.resource = deps.resource;
    this.log = deps.log;
    this.clock = deps.clock;
    this.resyncPeriodMs = deps.resyncPeriodMs ?? 0;
    this.reflector = new Reflector<T>({
      resource: deps.resource,
      client: deps.client,
      store: this.store,
      clock: deps.clock,
      log: deps.log,
      opts: deps.opts,
      sink: {
        onAdd: (obj) => this.dispatch((h) => h.add?.(obj)),
        onUpdate: (o, n) => this.dispatch((h) => h.update?.(o, n)),
        onDelete: (obj) => this.dispatch((h) => h.delete?.(obj)),
        onSynced: () => this.markSynced(),
      },
    });
  }

  /** The cache. Objects in it are shared: never mutate them. */
  get lister(): ReadonlyStore<T> {
    return this.store;
  }

  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    this.store.addIndexers(indexers);
  }

  addEventHandler(handlers: EventHandlers<T>): void {
    this.handlers.push(handlers);
    for (const obj of this.store.list()) this.call(handlers, (h) => h.add?.(obj));
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once synced, or rejects when `signal` aborts first. */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(new Error(`stopped before the ${this.resource.kind} cache synced`));
      signal.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    let timer: Timer | undefined;
    const schedule = (): void => {
      timer = this.clock.setTimer(() => {
        this.resync();
        schedule();
      }, this.resyncPeriodMs);
    };
    if (this.resyncPeriodMs > 0) schedule();
    try {
      await this.reflector.run(signal);
    } finally {
      timer?.cancel();
    }
  }

  /** The resync period in ms (0: none). */
  get resyncPeriod(): number {
    return this.resyncPeriodMs;
  }

  /** Requests the reflector made so far (lists, streaming lists, watches). */
  get requests(): Readonly<{ lists: number; streamingLists: number; watches: number }> {
    return this.reflector.requests;
  }

  /** Re-delivers every cached object as `update(obj, obj)`; nothing before the first sync. */
  private resync(): void {
    if (!this.synced) return;
    this.log.v(4).info('resync', { kind: this.resource.kind, objects: this.store.size() });
    for (const obj of this.store.list()) this.dispatch((h) => h.update?.(obj, obj));
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private dispatch(fn: (h: EventHandlers<T>) => void): void {
    for (const h of this.handlers) this.call(h, fn);
  }

  private call(h: EventHandlers<T>, fn: (h: EventHandlers<T>) => void): void {
    try {
      fn(h);
    } catch (err) {
      this.log.error('event handler failed', err, { kind: this.resource.kind });
    }
  }
}
