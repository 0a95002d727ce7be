/**
 * Manager: runs the informers and the controllers, behind leader election when asked.
 *
 * Contract:
 * - Without an elector, controllers start at once. With one, they start once this replica holds
 *   the Lease, and the Lease is renewed until they have stopped: a graceful stop never lets a
 *   standby take over while our last reconciles are still writing.
 * - Graceful stop (`signal` aborts): every controller is told to stop at the same moment (in
 *   reverse order of registration); each takes no new key and finishes its in-flight reconciles.
 *   When `shutdownTimeoutMs` has passed since the stop began, every controller not stopped yet is
 *   aborted: its in-flight reconciles' signal aborts, so their API calls end at once. Then the
 *   informers stop, `beforeRelease` runs (pending Events are written while the fence is still
 *   open), and the Lease is released. `run` resolves `'stopped'`.
 * - Lease lost (it could not be renewed, another holder took it, or the process was frozen past
 *   its validity): every controller is aborted at once, the informers stop, nothing more is
 *   written (the client's fence refuses it) and nothing is released; `run` resolves
 *   `'lost-lease'` and the caller exits non-zero, as kube-controller-manager does, so a fresh
 *   process rejoins the election.
 * - Aborted controllers get `ABORT_GRACE_MS` to return (a reconcile busy on the CPU finishes its
 *   step); one that does not is logged and left behind: the fence keeps it from writing.
 *   `beforeRelease` gets as long.
 * - A controller whose `start` rejects (a bug: reconcile errors are retried, never thrown) is
 *   logged and reported by `healthChecks()`; the other controllers keep running.
 */
import { whenAborted } from '../abort.ts';
import type { Clock } from '../clock.ts';
import type { NamedCheck } from '../health.ts';
import type { InformerFactory } from '../informer/factory.ts';
import type { LeaderElector } from '../leaderelection.ts';
import type { Logger } from '../log.ts';

export interface Runnable {
  readonly name: string;
  /**
   * Runs until `stop` aborts, then finishes its in-flight work and resolves. When `abort` aborts,
   * in-flight work is abandoned (its API calls are aborted) and it resolves as soon as it can.
   */
  start(stop: AbortSignal, abort: AbortSignal): Promise<void>;
}

export type ManagerExit = 'stopped' | 'lost-lease';

/** What the manager needs of the informer factory. */
export type Informers = Pick<InformerFactory, 'start' | 'stopped' | 'hasSynced'>;

export interface ManagerOptions {
  log: Logger;
  clock: Clock;
  informers: Informers;
  elector?: LeaderElector;
  shutdownTimeoutMs: number;
  /**
   * The last step of a graceful stop: after the controllers and informers stopped, before the
   * Lease (if any) is released. Not run after a loss: nothing may be written then.
   */
  beforeRelease?: () => Promise<void>;
}

/** How long aborted controllers may take to return before the manager moves on without them. */
export const ABORT_GRACE_MS = 5_000;

export class Manager {
  private readonly opts: ManagerOptions;
  private readonly runnables: Runnable[] = [];
  private leading = false;
  private readonly failed = new Map<string, string>();

  constructor(opts: ManagerOptions) {
    this.opts = opts;
  }

  add(r: Runnable): void {
    this.runnables.push(r);
  }

  /** For /readyz: a standby replica is ready; a leader is ready once its caches synced. */
  readyChecks(): NamedCheck[] {
    if (this.opts.elector && !this.leading) return [{ name: 'leader-election' }];
    const synced = this.opts.informers.hasSynced();
    return [{ name: 'informer-sync', ...(synced ? {} : { error: 'informer caches not synced yet' }) }];
  }

  /** For /healthz: a controller that stopped with an error fails it, so a liveness probe restarts us. */
  healthChecks(): NamedCheck[] {
    return this.runnables.map((r) => {
      const error = this.failed.get(r.name);
      return { name: `controller-${r.name}`, ...(error === undefined ? {} : { error }) };
    });
  }

  async run(signal: AbortSignal): Promise<ManagerExit> {
    const elector = this.opts.elector;
    if (!elector) {
      await this.runControllers(signal, undefined);
      return 'stopped';
    }
    const leadership = await elector.acquire(signal);
    if (!leadership) return 'stopped';
    this.leading = true;
    this.opts.log.info('became leader; starting controllers');
    try {
      const outcome = await this.runControllers(signal, leadership.lost);
      if (outcome === 'lost') return 'lost-lease';
      await leadership.release();
      return 'stopped';
    } finally {
      this.leading = false;
    }
  }

  private async runControllers(
    stop: AbortSignal,
    lost: AbortSignal | undefined,
  ): Promise<'stopped' | 'lost'> {
    const { informers, log, clock } = this.opts;
    const abort = new AbortController();
    const onLost = (): void => abort.abort(lost?.reason);
    if (lost?.aborted) onLost();
    else lost?.addEventListener('abort', onLost, { once: true });

    const informerStop = new AbortController();
    informers.start(informerStop.signal);
    const stops = this.runnables.map(() => new AbortController());
    const running = new Set<string>(this.runnables.map((r) => r.name));
    const done = this.runnables.map((r, i) =>
      r.start(stops[i].signal, abort.signal).then(
        () => running.delete(r.name),
        (err: unknown) => {
          running.delete(r.name);
          this.failed.set(r.name, err instanceof Error ? err.message : String(err));
          log.error('controller stopped with an error', err, { controller: r.name });
        },
      ),
    );

    await whenAborted(stop, abort.signal);
    if (!abort.signal.aborted) {
      log.info('stopping controllers: finishing in-flight reconciles', {
        shutdownTimeoutMs: this.opts.shutdownTimeoutMs,
      });
      const timer = clock.setTimer(
        () => abort.abort(new Error(`shutdown timeout (${this.opts.shutdownTimeoutMs} ms) reached`)),
        this.opts.shutdownTimeoutMs,
      );
      for (let i = stops.length - 1; i >= 0; i--) stops[i].abort();
      await Promise.race([Promise.all(done), whenAborted(abort.signal)]);
      timer.cancel();
    }
    if (abort.signal.aborted) {
      for (const s of stops) s.abort();
      if (running.size > 0) {
        log.error('aborting controllers that have not stopped', abort.signal.reason, {
          controllers: [...running],
        });
      }
      const grace = clock.sleep(ABORT_GRACE_MS).then(() => 'late' as const);
      if ((await Promise.race([Promise.all(done).then(() => 'done' as const), grace])) === 'late') {
        log.error('controllers did not return after being aborted; going on without them', undefined, {
          controllers: [...running],
        });
      }
    }
    lost?.removeEventListener('abort', onLost);
    informerStop.abort();
    await informers.stopped();
    if (lost?.aborted) return 'lost';
    // Bounded, so a slow API server cannot hold the Lease (and the pod's termination) for long.
    const last = (this.opts.beforeRelease?.() ?? Promise.resolve()).then(
      () => 'done' as const,
      (err: unknown) => log.error('the last step before releasing the Lease failed', err),
    );
    if ((await Promise.race([last, clock.sleep(ABORT_GRACE_MS).then(() => 'late' as const)])) === 'late') {
      log.error('the last step before releasing the Lease did not finish in time; going on', undefined, {
        afterMs: ABORT_GRACE_MS,
      });
    }
    return 'stopped';
  }
}
