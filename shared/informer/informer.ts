/**
 * SharedInformer: one Reflector and one Store per kind, shared by every controller that reads the
 * kind, fanning each change out to the registered handlers.
 *
 * Contract:
 * - Handlers run synchronously, in registration order, in the order changes happened. They must
 *   be cheap (map to keys and enqueue); a handler that throws is logged and does not stop others.
 * - A handler added after the informer has objects first receives an `add` for each of them.
 * - `update(old, new)` is called only when the resourceVersion changed (a re-list of an unchanged
 *   object is not an update).
 * - `hasSynced()` turns true after the first complete list and stays true.
 * - Nothing starts in the constructor: `run(signal)` starts, and resolves when `signal` aborts.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
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

  constructor(deps: {
    resource: ResourceType<T>;
    client: ListWatchClient;
    clock: Clock;
    log: Logger;
    opts?: ReflectorOptions;
  }) {
    this.resource = deps.resource;
    this.log = deps.log;
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

  run(signal: AbortSignal): Promise<void> {
    return this.reflector.run(signal);
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
