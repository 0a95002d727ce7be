/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's `leaderelection` semantics.
 *
 * Guarantees:
 * - Acquire: a candidate takes the lease when there is none, when its holder is empty (released),
 *   or when the record has not changed for `leaseDuration` as measured on this candidate's own
 *   clock since it first saw that record. Like client-go we time expiry from when we *observed*
 *   the record (resourceVersion change), not from the holder's `renewTime`, so clock skew between
 *   replicas cannot shorten a lease. Attempts repeat every `retryPeriod` (jittered by up to 1.2x).
 * - Every write is a compare-and-swap on the resourceVersion: a 409 means another candidate won
 *   the race, and we do not lead.
 * - `leaseTransitions` is incremented whenever the holder changes to us; `acquireTime` is kept
 *   while we renew.
 * - While leading, the lease is renewed every `retryPeriod`. If no renewal succeeds within
 *   `renewDeadline` (each attempt, hung or not, is bounded by the deadline) or another holder is
 *   seen, we stop leading: the leader signal aborts, `onStoppedLeading` runs and `run()` resolves.
 *   The caller then exits non-zero. Because `renewDeadline < leaseDuration`, we stop before any
 *   other candidate may take over.
 * - When `signal` aborts while leading: the leader signal aborts, `onStoppedLeading` runs (and is
 *   awaited, so controllers can stop first), then, if `releaseOnCancel` (default), the lease is
 *   released by clearing `holderIdentity`, so a standby takes over at once instead of after
 *   `leaseDuration`.
 * - All timing goes through the injected clock.
 */
import { V1MicroTime, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { type Clock, realClock } from './clock.ts';
import type { KubeClient } from './kube/client.ts';
import { describeError, isConflict, isNotFound } from './kube/errors.ts';
import { kref, nopLogger, type Logger } from './log.ts';

/** The election-relevant part of a Lease. `holderIdentity` '' means released. */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: Date;
  renewTime?: Date;
  leaseTransitions: number;
  /** Set on records read from the store; `update` is conditional on it. */
  resourceVersion?: string;
}

/**
 * Where the lease lives. `get` resolves undefined when there is no lease; `create` and `update`
 * resolve the stored record with its new resourceVersion. `update` fails with a 409 when
 * `record.resourceVersion` is not the current one; `create` fails with a 409 when it exists.
 */
export interface LeaseStore {
  get(): Promise<LeaseRecord | undefined>;
  create(record: LeaseRecord): Promise<LeaseRecord>;
  update(record: LeaseRecord): Promise<LeaseRecord>;
}

export interface LeaderElectionOptions {
  lockName: string;
  lockNamespace: string;
  /** Unique per candidate, e.g. `<hostname>_<uuid>`. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  releaseOnCancel?: boolean;
  store: LeaseStore;
  clock?: Clock;
  log?: Logger;
  /** A number in [0, 1) for jitter; `Math.random` by default. Tests pass a constant. */
  random?: () => number;
}

export interface LeaderCallbacks {
  /** Called once when we start leading; `leaderSignal` aborts when we stop. Must not block. */
  onStartedLeading(leaderSignal: AbortSignal): void;
  /** Called once after we stop leading (only if we led). Awaited before the lease is released. */
  onStoppedLeading(): void | Promise<void>;
  /** Called when the observed holder changes (ourselves included). */
  onNewLeader?(identity: string): void;
}

/** client-go's JitterFactor for acquire retries. */
const JITTER_FACTOR = 1.2;

export class LeaderElector {
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly releaseOnCancel: boolean;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;

  /** The last lease record we read or wrote, and when (our clock) it last changed. */
  private observed: LeaseRecord | undefined;
  private observedTimeMs = 0;
  /** Bumped per attempt; an attempt abandoned at its deadline must not touch `observed`. */
  private attemptGen = 0;
  private leading = false;
  private running = false;
  private reportedLeader = '';

  constructor(opts: LeaderElectionOptions) {
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.releaseOnCancel = opts.releaseOnCancel ?? true;
    this.store = opts.store;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.log = (opts.log ?? nopLogger).child({
      lease: kref(opts.lockNamespace, opts.lockName),
      identity: opts.identity,
    });
    // The same checks as client-go's NewLeaderElector.
    if (!this.identity) throw new Error('leader election: identity must not be empty');
    if (!(this.retryPeriodMs > 0 && this.renewDeadlineMs > 0 && this.leaseDurationMs > 0)) {
      throw new Error('leader election: lease duration, renew deadline and retry period must be > 0');
    }
    if (this.leaseDurationMs <= this.renewDeadlineMs) {
      throw new Error('leader election: lease duration must be greater than the renew deadline');
    }
    if (this.renewDeadlineMs <= JITTER_FACTOR * this.retryPeriodMs) {
      throw new Error(`leader election: renew deadline must be greater than ${JITTER_FACTOR} x retry period`);
    }
  }

