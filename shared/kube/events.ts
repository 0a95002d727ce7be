/**
 * An events recorder writing core/v1 Events, like client-go's `tools/record`.
 *
 * Guarantees:
 * - `event()` is fire-and-forget: it never throws and never waits on the API server. Writes go
 *   through one serialized queue (at most `maxPending` waiting; beyond that events are dropped,
 *   like client-go's full broadcaster channel). Write errors are logged, never thrown.
 * - Spam filter (client-go's EventSourceObjectSpamFilter): per involved object, a token bucket
 *   of `burst` 25 refilled by one token every 5 minutes; events beyond it are dropped.
 * - Aggregation: an event identical to one recorded in the last 10 minutes (same object, type,
 *   reason and message) increments that Event's `count` and moves its `lastTimestamp` (a replace
 *   of the stored object) instead of creating a new Event. If that Event is gone (Events expire),
 *   a new one is created.
 * - Both caches are LRUs of 4096 keys, so memory is bounded whatever the object churn.
 * - Event names are `<object name>.<16 hex digits>` (nanoseconds, as client-go); `source.component`
 *   and `reportingComponent` are the component, `reportingInstance` the host name.
 * - `flush()` resolves when every event recorded before (or during) the call has been written or
 *   has failed.
 */
import { hostname } from 'node:os';
import type { CoreV1Event } from '@kubernetes/client-node';
import { type Clock, type Timer, realClock } from '../clock.ts';
import { kref, nopLogger, type Logger } from '../log.ts';
import type { KubeClient } from './client.ts';
import { FencedError, hasStatusCause, isAlreadyExists, isConflict, isNotFound } from './errors.ts';

export type EventType = 'Normal' | 'Warning';

/** The involved object. An empty or missing namespace (cluster-scoped object) records in `default`. */
export interface EventObjectRef {
  kind: string;
  apiVersion?: string;
  namespace?: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

/** Where Events are written. `update` replaces an Event previously returned by the sink. */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
  update(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
}

export class KubeEventSink implements EventSink {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    return this.client.core.createNamespacedEvent({ namespace, body: event });
  }

  update(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    return this.client.core.replaceNamespacedEvent({
      name: event.metadata.name ?? '',
      namespace,
      body: event,
    });
  }
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** `source.component` and `reportingComponent`, e.g. `service-controller-manager`. */
  component: string;
  clock?: Clock;
  log?: Logger;
  /** `reportingInstance`; the host name by default. */
  host?: string;
  /** Events waiting to be written beyond which new ones are dropped. Default 1000. */
  maxPending?: number;
  /** A write taking longer is abandoned (logged). Default 30 s. */
  writeTimeoutMs?: number;
}

const AGGREGATION_WINDOW_MS = 10 * 60 * 1000;
const CACHE_SIZE = 4096;
const SPAM_BURST = 25;
const SPAM_REFILL_MS = 5 * 60 * 1000;
/** Names are DNS subdomains of at most 253 characters; the suffix takes 17. */
const MAX_NAME_PREFIX = 253 - 17;

/** A Map kept in recency order: `get` refreshes, `set` evicts the least recently used. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

interface Recorded {
  /** The Event as the server returned it (with its resourceVersion). */
  stored: CoreV1Event;
  lastSeenMs: number;
}

export class EventRecorder {
  private readonly sink: EventSink;
  private readonly component: string;
  private readonly host: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly maxPending: number;
  private readonly writeTimeoutMs: number;
  private readonly buckets = new Lru<Bucket>(CACHE_SIZE);
  /** Only touched by writes, which are serialized: every key maps to the last Event written. */
  private readonly recent = new Lru<Recorded>(CACHE_SIZE);
  /** The last write in the queue; it never rejects. */
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private seq = 0;

  constructor(opts: EventRecorderOptions) {
    this.sink = opts.sink;
    this.component = opts.component;
    this.host = (opts.host ?? hostname()).slice(0, 128);
    this.clock = opts.clock ?? realClock;
    this.log = (opts.log ?? nopLogger).child({ component: 'events' });
    this.maxPending = opts.maxPending ?? 1000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 30_000;
  }

