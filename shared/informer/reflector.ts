/**
 * Reflector: keeps a Store equal to the API server's view of one kind, and reports each change.
 *
 * Guarantees:
 * - Initial state: a streaming list (a watch with `sendInitialEvents=true`, WatchList) where the
 *   API server serves it, else a paged list from the watch cache (`resourceVersion=0`). The store
 *   is replaced when the state is complete (the `k8s.io/initial-events-end` bookmark, or the last
 *   page), reporting an add, an update or a delete for exactly the objects that differ from what
 *   it held, and marked synced. A server that refuses streaming lists is asked for paged lists
 *   from then on.
 * - Then one watch after another from the last resourceVersion seen (bookmarks keep it fresh),
 *   each event applied in order. A watch the server closes (its timeout, `timeoutSeconds` random
 *   in [min, 2 min) as client-go), a dropped stream, a failed request or a watch silent for longer
 *   than `idleTimeoutMs` (a dead TCP connection) is followed by a new watch from that
 *   resourceVersion: no list, so no event is missed or reported twice.
 * - Only a 410 Gone ("too old resource version": etcd compacted past it) re-lists: a streaming
 *   or paged list not older than the last resourceVersion (`resourceVersionMatch=NotOlderThan`,
 *   served from the watch cache); a list refused with 410 too is retried as a consistent read
 *   (`resourceVersion` unset).
 * - Every retry (errors, 410s, watches that end at once) waits a jittered exponential backoff
 *   (0.8 s .. 30 s, up to +100 % jitter) that resets once a watch delivers an event or runs for a
 *   second; a watch the server ends normally after that is renewed at once.
 * - Every `relistPeriodMs` (default 30 min) the reflector lists again as a watchdog against events
 *   lost by our own code; that list is also served from the watch cache.
 * - `managedFields` and the kind's `trim` fields are removed before objects are deserialized.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import type { Clock } from '../clock.ts';
import type { ListWatchClient, Query, WatchEvent } from '../kube/client.ts';
import { isGone, KubeApiError, describeError, statusCode } from '../kube/errors.ts';
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
  /** Ask for streaming lists (WatchList) first; default true. */
  streamingList?: boolean;
  /** A number in [0, 1) for jitter; `Math.random` by default. */
  random?: () => number;
}

type RawObject = Record<string, unknown> & {
  metadata?: { resourceVersion?: string; annotations?: Record<string, string> };
};
interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: RawObject[];
}

/** The annotation of the bookmark that ends a streaming list's initial events. */
export const INITIAL_EVENTS_END_ANNOTATION = 'k8s.io/initial-events-end';

/** Where the next list reads from (client-go's relistResourceVersion). */
type ListFrom =
  | { kind: 'cache' } // resourceVersion=0: any state the watch cache holds
  | { kind: 'notOlderThan'; rv: string } // the watch cache, at least as new as rv
  | { kind: 'consistent' }; // resourceVersion unset: the newest state

/** A watch that ended without error, and why. */
type WatchEnd = 'closed' | 'idle' | 'relist-due';

/** A watch shorter than this that delivered nothing counts as a failure (backoff). */
const SHORT_WATCH_MS = 1_000;

class StreamingListRefused extends Error {}