  /** True between `onStartedLeading` and the moment we stop leading. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until we lead, leads until the lease is lost or `signal` aborts, then resolves.
   * Resolving while `signal` is not aborted means leadership was lost (or could not be held).
   */
  async run(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error('leader election: run() is already running');
    this.running = true;
    try {
      this.log.info('attempting to acquire leader lease');
      if (!(await this.acquire(signal, callbacks))) return;
      if (signal.aborted) {
        // Won the lease while being cancelled: give it back at once.
        if (this.releaseOnCancel) await this.release();
        return;
      }
      this.log.info('successfully acquired lease');
      await this.lead(signal, callbacks);
    } finally {
      this.running = false;
    }
  }

  private async lead(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void> {
    const leader = new AbortController();
    this.leading = true;
    let outcome: 'cancelled' | 'lost' | 'failed';
    try {
      callbacks.onStartedLeading(leader.signal);
      outcome = await this.renewLoop(signal, callbacks);
    } catch (err) {
      this.log.error('onStartedLeading failed; stopping leading', err);
      outcome = 'failed';
    }
    this.leading = false;
    if (outcome === 'lost') this.log.error('leader lease lost: could not renew it within the renew deadline');
    else this.log.info('stopping leading', { reason: outcome });
    leader.abort(new Error(outcome === 'lost' ? 'leader lease lost' : 'leader election stopped'));
    try {
      await callbacks.onStoppedLeading();
    } catch (err) {
      this.log.error('onStoppedLeading failed', err);
    }
    if (outcome !== 'lost' && this.releaseOnCancel) await this.release();
  }

  /** Tries every jittered retry period until we hold the lease (true) or `signal` aborts (false). */
  private async acquire(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<boolean> {
    for (;;) {
      if (signal.aborted) return false;
      const ok = await this.attempt();
      this.reportTransition(callbacks);
      if (ok) return true;
      const wait = this.retryPeriodMs + this.random() * JITTER_FACTOR * this.retryPeriodMs;
      try {
        await this.clock.sleep(wait, signal);
      } catch {
        return false;
      }
    }
  }

  /** Renews every retry period; resolves 'cancelled' when `signal` aborts, 'lost' when renewal fails. */
  private async renewLoop(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<'cancelled' | 'lost'> {
    for (;;) {
      try {
        await this.clock.sleep(this.retryPeriodMs, signal);
      } catch {
        return 'cancelled';
      }
      const deadline = this.clock.now() + this.renewDeadlineMs;
      for (;;) {
        const ok = await this.attempt(deadline - this.clock.now());
        this.reportTransition(callbacks);
        if (ok) break;
        if (signal.aborted) return 'cancelled';
        const holder = this.observed?.holderIdentity;
        if (holder && holder !== this.identity) {
          this.log.error('the lease is held by another candidate', undefined, { holder });
          return 'lost';
        }
        const left = deadline - this.clock.now();
        if (left <= 0) return 'lost';
        try {
          await this.clock.sleep(Math.min(this.retryPeriodMs, left), signal);
        } catch {
          return 'cancelled';
        }
        if (this.clock.now() >= deadline) return 'lost';
      }
    }
  }

  /** One `tryAcquireOrRenew`, abandoned (false) when it takes longer than `timeoutMs`. */
  private attempt(timeoutMs = this.renewDeadlineMs): Promise<boolean> {
    const gen = ++this.attemptGen;
    return new Promise<boolean>((resolve) => {
      const timer = this.clock.setTimer(
        () => {
          if (gen === this.attemptGen) this.attemptGen++; // orphan the attempt
          this.log.error('lease request did not finish in time', undefined, { timeoutMs });
          resolve(false);
        },
        Math.max(0, timeoutMs),
      );
      this.tryAcquireOrRenew(gen).then(
        (ok) => {
          timer.cancel();
          resolve(ok);
        },
        (err: unknown) => {
          timer.cancel();
          this.log.error('lease attempt failed', err);
          resolve(false);
        },
      );
    });
  }

  /** client-go's tryAcquireOrRenew. Never throws; false when we do not hold the lease after it. */
  private async tryAcquireOrRenew(gen: number): Promise<boolean> {
    const now = this.clock.now();
    const desired: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: new Date(now),
      renewTime: new Date(now),
      leaseTransitions: 0,
    };

    // Fast path: we hold it and our view is fresh; renew without a read.
    const held = this.observed;
    if (held && held.holderIdentity === this.identity && this.observedValid(now) && held.resourceVersion) {
      try {
        const updated = await this.store.update({
          ...desired,
          acquireTime: held.acquireTime,
          leaseTransitions: held.leaseTransitions,
          resourceVersion: held.resourceVersion,
        });
        return this.setObserved(gen, updated);
      } catch (err) {
        this.log
          .v(2)
          .info('renewing the lease without a read failed; reading it', { err: describeError(err) });
      }
    }

    let current: LeaseRecord | undefined;
    try {
      current = await this.store.get();
    } catch (err) {
      this.log.error('error retrieving the lease', err);
      return false;
    }
    if (gen !== this.attemptGen) return false;
    if (!current) {
      try {
        return this.setObserved(gen, await this.store.create(desired));
      } catch (err) {
        if (isConflict(err)) this.log.v(2).info('another candidate created the lease first');
        else this.log.error('error creating the lease', err);
        return false;
      }
    }

    if (!this.observed || this.observed.resourceVersion !== current.resourceVersion) {
      this.observed = current;
      this.observedTimeMs = now;
    }
    if (
      current.holderIdentity !== '' &&
      current.holderIdentity !== this.identity &&
      this.observedValid(now)
    ) {
      this.log.v(4).info('the lease is held by another candidate and has not expired', {
        holder: current.holderIdentity,
      });
      return false;
    }

    const next: LeaseRecord = { ...desired, resourceVersion: current.resourceVersion };
    if (current.holderIdentity === this.identity) {
      next.acquireTime = current.acquireTime;
      next.leaseTransitions = current.leaseTransitions;
    } else {
      next.leaseTransitions = current.leaseTransitions + 1;
    }
    try {
      return this.setObserved(gen, await this.store.update(next));
    } catch (err) {
      if (isConflict(err)) this.log.v(2).info('lost the race to update the lease (409)');
      else this.log.error('error updating the lease', err);
      return false;
    }
  }

  /** Records what we wrote, unless the attempt was abandoned; true when it counts. */
  private setObserved(gen: number, record: LeaseRecord): boolean {
    if (gen !== this.attemptGen) return false;
    this.observed = record;
    this.observedTimeMs = this.clock.now();
    return true;
  }

  private observedValid(now: number): boolean {
    return this.observedTimeMs + this.leaseDurationMs > now;
  }

  private reportTransition(callbacks: LeaderCallbacks): void {
    const holder = this.observed?.holderIdentity ?? '';
    if (holder === '' || holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (holder !== this.identity) this.log.info('new leader elected', { holder });
    try {
      callbacks.onNewLeader?.(holder);
    } catch (err) {
      this.log.error('onNewLeader failed', err);
    }
  }

  /** Gives the lease up if we hold it: empty holder, 1 s duration (as client-go's release). */
  private async release(): Promise<void> {
    const held = this.observed;
    if (!held || held.holderIdentity !== this.identity) return;
    const gen = ++this.attemptGen;
    const now = this.clock.now();
    const timeout = new AbortController();
    const timer = this.clock.setTimer(() => timeout.abort(), this.renewDeadlineMs);
    try {
      const update = this.store.update({
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: new Date(now),
        renewTime: new Date(now),
        leaseTransitions: held.leaseTransitions,
        resourceVersion: held.resourceVersion,
      });
      const released = await Promise.race([
        update,
        new Promise<never>((_, reject) =>
          timeout.signal.addEventListener('abort', () => reject(new Error('timed out')), { once: true }),
        ),
      ]);
      this.setObserved(gen, released);
      this.log.info('released the leader lease');
    } catch (err) {
      this.log.error('failed to release the leader lease', err);
    } finally {
      timer.cancel();
    }
  }
}

/** A `LeaseStore` on a real Lease through the API server. */
export class KubeLeaseStore implements LeaseStore {
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  /** The last Lease read or written: its labels, annotations and other spec fields are kept. */
  private last: V1Lease | undefined;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
  }

  async get(): Promise<LeaseRecord | undefined> {
    try {
      this.last = await this.client.coordination.readNamespacedLease({
        name: this.name,
        namespace: this.namespace,
      });
      return leaseToRecord(this.last);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord): Promise<LeaseRecord> {
    this.last = await this.client.coordination.createNamespacedLease({
      namespace: this.namespace,
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name, namespace: this.namespace },
        spec: recordToSpec(record),
      },
    });
    return leaseToRecord(this.last);
  }

  async update(record: LeaseRecord): Promise<LeaseRecord> {
    const base = this.last;
    const metadata = { ...(base?.metadata ?? {}), name: this.name, namespace: this.namespace };
    delete metadata.managedFields; // omitted: the server keeps them
    metadata.resourceVersion = record.resourceVersion;
    this.last = await this.client.coordination.replaceNamespacedLease({
      name: this.name,
      namespace: this.namespace,
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata,
        spec: { ...(base?.spec ?? {}), ...recordToSpec(record) },
      },
    });
    return leaseToRecord(this.last);
  }
}

/**
 * MicroTime fields must be written with 6 fractional digits (the API server rejects `.123Z`):
 * `V1MicroTime` serializes that way. Read back, client-node leaves them as strings.
 */
export function recordToSpec(record: LeaseRecord): V1LeaseSpec {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime ? new V1MicroTime(record.acquireTime.getTime()) : undefined,
    renewTime: record.renewTime ? new V1MicroTime(record.renewTime.getTime()) : undefined,
    leaseTransitions: record.leaseTransitions,
  };
}

export function leaseToRecord(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: toDate(spec.acquireTime),
    renewTime: toDate(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion,
  };
}

function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return new Date(value.getTime());
  if (typeof value === 'string' && value !== '') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}
