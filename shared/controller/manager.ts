/**
 * Manager: runs the informers and the controllers, behind leader election when asked.
 *
 * Contract:
 * - Without an elector, controllers start at once; with one, they start when this replica becomes
 *   leader and stop when it stops leading.
 * - `run(signal)` resolves `'stopped'` after `signal` aborts and the controllers have finished
 *   their in-flight work (bounded by `shutdownTimeoutMs`), or `'lost-lease'` when leadership was
 *   lost while the process wanted to keep running: the caller exits non-zero, as
 *   kube-controller-manager does, so a fresh process rejoins the election.
 * - Controllers start together and stop in reverse order of registration.
 */
import type { Clock } from '../clock.ts';
import type { NamedCheck } from '../health.ts';
import type { InformerFactory } from '../informer/factory.ts';
import type { LeaderElector } from '../leaderelection.ts';
import type { Logger } from '../log.ts';

export interface Runnable {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
}

export type ManagerExit = 'stopped' | 'lost-lease';

export interface ManagerOptions {
  log: Logger;
  clock: Clock;
  informers: InformerFactory;
  elector?: LeaderElector;
  shutdownTimeoutMs: number;
}

export class Manager {
  private readonly opts: ManagerOptions;
  private readonly runnables: Runnable[] = [];
  private leading = false;

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

  async run(signal: AbortSignal): Promise<ManagerExit> {
    const elector = this.opts.elector;
    if (!elector) {
      await this.runControllers(signal);
      return 'stopped';
    }
    let lost = false;
    let controllersDone: Promise<void> = Promise.resolve();
    await elector.run(signal, {
      onStartedLeading: (leaderSignal: AbortSignal) => {
        this.leading = true;
        this.opts.log.info('became leader; starting controllers');
        controllersDone = this.runControllers(leaderSignal);
      },
      // Awaited by the elector before it releases the Lease, so a successor never runs while
      // our in-flight syncs are still writing.
      onStoppedLeading: async () => {
        this.leading = false;
        if (!signal.aborted) {
          lost = true;
          this.opts.log.error('leader election lost; stopping');
        }
        await controllersDone;
      },
    });
    await controllersDone;
    return lost ? 'lost-lease' : 'stopped';
  }

  private async runControllers(signal: AbortSignal): Promise<void> {
    const { informers, log } = this.opts;
    // Each controller gets its own signal, aborted in reverse order of registration on shutdown.
    const stops = this.runnables.map(() => new AbortController());
    const informerStop = new AbortController();
    informers.start(informerStop.signal);
    const done = this.runnables.map((r, i) =>
      r
        .start(stops[i].signal)
        .catch((err: unknown) => log.error('controller stopped with an error', err, { controller: r.name })),
    );
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const deadline = this.opts.clock.sleep(this.opts.shutdownTimeoutMs).then(() => 'timeout' as const);
    for (let i = this.runnables.length - 1; i >= 0; i--) {
      stops[i].abort();
      const outcome = await Promise.race([done[i].then(() => 'done' as const), deadline]);
      if (outcome === 'timeout') {
        log.error('shutdown timeout reached with reconciles still running', undefined, {
          controller: this.runnables[i].name,
        });
        break;
      }
    }
    informerStop.abort();
    await informers.stopped();
  }
}