  /** Records an event; never throws, never waits. */
  event(ref: EventObjectRef, type: EventType, reason: string, message: string): void {
    try {
      const now = this.clock.now();
      const wall = this.clock.wallTime();
      const fields = { object: kref(ref.namespace, ref.name), kind: ref.kind, type, reason, message };
      if (!this.allow(spamKey(ref), now)) {
        this.log.v(4).info('event dropped by the spam filter', fields);
        return;
      }
      if (this.pending >= this.maxPending) {
        this.log.v(2).info('event dropped: too many events waiting to be written', fields);
        return;
      }
      this.log.v(3).info('Event occurred', fields);
      this.pending++;
      this.tail = this.tail.then(async () => {
        try {
          await this.write(ref, type, reason, message, now, wall);
        } catch (err) {
          // A deposed leader's events are refused by the fence: expected, not an error.
          if (err instanceof FencedError) this.log.v(2).info('event not written: fenced', fields);
          else this.log.error('writing an event failed', err, fields);
        } finally {
          this.pending--;
        }
      });
    } catch (err) {
      this.log.error('recording an event failed', err);
    }
  }

  /** Resolves when every event recorded so far is written (or has failed). */
  async flush(): Promise<void> {
    for (;;) {
      const tail = this.tail;
      await tail;
      if (tail === this.tail) return;
    }
  }

  /** The spam filter's token bucket for this object. */
  private allow(key: string, now: number): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: SPAM_BURST, lastMs: now };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(SPAM_BURST, bucket.tokens + Math.max(0, now - bucket.lastMs) / SPAM_REFILL_MS);
    bucket.lastMs = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** `at` (monotonic) ages the aggregation cache; `wall` is the timestamp written. */
  private async write(
    ref: EventObjectRef,
    type: EventType,
    reason: string,
    message: string,
    at: number,
    wall: number,
  ) {
    const key = aggregationKey(ref, type, reason, message);
    const namespace = ref.namespace || 'default';
    const seen = this.recent.get(key);
    if (seen && at - seen.lastSeenMs <= AGGREGATION_WINDOW_MS) {
      const next: CoreV1Event = {
        ...seen.stored,
        count: (seen.stored.count ?? 1) + 1,
        lastTimestamp: new Date(wall),
      };
      try {
        const stored = await this.bounded(() => this.sink.update(namespace, next));
        this.recent.set(key, { stored, lastSeenMs: at });
        return;
      } catch (err) {
        if (isConflict(err)) {
          // Our copy is stale: start over with a new Event next time.
          this.recent.delete(key);
          throw err;
        }
        if (!isNotFound(err)) throw err;
        // The Event expired or was deleted: create a new one.
      }
    }
    const event = this.makeEvent(ref, namespace, type, reason, message, wall);
    try {
      const stored = await this.bounded(() => this.sink.create(namespace, event));
      this.recent.set(key, { stored, lastSeenMs: at });
    } catch (err) {
      if (isAlreadyExists(err) || hasStatusCause(err, 'NamespaceTerminating')) {
        this.log
          .v(5)
          .info('server rejected the event; not retrying', { object: kref(namespace, ref.name), reason });
        return;
      }
      throw err;
    }
  }

  private makeEvent(
    ref: EventObjectRef,
    namespace: string,
    type: EventType,
    reason: string,
    message: string,
    wall: number,
  ): CoreV1Event {
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${namePrefix(ref.name)}.${this.suffix(wall)}`, namespace },
      involvedObject: {
        kind: ref.kind,
        apiVersion: ref.apiVersion,
        namespace: ref.namespace || undefined,
        name: ref.name,
        uid: ref.uid,
        resourceVersion: ref.resourceVersion,
        fieldPath: ref.fieldPath,
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: new Date(wall),
      lastTimestamp: new Date(wall),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.host,
    };
  }

  /** 16 hex digits of "nanoseconds": ms * 1e6 plus a per-process sequence, so names never repeat. */
  private suffix(wall: number): string {
    const nanos = BigInt(Math.max(0, Math.trunc(wall))) * 1_000_000n + BigInt(this.seq++ % 1_000_000);
    return nanos.toString(16).padStart(16, '0').slice(-16);
  }

  private async bounded<T>(op: () => Promise<T>): Promise<T> {
    let timer: Timer | undefined;
    try {
      return await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = this.clock.setTimer(
            () => reject(new Error(`event write timed out after ${this.writeTimeoutMs} ms`)),
            this.writeTimeoutMs,
          );
        }),
      ]);
    } finally {
      timer?.cancel();
    }
  }
}

function namePrefix(name: string): string {
  if (name.length <= MAX_NAME_PREFIX) return name;
  return name.slice(0, MAX_NAME_PREFIX).replace(/[^a-z0-9]+$/, '');
}

function spamKey(ref: EventObjectRef): string {
  return [ref.kind, ref.apiVersion ?? '', ref.namespace ?? '', ref.name, ref.uid ?? ''].join('\u0000');
}

function aggregationKey(ref: EventObjectRef, type: string, reason: string, message: string): string {
  return [spamKey(ref), ref.fieldPath ?? '', type, reason, message].join('\u0000');
}
