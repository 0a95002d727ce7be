/**
 * A repair loop for one allocation map (kube-apiserver's ClusterIP / NodePort repair controllers,
 * run outside it), on the leader, at start and then every `--repair-interval`:
 *
 * 1. read the map with its resourceVersion, and list every Service fresh from the API server;
 * 2. rebuild the map from the Services (repair.ts) and report what is wrong, per value;
 * 3. keep leaked values for three passes (a create may be in flight), free them on the third;
 * 4. write the rebuilt map with the resourceVersion read in step 1 (create it when missing); a
 *    409 redoes the pass. Nothing is written when the map is already right.
 *
 * A map kept for another range, or whose data cannot be read, is rebuilt from the Services with
 * an Event on the RangeAllocation; it is never reused.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import { whenAborted } from '../abort.ts';
import type { EventRecorder } from '../kube/events.ts';
import { isAlreadyExists, isConflict } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { RangeAllocator, RestoreError } from './allocator.ts';
import type { RangeMetrics, RepairErrorType } from './metrics.ts';
import type { ValueRange } from './ranges.ts';
import { type Claim, type Finding, LeakTracker, rebuild, type RepairProblem } from './repair.ts';
import {
  RANGE_ALLOCATION_API_VERSION,
  type RangeAllocation,
  type RangeAllocationStore,
  rangeAllocationObject,
  reservationExpiry,
} from './storage.ts';
import { reportUtilization } from './utilization.ts';

export interface RepairLoopOptions<V> {
  mapName: string;
  range: ValueRange<V>;
  /** Fenced: only the leader repairs. */
  store: RangeAllocationStore;
  /** Every Service, read fresh from the API server (not from a cache). */
  listServices: (signal: AbortSignal) => Promise<V1Service[]>;
  /** The values of this map that a Service holds. */
  claimsOf: (svc: V1Service) => Claim<V>[];
  /** A value from its text in a reservation (undefined: not a value of this range). */
  parseValue: (text: string) => V | undefined;
  /** Event reason per problem, e.g. `ClusterIPOutOfRange`. */
  reasons: Record<RepairProblem, string>;
  /** Message per finding, for the Service's Event. */
  describe: (finding: Finding<V>, range: ValueRange<V>) => string;
  intervalMs: number;
  events: EventRecorder;
  metrics: RangeMetrics;
  clock: Clock;
  log: Logger;
}

export interface PassResult<V> {
  findings: Finding<V>[];
  keptLeaks: V[];
  freedLeaks: V[];
  /** What was written: nothing, a new map, or a replaced one. */
  wrote: 'none' | 'created' | 'replaced';
  /** The map was for another range or unreadable, and was rebuilt. */
  rebuiltBecause?: string;
}

const METRIC_TYPE: Record<RepairProblem, RepairErrorType> = {
  invalid: 'invalid',
  outOfRange: 'outOfRange',
  duplicate: 'duplicate',
  notAllocated: 'repair',
  full: 'full',
};
const MAX_CONFLICT_REDOS = 10;
const RESERVATION_SKEW_GRACE_MS = 60_000;
const RETRY_MIN_MS = 1000;

export class RepairLoop<V> {
  private readonly opts: RepairLoopOptions<V>;
  private leaks = new LeakTracker<V>();

  constructor(opts: RepairLoopOptions<V>) {
    this.opts = opts;
  }

  /** Runs passes until `stop`, at start and then every interval; a failed pass retries sooner. */
  async run(stop: AbortSignal): Promise<void> {
    const { clock, log, intervalMs } = this.opts;
    let failures = 0;
    while (!stop.aborted) {
      let delay = intervalMs;
      try {
        await this.runOnce(stop);
        failures = 0;
      } catch (err) {
        if (stop.aborted) break;
        failures++;
        this.opts.metrics.repairError('unknown');
        delay = Math.min(intervalMs, RETRY_MIN_MS * 2 ** Math.min(failures, 6));
        log.error('repair pass failed; retrying', err, { map: this.opts.mapName, retryInMs: delay });
      }
      await Promise.race([clock.sleep(delay, stop).catch(() => undefined), whenAborted(stop)]);
    }
  }

