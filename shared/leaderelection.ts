/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's `leaderelection`
 * semantics, and a write fence client-go does not have.
 *
 * Guarantees:
 * - Acquire: a candidate takes the lease when there is none, when its holder is empty (released),
 *   or when the record has not changed for `leaseDuration` as measured on this candidate's own
 *   monotonic clock since it first saw that record. Like client-go we time expiry from when we
 *   *observed* the record (resourceVersion change), not from the holder's `renewTime`, so clock
 *   skew between replicas cannot shorten a lease. Attempts repeat every `retryPeriod` plus a random
 *   jitter of up to 1.2 x `retryPeriod` (client-go's JitterFactor: 1x to 2.2x the period).
 * - Every write is a compare-and-swap on the resourceVersion: a 409 means another candidate won
 *   the race, and we do not lead.
 * - `leaseTransitions` is incremented whenever the holder changes to us; `acquireTime` is kept
 *   while we renew.
 * - While leading, the lease is renewed every `retryPeriod` until `release()` or loss; renewal
 *   goes on during a graceful drain, so no standby can take over while our last reconciles write.
 *   Leadership is lost (the `lost` signal aborts, once) when no renewal succeeds within
 *   `renewDeadline` (each attempt, hung or not, is aborted at the deadline), when another holder
 *   is seen, or when the fence's validity passes. Because `renewDeadline < leaseDuration`, we stop
 *   before any other candidate may take over.
 * - Fencing: `holds()` is true only while less than `leaseDuration - FENCE_MARGIN_MS` has passed
 *   on the monotonic clock since the *start* of our last successful acquire or renew: the other
 *   candidates count the lease duration from when they saw that write, which is later. A replica
 *   frozen longer than that (SIGSTOP, a long GC pause, a paused VM) wakes with `holds()` false:
 *   the fence (`check()`, called by the client before every write) refuses its writes, the renew
 *   loop does not renew but declares the lease lost, and a watchdog timer at the validity's end
 *   does the same when the renew loop is stuck. The margin covers the gap between the fence check
 *   and the request reaching the API server, and clock-rate differences between replicas.
 * - `release()` closes the fence first, stops renewing, then clears `holderIdentity` (1 s
 *   duration, as client-go), so a standby takes over at once instead of after `leaseDuration`.
 *   After a loss nothing is released (the lease is someone else's, or may be).
 * - All timing goes through the injected clock.
 */
import { V1MicroTime, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { type Clock, realClock, type Timer } from './clock.ts';
import type { KubeClient, WriteFence } from './kube/client.ts';
import { describeError, FencedError, isConflict, isNotFound } from './kube/errors.ts';
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
 * Each call ends (rejects) when `signal` aborts.
 */
export interface LeaseStore {
  get(signal?: AbortSignal): Promise<LeaseRecord | undefined>;
  create(record: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord>;
  update(record: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord>;
}

export interface LeaderElectionOptions {
  lockName: string;
  lockNamespace: string;
  /** Unique per candidate, e.g. `<hostname>_<uuid>`. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  store: LeaseStore;
  clock?: Clock;
  log?: Logger;
  /** A number in [0, 1) for jitter; `Math.random` by default. Tests pass a constant. */
  random?: () => number;
  /** Called when the observed holder changes (ourselves included). */
  onNewLeader?: (identity: string) => void;
}

/** What a replica holds while it leads; from `LeaderElector.acquire`. */
export interface Leadership {
  /** Aborts (once) when leadership is lost; its reason is a `LeaseLostError` saying why. */
  readonly lost: AbortSignal;
  /** True while writes are safe (see the fencing guarantee). */
  holds(): boolean;
  /** Closes the fence, stops renewing and gives the Lease up. Idempotent; nothing after a loss. */
  release(): Promise<void>;
}

export class LeaseLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/** client-go's JitterFactor for acquire retries. */
const JITTER_FACTOR = 1.2;
/** The fence closes this long before the lease could expire for the other candidates. */
export const FENCE_MARGIN_MS = 2_000;

export class LeaderElector implements WriteFence {
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly onNewLeader: ((identity: string) => void) | undefined;

  /** The last lease record we read or wrote, and when (monotonic) it last changed. */
  private observed: LeaseRecord | undefined;
  private observedTimeMs = 0;
  /** Bumped per attempt; an attempt abandoned at its deadline must not touch `observed`. */
  private attemptGen = 0;
  private reportedLeader = '';
  private running = false;
  /** Our current term, from acquire until release or loss. */
  private term: Term | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.store = opts.store;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.onNewLeader = opts.onNewLeader;
    this.log = (opts.log ?? nopLogger).child({
      lease: kref(opts.lockNamespace, opts.lockName),
      identity: opts.identity,
    });
    // The same checks as client-go's NewLeaderElector, and room for the fence.
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
    if (this.leaseDurationMs <= 2 * FENCE_MARGIN_MS) {
      throw new Error(
        `leader election: lease duration must be greater than ${(2 * FENCE_MARGIN_MS) / 1000}s`,
      );
    }
  }

  /** True while we lead and our lease is surely ours (the fence is open). */
  isLeader(): boolean {
    return this.term?.holds() ?? false;
  }

  /** WriteFence: throws `FencedError` unless we lead and our lease is surely ours. */
  check(): void {
    if (!this.isLeader()) {
      throw new FencedError('not sent: this replica cannot be sure it holds the leader Lease');
    }
  }

  /**
   * Campaigns until we hold the lease, then resolves our Leadership (renewed in the background
   * until it is released or lost); resolves undefined when `signal` aborts first.
   */
  async acquire(signal: AbortSignal): Promise<Leadership | undefined> {
    if (this.running) throw new Error('leader election: acquire() is already running');
    this.running = true;
    try {
      this.log.info('attempting to acquire leader lease');
      for (;;) {
        if (signal.aborted) return undefined;
        const started = this.clock.now();
        const ok = await this.attempt(this.renewDeadlineMs);
        this.reportTransition();
        if (ok) {
          if (signal.aborted) {
            // Won the lease while being cancelled: give it back at once.
            const term = this.startTerm(started);
            await term.release();
            return undefined;
          }
          this.log.info('successfully acquired lease');
          return this.startTerm(started);
        }
        const wait = this.retryPeriodMs + this.random() * JITTER_FACTOR * this.retryPeriodMs;
        try {
          await this.clock.sleep(wait, signal);
        } catch {
          return undefined;
        }
      }
    } finally {
      this.running = false;
    }
  }

  private startTerm(acquiredAtStart: number): Term {
    const term = new Term({
      clock: this.clock,
      log: this.log,
      validUntil: acquiredAtStart + this.leaseDurationMs - FENCE_MARGIN_MS,
      renew: (t) => this.renewLoop(t),
      release: () => this.releaseLease(),
    });
    this.term = term;
    return term;
  }

  /** The renew loop of a term: resolves when the term ends (released or lost). */
  private async renewLoop(term: Term): Promise<void> {
    const stop = term.stopRenewing;
    for (;;) {
      try {
        await this.clock.sleep(this.retryPeriodMs, stop);
      } catch {
        return;
      }
      const deadline = this.clock.now() + this.renewDeadlineMs;
      for (;;) {
        if (!term.holds()) {
          term.lose('the lease validity passed without a renewal (was the process frozen?)');
          return;
        }
        const started = this.clock.now();
        const ok = await this.attempt(deadline - started, stop);
        this.reportTransition();
        if (stop.aborted) return;
        if (ok) {
          term.renewed(started + this.leaseDurationMs - FENCE_MARGIN_MS);
          break;
        }
        const holder = this.observed?.holderIdentity;
        if (holder && holder !== this.identity) {
          term.lose(`the lease is held by another candidate (${holder})`);
          return;
        }
        const left = deadline - this.clock.now();
        if (left <= 0) {
          term.lose('could not renew the lease within the renew deadline');
          return;
        }
        try {
          await this.clock.sleep(Math.min(this.retryPeriodMs, left), stop);
        } catch {
          return;
        }
        if (this.clock.now() >= deadline) {
          term.lose('could not renew the lease within the renew deadline');
          return;
        }
      }
    }
  }

  /** One `tryAcquireOrRenew`, aborted (false) when it takes longer than `timeoutMs`. */
  private async attempt(timeoutMs: number, stop?: AbortSignal): Promise<boolean> {
    const gen = ++this.attemptGen;
    const timeout = new AbortController();
    const timer = this.clock.setTimer(
      () => {
        if (gen === this.attemptGen) this.attemptGen++; // orphan the attempt
        this.log.error('lease request did not finish in time', undefined, { timeoutMs });
        timeout.abort(new Error('lease request timed out'));
      },
      Math.max(0, timeoutMs),
    );
    const signal = stop ? AbortSignal.any([timeout.signal, stop]) : timeout.signal;
    try {
      return await new Promise<boolean>((resolve) => {
        signal.addEventListener('abort', () => resolve(false), { once: true });
        this.tryAcquireOrRenew(gen, signal).then(resolve, (err: unknown) => {
          if (!signal.aborted) this.log.error('lease attempt failed', err);
          resolve(false);
        });
      });
    } finally {
      timer.cancel();
    }
  }

  /** client-go's tryAcquireOrRenew. False when we do not hold the lease after it. */
  private async tryAcquireOrRenew(gen: number, signal: AbortSignal): Promise<boolean> {
    const now = this.clock.now();
    const wall = new Date(this.clock.wallTime());
    const desired: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: wall,
      renewTime: wall,
      leaseTransitions: 0,
    };

    // Fast path: we hold it and our view is fresh; renew without a read.
    const held = this.observed;
    if (held && held.holderIdentity === this.identity && this.observedValid(now) && held.resourceVersion) {
      try {
        const updated = await this.store.update(
          {
            ...desired,
            acquireTime: held.acquireTime,
            leaseTransitions: held.leaseTransitions,
            resourceVersion: held.resourceVersion,
          },
          signal,
        );
        return this.setObserved(gen, updated);
      } catch (err) {
        if (signal.aborted) return false;
        this.log
          .v(2)
          .info('renewing the lease without a read failed; reading it', { err: describeError(err) });
      }
    }

    let current: LeaseRecord | undefined;
    try {
      current = await this.store.get(signal);
    } catch (err) {
      if (!signal.aborted) this.log.error('error retrieving the lease', err);
      return false;
    }
    if (gen !== this.attemptGen) return false;
    if (!current) {
      try {
        return this.setObserved(gen, await this.store.create(desired, signal));
      } catch (err) {
        if (isConflict(err)) this.log.v(2).info('another candidate created the lease first');
        else if (!signal.aborted) this.log.error('error creating the lease', err);
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
      return this.setObserved(gen, await this.store.update(next, signal));
    } catch (err) {
      if (isConflict(err)) this.log.v(2).info('lost the race to update the lease (409)');
      else if (!signal.aborted) this.log.error('error updating the lease', err);
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

  private reportTransition(): void {
    const holder = this.observed?.holderIdentity ?? '';
    if (holder === '' || holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (holder !== this.identity) this.log.info('new leader elected', { holder });
    try {
      this.onNewLeader?.(holder);
    } catch (err) {
      this.log.error('onNewLeader failed', err);
    }
  }

  /** Gives the lease up if we hold it: empty holder, 1 s duration (as client-go's release). */
  private async releaseLease(): Promise<void> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const held = this.observed;
      if (!held || held.holderIdentity !== this.identity) return;
      const gen = ++this.attemptGen;
      const wall = new Date(this.clock.wallTime());
      const timeout = new AbortController();
      const timer = this.clock.setTimer(() => timeout.abort(new Error('timed out')), this.renewDeadlineMs);
      try {
        const released = await this.store.update(
          {
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: wall,
            renewTime: wall,
            leaseTransitions: held.leaseTransitions,
            resourceVersion: held.resourceVersion,
          },
          timeout.signal,
        );
        this.setObserved(gen, released);
        this.log.info('released the leader lease');
        return;
      } catch (err) {
        // A renewal the server applied after we stopped waiting for it moved the resourceVersion:
        // read the lease again and release it if it is still ours.
        if (isConflict(err) && attempt === 1) {
          try {
            const current = await this.store.get(timeout.signal);
            if (current) {
              this.observed = current;
              this.observedTimeMs = this.clock.now();
            }
            continue;
          } catch (readErr) {
            this.log.error('failed to release the leader lease', readErr);
            return;
          }
        }
        this.log.error('failed to release the leader lease', err);
        return;
      } finally {
        timer.cancel();
      }
    }
  }
}

interface TermDeps {
  clock: Clock;
  log: Logger;
  /** Monotonic time until which the fence is open, from the acquire. */
  validUntil: number;
  /** The renew loop; resolves when `stopRenewing` aborts or the term is lost. */
  renew(term: Term): Promise<void>;
  /** Writes the released Lease. */
  release(): Promise<void>;
}

/** One term of leadership: renewed in the background (from construction) until released or lost. */
class Term implements Leadership {
  private readonly deps: TermDeps;
  private readonly lostController = new AbortController();
  private readonly stopController = new AbortController();
  /** The fence is open while `now < validUntil` and the term is neither lost nor released. */
  private validUntil: number;
  private closed = false;
  private watchdog: Timer | undefined;
  private readonly loop: Promise<void>;
  private releasing: Promise<void> | undefined;

  constructor(deps: TermDeps) {
    this.deps = deps;
    this.validUntil = deps.validUntil;
    this.armWatchdog();
    this.loop = deps.renew(this);
  }

  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  get stopRenewing(): AbortSignal {
    return this.stopController.signal;
  }

  holds(): boolean {
    return !this.closed && this.deps.clock.now() < this.validUntil;
  }

  renewed(validUntil: number): void {
    if (this.closed) return;
    this.validUntil = validUntil;
    this.armWatchdog();
  }

  lose(reason: string): void {
    if (this.lostController.signal.aborted || this.releasing) return;
    this.close();
    this.deps.log.error(`leader lease lost: ${reason}`);
    this.lostController.abort(new LeaseLostError(`leader lease lost: ${reason}`));
  }

  release(): Promise<void> {
    this.releasing ??= (async () => {
      if (this.lostController.signal.aborted) return;
      // The fence closes before anything else: no write of ours may follow the release.
      this.close();
      await this.loop;
      await this.deps.release();
    })();
    return this.releasing;
  }

  private close(): void {
    this.closed = true;
    this.watchdog?.cancel();
    this.stopController.abort();
  }

  private armWatchdog(): void {
    this.watchdog?.cancel();
    const clock = this.deps.clock;
    this.watchdog = clock.setTimer(
      () => this.lose('the lease validity passed without a renewal (was the process frozen?)'),
      this.validUntil - clock.now(),
    );
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

  async get(signal?: AbortSignal): Promise<LeaseRecord | undefined> {
    try {
      this.last = await this.client.leases.readNamespacedLease(
        { name: this.name, namespace: this.namespace },
        this.client.withSignal(signal),
      );
      return leaseToRecord(this.last);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord> {
    this.last = await this.client.leases.createNamespacedLease(
      {
        namespace: this.namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace },
          spec: recordToSpec(record),
        },
      },
      this.client.withSignal(signal),
    );
    return leaseToRecord(this.last);
  }

  async update(record: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord> {
    const base = this.last;
    const metadata = { ...(base?.metadata ?? {}), name: this.name, namespace: this.namespace };
    delete metadata.managedFields; // omitted: the server keeps them
    metadata.resourceVersion = record.resourceVersion;
    this.last = await this.client.leases.replaceNamespacedLease(
      {
        name: this.name,
        namespace: this.namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata,
          spec: { ...(base?.spec ?? {}), ...recordToSpec(record) },
        },
      },
      this.client.withSignal(signal),
    );
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
