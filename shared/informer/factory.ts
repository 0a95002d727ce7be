/**
 * One SharedInformer per kind for the whole process, so each kind is listed and watched once no
 * matter how many controllers read it. Controllers ask for informers while they are built; the
 * manager then calls `start` once and `waitForSync` before any reconcile.
 *
 * Resync: with `minResyncPeriodMs` (kube-controller-manager's --min-resync-period), each informer
 * re-delivers its objects every random period between 1x and 2x that, picked once per informer,
 * so the kinds do not all resync at the same moment.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import type { ListWatchClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { SharedInformer } from './informer.ts';
import type { ReflectorOptions } from './reflector.ts';
import type { ResourceType } from './resources.ts';

export interface InformerFactoryDeps {
  client: ListWatchClient;
  clock: Clock;
  log: Logger;
  opts?: ReflectorOptions;
  /** --min-resync-period; 0 or absent: no resync. */
  minResyncPeriodMs?: number;
  /** A number in [0, 1) for the resync period; `Math.random` by default. */
  random?: () => number;
}

export class InformerFactory {
  private readonly informers = new Map<string, SharedInformer<KubernetesObject>>();
  private readonly running: Promise<void>[] = [];
  private readonly deps: InformerFactoryDeps;

  constructor(deps: InformerFactoryDeps) {
    this.deps = deps;
  }

  informerFor<T extends KubernetesObject>(resource: ResourceType<T>): SharedInformer<T> {
    let inf = this.informers.get(resource.kind);
    if (!inf) {
      const min = this.deps.minResyncPeriodMs ?? 0;
      const random = this.deps.random ?? Math.random;
      inf = new SharedInformer<T>({
        client: this.deps.client,
        clock: this.deps.clock,
        opts: this.deps.opts,
        log: this.deps.log.child({ informer: resource.kind }),
        resource,
        resyncPeriodMs: min > 0 ? min * (1 + random()) : 0,
      }) as unknown as SharedInformer<KubernetesObject>;
      this.informers.set(resource.kind, inf);
    }
    return inf as unknown as SharedInformer<T>;
  }

  /** Starts every informer asked for so far; they run until `signal` aborts. */
  start(signal: AbortSignal): void {
    for (const inf of this.informers.values()) this.running.push(inf.run(signal));
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  async waitForSync(signal: AbortSignal): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
  }

  /** Resolves when every started informer has stopped. */
  async stopped(): Promise<void> {
    await Promise.all(this.running);
  }
}