  async runOnce(signal: AbortSignal): Promise<PassResult<V>> {
    const { mapName, range, store, log } = this.opts;
    for (let redo = 0; ; redo++) {
      const stored = await store.get(mapName, signal);
      let storedAllocator: RangeAllocator<V> | undefined;
      let rebuiltBecause: string | undefined;
      let rangeChanged = false;
      if (stored) {
        storedAllocator = new RangeAllocator(range);
        try {
          storedAllocator.restore(stored);
        } catch (err) {
          if (!(err instanceof RestoreError)) throw err;
          storedAllocator = undefined;
          rebuiltBecause = err.message;
          rangeChanged = err.problem === 'range';
        }
      }
      const services = await this.opts.listServices(signal);
      const leaks = this.leaks.clone();
      // Reservations outlive their ttl by a grace for clock skew between replicas; then they go,
      // and their values not handed out become leaks.
      const now = this.opts.clock.wallTime();
      const claims = services.flatMap(this.opts.claimsOf);
      // A reserved value a Service holds was handed out: it leaves the reservation.
      const claimed = new Set(claims.map((c) => (c.value === undefined ? c.text : String(c.value))));
      const reservations = (stored?.reservations ?? [])
        .filter((r) => reservationExpiry(r) + RESERVATION_SKEW_GRACE_MS > now)
        .map((r) => ({
          ...r,
          values: r.values.filter((v) => !claimed.has(String(this.opts.parseValue(v) ?? v))),
        }))
        .filter((r) => r.values.length > 0);
      const reserved = reservations.flatMap((r) =>
        r.values
          .map(this.opts.parseValue)
          .filter((v): v is V => v !== undefined && range.offsetOf(v) !== undefined),
      );
      const result = rebuild(range, storedAllocator, claims, leaks, reserved);
      const next = rangeAllocationObject(
        mapName,
        result.rebuilt.snapshot(),
        { size: result.rebuilt.size(), used: result.rebuilt.used() },
        stored?.metadata,
        // A map for another range drops its reservations; an unreadable bitmap keeps them (the
        // field is separate JSON), so a replica's pool stays marked.
        rangeChanged ? [] : reservations,
      );
      let wrote: PassResult<V>['wrote'] = 'none';
      let written: RangeAllocation | undefined = stored;
      try {
        if (!stored) {
          written = await store.create(next, signal);
          wrote = 'created';
        } else if (rebuiltBecause !== undefined || !unchanged(stored, next)) {
          written = await store.replace(next, signal);
          wrote = 'replaced';
        }
      } catch (err) {
        if ((isConflict(err) || isAlreadyExists(err)) && redo < MAX_CONFLICT_REDOS) {
          log.v(2).info('allocation map changed during the repair pass; redoing it', { map: mapName });
          continue;
        }
        throw err;
      }
      this.leaks = leaks;
      this.opts.metrics.repairPass(mapName);
      this.report(result.findings, result.freedLeaks, stored, written, rebuiltBecause, services.length);
      return { ...result, wrote, rebuiltBecause };
    }
  }

  private report(
    findings: Finding<V>[],
    freedLeaks: V[],
    before: RangeAllocation | undefined,
    after: RangeAllocation | undefined,
    rebuiltBecause: string | undefined,
    serviceCount: number,
  ): void {
    const { events, metrics, reasons, range, mapName, log } = this.opts;
    for (const finding of findings) {
      metrics.repairError(METRIC_TYPE[finding.problem]);
      const { owner } = finding.claim;
      events.event(
        { kind: 'Service', apiVersion: 'v1', namespace: owner.namespace, name: owner.name },
        'Warning',
        reasons[finding.problem],
        this.opts.describe(finding, range),
      );
    }
    for (const value of freedLeaks) {
      metrics.repairError('leak');
      log.info('released a leaked value: no Service has held it for three repair passes', {
        map: mapName,
        value: String(value),
      });
    }
    if (!after) return;
    if (rebuiltBecause !== undefined) {
      events.event(
        {
          kind: 'RangeAllocation',
          apiVersion: RANGE_ALLOCATION_API_VERSION,
          name: mapName,
          uid: after.metadata.uid,
        },
        'Warning',
        'AllocationMapRebuilt',
        `The map could not be used (${rebuiltBecause}); rebuilt for ${range.text} from ${serviceCount} Services, ${after.used} values in use`,
      );
    }
    reportUtilization(rebuiltBecause === undefined ? before : undefined, after, metrics, events);
  }
}

/** True when `next` stores exactly what `stored` does (so there is nothing to write). */
function unchanged(stored: RangeAllocation, next: RangeAllocation): boolean {
  return (
    stored.range === next.range &&
    stored.data === next.data &&
    stored.used === next.used &&
    stored.free === next.free &&
    stored.size === next.size &&
    stored.percent === next.percent &&
    JSON.stringify(stored.reservations ?? []) === JSON.stringify(next.reservations ?? [])
  );
}
