/** Test doubles for leader election: an in-memory Lease store and fake-clock helpers. */
import type { FakeClock } from '../../../shared/clock.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';
import {
  LeaderElector,
  type LeaderElectionOptions,
  type LeaseRecord,
  type LeaseStore,
} from '../../../shared/leaderelection.ts';
import { nopLogger } from '../../../shared/log.ts';

/** An elector named "me" for Lease kube-system/scm on `clock` and `store`, with no jitter. */
export function testElector(
  clock: FakeClock,
  store: LeaseStore,
  opts: Partial<LeaderElectionOptions> = {},
): LeaderElector {
  return new LeaderElector({
    lockName: 'scm',
    lockNamespace: 'kube-system',
    identity: 'me',
    clock,
    store,
    log: nopLogger,
    random: () => 0,
    ...opts,
  });
}

/** Lets pending promise chains run; no real time passes. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Moves the fake clock in small steps, letting async code run between steps. */
export async function advance(clock: FakeClock, ms: number, stepMs = 100): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.step(Math.min(stepMs, ms - done));
    await flush();
  }
}

/** An API server's view of one Lease: compare-and-swap on resourceVersion. */
export class MemoryLeaseStore implements LeaseStore {
  record: LeaseRecord | undefined;
  updates = 0;
  /** Every call fails as if the API server were unreachable. */
  failing = false;
  /** Runs just before an update is applied, e.g. to let another candidate win the race. */
  beforeUpdate: (() => void) | undefined;
  private rv = 0;

  get(_signal?: AbortSignal): Promise<LeaseRecord | undefined> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    return Promise.resolve(this.record && { ...this.record });
  }

  create(record: LeaseRecord): Promise<LeaseRecord> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    if (this.record)
      return Promise.reject(new KubeApiError(409, 'already exists', { reason: 'AlreadyExists' }));
    return Promise.resolve(this.store(record));
  }

  update(record: LeaseRecord, _signal?: AbortSignal): Promise<LeaseRecord> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    const hook = this.beforeUpdate;
    this.beforeUpdate = undefined;
    hook?.();
    if (!this.record) return Promise.reject(new KubeApiError(404, 'not found'));
    if (record.resourceVersion !== this.record.resourceVersion) {
      return Promise.reject(new KubeApiError(409, 'the object has been modified', { reason: 'Conflict' }));
    }
    this.updates++;
    return Promise.resolve(this.store(record));
  }

  /** Another candidate writes the lease. */
  setHolder(holder: string, at: number, leaseTransitions = 0): void {
    this.store({
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      acquireTime: new Date(at),
      renewTime: new Date(at),
      leaseTransitions,
    });
  }

  private store(record: LeaseRecord): LeaseRecord {
    this.record = { ...record, resourceVersion: String(++this.rv) };
    return { ...this.record };
  }
}