export class Reflector<T extends KubernetesObject> {
  private readonly resource: ResourceType<T>;
  private readonly client: ListWatchClient;
  private readonly store: Store<T>;
  private readonly sink: ReflectorSink<T>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly opts: Required<ReflectorOptions>;
  /** The resourceVersion the next watch resumes from; undefined until the first list. */
  private lastRv: string | undefined;
  private listFrom: ListFrom = { kind: 'cache' };
  private streaming: boolean;
  private lastListAt = 0;
  /** Requests made, by kind: for tests and the debug log. */
  readonly requests = { lists: 0, streamingLists: 0, watches: 0 };

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
      streamingList: opts.streamingList ?? true,
      random: opts.random ?? Math.random,
    };
    this.streaming = this.opts.streamingList;
  }

  /** Lists and watches until `signal` aborts. Never rejects because of API errors. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const started = this.clock.now();
      let delivered = false;
      try {
        if (this.lastRv === undefined) {
          delivered = await this.listOrStream(signal);
        } else {
          const end = await this.watch(signal, () => (delivered = true));
          if (end === 'relist-due') {
            this.relist({ kind: 'notOlderThan', rv: this.lastRv });
            failures = 0;
            continue;
          }
          if (end === 'idle') this.log.v(2).info('watch idle; watching again', { kind: this.resource.kind });
        }
        // A watch that ran is renewed at once; one that ended at once with nothing backs off, so a
        // server that keeps closing is not hammered.
        failures = delivered || this.clock.now() - started >= SHORT_WATCH_MS ? 0 : failures + 1;
      } catch (err) {
        if (signal.aborted) break;
        // The first retry after a watch that ran is immediate (a cut connection); then backoff.
        failures = delivered || this.clock.now() - started >= SHORT_WATCH_MS ? 0 : failures + 1;
        if (err instanceof StreamingListRefused) {
          failures = 0;
        } else if (isGone(err)) {
          this.log.info('resourceVersion expired (410); listing again', {
            kind: this.resource.kind,
            resourceVersion: this.lastRv,
          });
          // A list refused as too old is retried as a consistent read.
          this.relist(
            this.lastRv === undefined ? { kind: 'consistent' } : { kind: 'notOlderThan', rv: this.lastRv },
          );
          // Every re-list waits a jittered backoff, as client-go's.
          failures = Math.max(failures, 1);
        } else {
          this.log.info('list/watch failed; retrying', {
            kind: this.resource.kind,
            err: describeError(err),
            resumeFrom: this.lastRv,
          });
        }
      }
      if (failures === 0) continue;
      try {
        await this.clock.sleep(this.backoff(failures), signal);
      } catch {
        break;
      }
    }
  }

  /** The next round lists (from `from`) instead of watching. */
  private relist(from: ListFrom): void {
    this.listFrom = from;
    this.lastRv = undefined;
  }

  private backoff(failures: number): number {
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** (failures - 1));
    // Jitter up to +100% spreads reconnects of many informers after an API server restart.
    return Math.min(this.opts.maxBackoffMs, base * (1 + this.opts.random()));
  }

  private decode(raw: RawObject): T {
    const meta = raw.metadata as Record<string, unknown> | undefined;
    if (meta) delete meta.managedFields;
    this.resource.trim?.(raw);
    return ObjectSerializer.deserialize(raw, this.resource.modelType, '') as T;
  }

  /** The initial state: streamed where served, else paged. True when it delivered anything. */
  private async listOrStream(signal: AbortSignal): Promise<boolean> {
    if (this.streaming) {
      let delivered = false;
      try {
        await this.watch(signal, () => (delivered = true), this.listFrom);
        return delivered;
      } catch (err) {
        if (!delivered && isStreamingRefusal(err)) {
          this.streaming = false;
          this.log.info('the API server does not serve streaming lists; using paged lists', {
            kind: this.resource.kind,
            err: describeError(err),
          });
          throw new StreamingListRefused();
        }
        throw err;
      }
    }
    await this.pagedList(signal);
    return true;
  }

  /** Paged list; replaces the store and reports the differences. */
  private async pagedList(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    const from = this.listFrom;
    this.requests.lists++;
    do {
      // resourceVersion goes with the first page only; `continue` carries it after that.
      const query: Query = cont
        ? { limit: this.opts.pageSize, continue: cont }
        : { limit: this.opts.pageSize, ...listQuery(from, false) };
      const page = (await this.client.getJson(this.resource.listPath, query, signal)) as RawList;
      for (const raw of page.items ?? []) {
        const obj = this.decode(raw);
        fresh.set(keyOf(obj), obj);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    this.replace(fresh, rv);
  }

  /** Makes the store equal to `fresh`, reporting the differences; resumes watching from `rv`. */
  private replace(fresh: Map<string, T>, rv: string): void {
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
    this.lastRv = rv;
    this.listFrom = { kind: 'cache' };
    this.lastListAt = this.clock.now();
    this.sink.onSynced();
  }

  /**
   * One watch from `lastRv`, or, with `initial`, a streaming list that goes on as a watch once its
   * initial events are complete. Resolves how it ended when it ended without an error; calls
   * `onDelivered` at the first event.
   */
  private async watch(signal: AbortSignal, onDelivered: () => void, initial?: ListFrom): Promise<WatchEnd> {
    const watchAbort = new AbortController();
    const onOuterAbort = (): void => watchAbort.abort();
    signal.addEventListener('abort', onOuterAbort, { once: true });
    let ended: WatchEnd | undefined;
    const end = (why: WatchEnd): void => {
      ended = why;
      watchAbort.abort();
    };
    let idle = this.clock.setTimer(() => end('idle'), this.opts.idleTimeoutMs);
    const relistIn = this.lastListAt + this.opts.relistPeriodMs - this.clock.now();
    const relistTimer = initial ? undefined : this.clock.setTimer(() => end('relist-due'), relistIn);
    /** The initial events of a streaming list, until its end bookmark. */
    let pending: Map<string, T> | undefined = initial ? new Map() : undefined;
    const min = this.opts.minWatchTimeoutSeconds;
    const query: Query = {
      allowWatchBookmarks: true,
      timeoutSeconds: Math.floor(min + this.opts.random() * min),
      ...(initial
        ? { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', ...listQuery(initial, true) }
        : { resourceVersion: this.lastRv }),
    };
    if (initial) this.requests.streamingLists++;
    else this.requests.watches++;
    let first = true;
    try {
      await this.client.watch(
        this.resource.listPath,
        query,
        (ev: WatchEvent) => {
          if (ended) return;
          if (first) {
            first = false;
            onDelivered();
          }
          idle.cancel();
          idle = this.clock.setTimer(() => end('idle'), this.opts.idleTimeoutMs);
          if (pending) {
            if (this.collectInitial(ev, pending)) {
              const complete = pending;
              pending = undefined;
              this.replace(complete, rvOf(ev) ?? '');
            }
          } else {
            this.lastRv = this.apply(ev) ?? this.lastRv;
          }
        },
        watchAbort.signal,
      );
      if (pending) throw new Error('the streaming list ended before its initial events were complete');
      return ended ?? 'closed';
    } catch (err) {
      if (ended && !signal.aborted && !pending) return ended;
      if (ended === 'idle' && pending) throw new Error('the streaming list stalled', { cause: err });
      throw err;
    } finally {
      idle.cancel();
      relistTimer?.cancel();
      signal.removeEventListener('abort', onOuterAbort);
    }
  }

  /** Adds an initial event of a streaming list to `pending`; true at the end bookmark. */
  private collectInitial(ev: WatchEvent, pending: Map<string, T>): boolean {
    if (ev.type === 'ERROR') throw statusError(ev);
    const raw = ev.object as RawObject;
    if (ev.type === 'BOOKMARK') return raw.metadata?.annotations?.[INITIAL_EVENTS_END_ANNOTATION] === 'true';
    const obj = this.decode(raw);
    if (ev.type === 'DELETED') pending.delete(keyOf(obj));
    else pending.set(keyOf(obj), obj);
    return false;
  }

  /** Applies one watch event to the store; returns the new resourceVersion to resume from. */
  private apply(ev: WatchEvent): string | undefined {
    if (ev.type === 'ERROR') throw statusError(ev);
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

function rvOf(ev: WatchEvent): string | undefined {
  return (ev.object as RawObject).metadata?.resourceVersion;
}

function statusError(ev: WatchEvent): KubeApiError {
  const status = ev.object as { code?: number; message?: string; reason?: string };
  return new KubeApiError(status.code ?? 500, status.message ?? 'watch error', status);
}

/** The resourceVersion parameters of a list (paged, or `streaming`) that reads from `from`. */
function listQuery(from: ListFrom, streaming: boolean): Query {
  switch (from.kind) {
    case 'cache':
      // Paged: "0" is any state the watch cache holds. A streaming list is always served by the
      // watch cache; unset asks it for a state at least as new as the request (client-go's
      // first WatchList does the same).
      return streaming ? {} : { resourceVersion: '0' };
    case 'notOlderThan':
      return { resourceVersion: from.rv, resourceVersionMatch: 'NotOlderThan' };
    case 'consistent':
      return {};
  }
}

/**
 * A refusal of a streaming list request itself (the server does not know or allow
 * `sendInitialEvents`): 400, 403 on the feature, 422 Invalid, 501. A 410 is not one.
 */
function isStreamingRefusal(err: unknown): boolean {
  const code = statusCode(err);
  return code === 400 || code === 422 || code === 501 || code === 405;
}
