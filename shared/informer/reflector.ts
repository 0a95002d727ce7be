/**
 * Reflector: keeps a Store equal to the API server's view of one kind, and reports each change.
 *
 * Guarantees:
 * - The first complete (paged) list replaces the store and marks it synced; after that, a watch
 *   from the list's resourceVersion (with bookmarks) applies every change in order.
 * - Any error (connection refused, a stream cut, a 5xx, a 410 Gone) ends the watch; the reflector
 *   lists again and replaces the store, reporting an add, an update or a delete for exactly the
 *   objects that differ from what it held, so consumers see every deletion they missed.
 *   410 re-lists at once; other errors wait a jittered exponential backoff (0.8 s .. 30 s) that
 *   resets after a list succeeds.
 * - A watch that stays silent longer than `idleTimeoutMs` is abandoned (silent TCP death), and
 *   every `relistPeriodMs` the reflector lists again as a watchdog.
 * - `managedFields` and the kind's `trim` fields are removed before objects are deserialized.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import type { Clock } from '../clock.ts';
import type { ListWatchClient, WatchEvent } from '../kube/client.ts';
import { isGone, KubeApiError, describeError } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import type { ResourceType } from './resources.ts';
import { keyOf } from '../kube/labels.ts';
import type { Store } from './store.ts';

export interface ReflectorSink<T> {
  onAdd(obj: T): void;
  onUpdate(oldObj: T, newObj: T): void;
  onDelete(obj: T): void;
  onSynced(): void;
}

export interface ReflectorOptions {
  pageSize?: number;
  relistPeriodMs?: number;
  idleTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side watch timeout range; each watch picks a random value in [min, 2*min). */
  minWatchTimeoutSeconds?: number;
}

type RawObject = Record<string, unknown> & { metadata?: { resourceVersion?: string } };
interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: RawObject[];
}

class RelistRequested extends Error {}

export class Reflector<T extends KubernetesObject> {
  private readonly resource: ResourceType<T>;
  private readonly client: ListWatchClient;
  private readonly store: Store<T>;
  private readonly sink: ReflectorSink<T>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly opts: Required<ReflectorOptions>;
  private lastListAt = 0;

  constructor(deps: {
    resource: ResourceType<T>;
    client: ListWatchClient;
    store: Store<T>;
    sink: ReflectorSink<T>;
    clock: Clock;
    log: Logger;
    opts?: ReflectorOptions;
  }) {
    this.resource = deps.resource;
    this.client = deps.client;
    this.store = deps.store;
    this.sink = deps.sink;
    this.clock = deps.clock;
    this.log = deps.log;
    const opts = deps.opts ?? {};
    this.opts = {
      pageSize: opts.pageSize ?? 500,
      relistPeriodMs: opts.relistPeriodMs ?? 30 * 60_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5 * 60_000,
      minBackoffMs: opts.minBackoffMs ?? 800,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      minWatchTimeoutSeconds: opts.minWatchTimeoutSeconds ?? 300,
    };
  }

  /** Lists and watches until `signal` aborts. Never rejects because of API errors. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const rv = await this.listAndReplace(signal);
        failures = 0;
        await this.watchFrom(rv, signal);
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof RelistRequested) continue;
        if (isGone(err)) {
          this.log.v(2).info('watch expired (410), listing again', { kind: this.resource.kind });
          continue;
        }
        failures++;
        const delay = this.backoff(failures);
        this.log.info('list/watch failed, retrying', {
          kind: this.resource.kind,
          err: describeError(err),
          retryInMs: Math.round(delay),
        });
        try {
          await this.clock.sleep(delay, signal);
        } catch {
          break;
        }
      }
    }
  }

  private backoff(failures: number): number {
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** (failures - 1));
    // Jitter up to +100% spreads reconnects of many informers after an API server restart.
    return Math.min(this.opts.maxBackoffMs, base * (1 + Math.random()));
  }

  private decode(raw: RawObject): T {
    const meta = raw.metadata as Record<string, unknown> | undefined;
    if (meta) delete meta.managedFields;
    this.resource.trim?.(raw);
    return ObjectSerializer.deserialize(raw, this.resource.modelType, '') as T;
  }

  /** Paged list; replaces the store and reports the differences. Returns the list's resourceVersion. */
  private async listAndReplace(signal: AbortSignal): Promise<string> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = (await this.client.getJson(
        this.resource.listPath,
        { limit: this.opts.pageSize, continue: cont },
        signal,
      )) as RawList;
      for (const raw of page.items ?? []) {
        const obj = this.decode(raw);
        fresh.set(keyOf(obj), obj);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);

    for (const key of this.store.keys()) {
      if (!fresh.has(key)) {
        const old = this.store.delete(key);
        if (old) this.sink.onDelete(old);
      }
    }
    for (const obj of fresh.values()) {
      const old = this.store.upsert(obj);
      if (!old) this.sink.onAdd(obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.sink.onUpdate(old, obj);
    }
    this.lastListAt = this.clock.now();
    this.sink.onSynced();
    return rv;
  }

  private async watchFrom(startRv: string, signal: AbortSignal): Promise<void> {
    let rv = startRv;
    while (!signal.aborted) {
      if (this.clock.now() - this.lastListAt >= this.opts.relistPeriodMs) throw new RelistRequested();
      const watchAbort = new AbortController();
      const onOuterAbort = (): void => watchAbort.abort();
      signal.addEventListener('abort', onOuterAbort, { once: true });
      let idle = this.clock.setTimer(() => watchAbort.abort(), this.opts.idleTimeoutMs);
      const min = this.opts.minWatchTimeoutSeconds;
      const timeoutSeconds = Math.floor(min + Math.random() * min);
      let idleAborted = false;
      try {
        await this.client.watch(
          this.resource.listPath,
          { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds },
          (ev: WatchEvent) => {
            idle.cancel();
            idle = this.clock.setTimer(() => {
              idleAborted = true;
              watchAbort.abort();
            }, this.opts.idleTimeoutMs);
            rv = this.apply(ev) ?? rv;
          },
          watchAbort.signal,
        );
      } catch (err) {
        if (idleAborted && !signal.aborted) throw new RelistRequested();
        throw err;
      } finally {
        idle.cancel();
        signal.removeEventListener('abort', onOuterAbort);
      }
    }
  }

  /** Applies one watch event to the store; returns the new resourceVersion to resume from. */
  private apply(ev: WatchEvent): string | undefined {
    if (ev.type === 'ERROR') {
      const status = ev.object as { code?: number; message?: string; reason?: string };
      throw new KubeApiError(status.code ?? 500, status.message ?? 'watch error', status);
    }
    const raw = ev.object as RawObject;
    const rv = raw.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') return rv;
    const obj = this.decode(raw);
    const key = keyOf(obj);
    if (ev.type === 'DELETED') {
      this.store.delete(key);
      this.sink.onDelete(obj);
    } else {
      const old = this.store.upsert(obj);
      if (old) this.sink.onUpdate(old, obj);
      else this.sink.onAdd(obj);
    }
    return rv;
  }
}
